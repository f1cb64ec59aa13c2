"""cgroup layout detection from mountinfo text, paths, manager choice (no root)."""
import pytest

from pyrt_core.testing import machine  # noqa: E402

machine.skip_unless("distribution", "pyrt-cgroups")

from pyrt_cgroups import base, detect, manager
from pyrt_core.errors import UsageError

HYBRID = """\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

LEGACY = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
30 25 0:27 / /sys/fs/cgroup/hugetlb rw,nosuid shared:14 - cgroup cgroup rw,hugetlb
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:15 - cgroup cgroup rw,net_cls,net_prio
"""

UNIFIED = """\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def test_hybrid():
    h = detect.parse_mountinfo(HYBRID)
    assert h.mode == "hybrid" and h.version == 1
    assert h.unified == "/sys/fs/cgroup/unified"
    assert h.v1 == {c: f"/sys/fs/cgroup/{c}" for c in
                    ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")}
    assert "name=systemd" not in h.v1 and "systemd" not in h.v1
    assert manager.auto_name(h) == "cgroupfs-v1"


def test_legacy_v1_with_comounted_controllers():
    h = detect.parse_mountinfo(LEGACY)
    assert h.mode == "v1" and h.unified is None
    assert h.v1["cpu"] == h.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert h.v1["hugetlb"] == "/sys/fs/cgroup/hugetlb"
    assert "net_cls" not in h.v1  # not a controller the manager uses
    assert manager.auto_name(h) == "cgroupfs-v1"


def test_unified():
    h = detect.parse_mountinfo(UNIFIED)
    assert h.mode == "v2" and h.version == 2 and h.v1 == {}
    assert h.unified == "/sys/fs/cgroup"
    assert manager.auto_name(h) == "cgroupfs-v2"


def test_nothing_mounted():
    h = detect.parse_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n")
    assert h.mode == "none" and h.version == 0
    with pytest.raises(UsageError, match="no cgroup hierarchy"):
        manager.select(h, "auto")


def test_first_mount_of_a_hierarchy_wins_and_escapes_are_decoded():
    text = ("50 1 0:40 / /a\\040b rw - cgroup cgroup rw,memory\n"
            "51 1 0:40 / /other rw - cgroup cgroup rw,memory\n"
            "52 1 0:41 /sub /c rw - cgroup cgroup rw,pids\n")
    h = detect.parse_mountinfo(text)
    assert h.v1["memory"] == "/a b"
    assert h.v1["pids"] == "/c" and h.v1_roots["pids"] == "/sub"


def test_find_hierarchies_reads_a_file(tmp_path):
    p = tmp_path / "mountinfo"
    p.write_text(UNIFIED)
    assert detect.find_hierarchies(str(p)).mode == "v2"
    assert detect.find_hierarchies(str(tmp_path / "missing")).mode == "none"


def test_own_cgroups(tmp_path):
    p = tmp_path / "cgroup"
    p.write_text("9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/u\n")
    got = detect.own_cgroups(str(p))
    assert got["memory"] == "/a/b" and got["cpu"] == got["cpuacct"] == "/c" and got[""] == "/u"


@pytest.mark.parametrize("text, ids", [("0-3,5", {0, 1, 2, 3, 5}), ("1", {1}), ("", set()),
                                       ("0-1,0-1", {0, 1})])
def test_cpu_lists(text, ids):
    assert detect.parse_cpu_list(text) == ids


@pytest.mark.parametrize("bad", ["a", "1-", "3-1", "1,,2", "-1"])
def test_bad_cpu_lists(bad):
    with pytest.raises(ValueError):
        detect.parse_cpu_list(bad)


def test_format_cpu_list():
    assert detect.format_cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"


@pytest.mark.parametrize("given, want", [
    ("pyrt-abc", "/pyrt/pyrt-abc"),
    ("x/y/", "/pyrt/x/y"),
    ("/custom/pyrt-abc", "/custom/pyrt-abc"),
    ("//a//./b", "/a/b"),
    (None, "/pyrt/name"),
])
def test_resolve_path(given, want):
    assert base.resolve_path(given, "name") == want


@pytest.mark.parametrize("bad", ["/", "../x", "/a/../../b", "system.slice:pyrt:abc"])
def test_resolve_path_refuses(bad):
    with pytest.raises(UsageError):
        base.resolve_path(bad)


def test_select_by_name(monkeypatch):
    h = detect.parse_mountinfo(HYBRID)
    assert manager.select(h, "cgroupfs-v1").name == "cgroupfs-v1"
    assert manager.select(h, "none") is None
    with pytest.raises(UsageError, match="cannot be used on this host"):
        manager.select(h, "cgroupfs-v2")
    with pytest.raises(UsageError, match="unknown cgroup manager"):
        manager.select(h, "systemd")
    monkeypatch.setenv("PYRT_CGROUP_MANAGER", "none")
    assert manager.select(h) is None
    monkeypatch.setenv("PYRT_CGROUP_MANAGER", "auto")
    assert manager.select(h).name == "cgroupfs-v1"
    u = detect.parse_mountinfo(UNIFIED)
    assert manager.select(u).name == "cgroupfs-v2"
    with pytest.raises(UsageError, match="no cgroup v1 controller"):
        manager.select(u, "cgroupfs-v1")


def test_implementations_do_not_import_the_chooser():
    """manager (select, from_record) imports v1/v2; they build on base and limits and
    never import manager back (no cycle)."""
    import subprocess
    import sys

    code = ("import sys, pyrt_cgroups.v1, pyrt_cgroups.v2\n"
            "print('pyrt_cgroups.manager' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.stdout.strip() == "False", r.stdout + r.stderr
