"""Pure logic of the namespaces plugin: no root, no namespaces."""
from __future__ import annotations

import os

import pytest

from pyrt_core.runtime.config import Capabilities, IdMapping
from pyrt_namespaces import caps, channel, lookup, nstypes, resolve, userns


# -- capabilities ---------------------------------------------------------------

def test_cap_names_and_numbers():
    assert caps.number("CAP_CHOWN") == 0
    assert caps.number("CAP_SYS_ADMIN") == 21
    assert caps.number("CAP_CHECKPOINT_RESTORE") == 40
    assert caps.number("net_raw") == caps.number("CAP_NET_RAW") == 13
    assert caps.name(24) == "CAP_SYS_RESOURCE"
    assert caps.name(63) == "CAP_63"
    assert len(caps.CAP_NAMES) == 41
    assert all(caps.number(n) == i for i, n in enumerate(caps.CAP_NAMES))
    with pytest.raises(caps.UnknownCapability):
        caps.number("CAP_MAKE_COFFEE")


def test_docker_default_caps_mask():
    assert len(caps.DEFAULT_CAPS) == 14
    # the CapBnd Docker containers show on any kernel
    assert caps.to_mask(caps.DEFAULT_CAPS) == 0xA80425FB
    assert sorted(caps.from_mask(0xA80425FB)) == sorted(caps.DEFAULT_CAPS)


def test_mask_math_drops_caps_the_kernel_lacks():
    names = ["CAP_CHOWN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
    assert caps.to_mask(names, last=40) == 1 | 1 << 39 | 1 << 40
    assert caps.to_mask(names, last=37) == 1  # an older kernel: BPF and CHECKPOINT left out
    assert caps.all_mask(40) == (1 << 41) - 1
    assert caps.from_mask(0) == []
    assert caps.from_mask(1 << 64) == ["CAP_64"]
    assert caps.parse_status_mask("000001fffeffffff\n") == (1 << 41) - 1 - (1 << 24)


def test_resolve_keeps_the_kernel_rules():
    c = Capabilities(bounding=frozenset({"CAP_CHOWN", "CAP_KILL", "CAP_SYS_RESOURCE"}),
                     effective=frozenset({"CAP_CHOWN", "CAP_KILL"}),
                     permitted=frozenset({"CAP_CHOWN"}),
                     inheritable=frozenset({"CAP_KILL"}),
                     ambient=frozenset({"CAP_CHOWN", "CAP_KILL"}))
    available = caps.all_mask(40) & ~(1 << 24)  # this host: no CAP_SYS_RESOURCE
    s = caps.resolve(c, last=40, available=available)
    assert s.bounding == 1 << 0 | 1 << 5  # SYS_RESOURCE cannot be granted
    assert s.permitted == 1
    assert s.effective == 1  # effective within permitted
    assert s.inheritable == 1 << 5
    assert s.ambient == 0  # ambient needs permitted and inheritable
    with pytest.raises(caps.UnknownCapability):
        caps.resolve(Capabilities(bounding=frozenset({"CAP_NOPE"})), last=40, available=0)


def test_last_cap_reads_the_kernel_file(tmp_path):
    f = tmp_path / "cap_last_cap"
    f.write_text("37\n")
    assert caps.last_cap(str(f)) == 37
    assert caps.last_cap(str(tmp_path / "missing")) == caps.CAP_LAST_KNOWN


# -- namespaces -------------------------------------------------------------------

def test_clone_flags():
    assert nstypes.clone_flag("mount") == 0x00020000
    assert nstypes.clone_flag("network") == 0x40000000
    assert nstypes.clone_flag("time") == 0x80
    assert nstypes.clone_flags(["pid", "uts", "ipc"]) == 0x20000000 | 0x04000000 | 0x08000000
    assert nstypes.clone_flags([]) == 0
    assert nstypes.proc_name("mount") == "mnt" and nstypes.proc_name("network") == "net"
    assert nstypes.spec_name("pid_for_children") is None
    with pytest.raises(ValueError, match="unknown namespace"):
        nstypes.clone_flag("mnt")
    assert nstypes.JOIN_ORDER[0] == "user" and nstypes.JOIN_ORDER[-1] == "mount"


def test_available_namespaces_from_a_directory(tmp_path):
    for f in ("mnt", "net", "pid", "pid_for_children", "user"):
        (tmp_path / f).touch()
    assert nstypes.available(str(tmp_path)) == ["mount", "network", "pid", "user"]


# -- PATH lookup --------------------------------------------------------------------

def _exe(path, mode=0o755):
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return str(path)


def test_path_lookup(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _exe(b / "tool")
    _exe(a / "tool", 0o644)  # not executable: skipped, later entry wins
    (a / "dir").mkdir()
    search = f"{a}:{b}"
    assert lookup.find_executable("tool", search) == str(b / "tool")
    assert lookup.find_executable("/abs/anything", search) == "/abs/anything"
    assert lookup.find_executable("rel/x", search) == "rel/x"
    with pytest.raises(lookup.LookupFailed) as e:
        lookup.find_executable("missing", search)
    assert e.value.exit_code == 127
    with pytest.raises(lookup.LookupFailed) as e:
        lookup.find_executable("dir", search)
    assert e.value.exit_code == 127
    with pytest.raises(lookup.LookupFailed) as e:
        lookup.find_executable("tool", str(a))
    assert e.value.exit_code == 126


def test_env_path_and_dict():
    assert lookup.env_path(["HOME=/", "PATH=/x:/y"]) == "/x:/y"
    assert lookup.env_path(["PATH=/a", "PATH=/b"]) == "/b"
    assert lookup.env_path([]) == lookup.DEFAULT_PATH
    assert lookup.env_dict(["A=1", "B=x=y", "junk", "=v", "C="]) == {"A": "1", "B": "x=y", "C": ""}


# -- resolving paths inside a root ---------------------------------------------------

def _where(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_open_in_root_follows_symlinks_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "real" / "x").mkdir(parents=True)
    (root / "tmp" / "y").mkdir(parents=True)
    os.symlink("/real", root / "abs")               # absolute: relative to the root
    os.symlink("../../../../..", root / "up")       # climbs: stops at the root
    os.symlink("/etc/../../../../tmp", root / "mixed")
    os.symlink("/proc/self/cwd", root / "magic")    # a magic link is never followed
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    r = str(root)
    rfd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _where(resolve.open_in_root(rfd, "/etc")) == f"{r}/etc"
        assert _where(resolve.open_in_root(rfd, "/abs/x")) == f"{r}/real/x"
        assert _where(resolve.open_in_root(rfd, "/up/etc")) == f"{r}/etc"
        assert _where(resolve.open_in_root(rfd, "/mixed/y")) == f"{r}/tmp/y"
        assert _where(resolve.open_in_root(rfd, "/../../etc")) == f"{r}/etc"
        assert _where(resolve.open_in_root(rfd, "/")) == r
        with pytest.raises(OSError):
            resolve.open_in_root(rfd, "/magic")
        with pytest.raises(OSError):
            resolve.open_in_root(rfd, "/loop1/x")
    finally:
        os.close(rfd)


def test_mkdir_all_and_make_file_stay_inside(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "evil")  # a host path, but read as /<host path> in root
    (root / str(outside).lstrip("/")).mkdir(parents=True)
    os.symlink(str(outside), root / "evil-dangling")
    os.symlink("../../../../outside-file", root / "dangling")
    r = str(root)
    rfd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    try:
        d = _where(resolve.mkdir_all(rfd, "/evil/sub"))
        assert d == r + str(outside) + "/sub" and os.path.isdir(d)
        assert not (outside / "sub").exists()
        (root / str(outside).lstrip("/")).rename(root / "moved")
        with pytest.raises(NotADirectoryError):  # no directory is made through a dangling link
            resolve.mkdir_all(rfd, "/evil-dangling/sub")
        assert not (outside / "sub").exists()
        assert _where(resolve.mkdir_all(rfd, "/a/b/../c")) == f"{r}/a/c"
        f = _where(resolve.make_file(rfd, "/etc/resolv.conf"))
        assert os.path.isfile(f) and f == f"{r}/etc/resolv.conf"
        # a dangling symlink is followed inside the root: the file appears there
        assert _where(resolve.make_file(rfd, "/dangling")) == f"{r}/outside-file"
        assert not (tmp_path / "outside-file").exists()
        with pytest.raises(IsADirectoryError):
            resolve.make_file(rfd, "/etc")
        with pytest.raises(NotADirectoryError):
            resolve.mkdir_all(rfd, "/etc/resolv.conf")
    finally:
        os.close(rfd)


def test_mkdir_all_refuses_a_component_swapped_for_a_symlink(tmp_path, monkeypatch):
    """The race of CVE-2021-30465: between mkdirat and the open of the new component,
    another container makes it a symlink to /; the open refuses to follow it."""
    root = tmp_path / "root"
    root.mkdir()
    rfd = os.open(str(root), os.O_PATH | os.O_DIRECTORY)
    real_mkdir = os.mkdir

    def racing_mkdir(name, mode=0o777, *, dir_fd=None):
        real_mkdir(name, mode, dir_fd=dir_fd)
        if name == "vol":
            os.rmdir(name, dir_fd=dir_fd)
            os.symlink("/", name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    try:
        with pytest.raises(NotADirectoryError, match="became a symlink"):
            resolve.mkdir_all(rfd, "/vol/target")
    finally:
        os.close(rfd)
    assert not os.path.exists("/target")


# -- channel and id maps ---------------------------------------------------------------

def test_error_messages():
    assert channel.parse_error(b"error 127 exec 'x': not found") == (127, "exec 'x': not found")
    assert channel.parse_error(b"error 125") == (125, "")
    assert channel.parse_error(b"created") is None
    assert channel.describe(FileNotFoundError(2, "No such file or directory", "/x")) == \
        "No such file or directory: /x"
    assert channel.describe(OSError(1, "mount proc on /proc: Operation not permitted")) == \
        "mount proc on /proc: Operation not permitted"
    assert channel.describe(ValueError("a\nb")) == "ValueError: a b"
    with pytest.raises(channel.ChildError, match="^mounting /x: boom: /y$"):
        with channel.stage("mounting /x"):
            raise OSError(5, "boom", "/y")


def test_child_error_round_trip_over_the_channel():
    parent, child = channel.socketpair()
    try:
        pid = os.fork()
        if pid == 0:
            channel.run_child(child, lambda: (_ for _ in ()).throw(
                channel.ChildError("exec 'x': not found", 127)))
        os.close(child)
        child = None
        msg = channel.recv(parent)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 127
        assert channel.parse_error(msg) == (127, "exec 'x': not found")
        assert channel.recv(parent) == b""  # EOF once the child is gone
    finally:
        os.close(parent)
        if child is not None:
            os.close(child)


def test_id_map_format():
    maps = [IdMapping(0, 100000, 65536), IdMapping(65536, 1000, 1)]
    assert userns.format_map(maps) == "0 100000 65536\n65536 1000 1\n"


def test_plugin_module_is_cheap_to_import():
    import subprocess
    import sys

    # what it costs is measured by bench/startup.py; here: what it imports
    code = ("import sys; before = set(sys.modules); import pyrt_namespaces.plugin; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout.split()
    assert "pyrt_namespaces.plugin" in loaded
    # the heavy modules load only when a hook runs
    heavy = [m for m in loaded if m in ("ctypes", "json", "re", "typing", "enum", "subprocess",
                                        "socket", "pluggy", "attr", "attrs", "threading")]
    assert heavy == [], loaded


# -- cgroup hierarchies and sysctls -------------------------------------------------------

MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 0:39 / /elsewhere rw,relatime - cgroup cgroup rw,pids
"""
CGROUP = """\
5:memory:/pyrt/c1
3:cpu,cpuacct:/pyrt/c1
1:name=systemd:/user.slice
0::/
"""


def test_cgroup_hierarchies_of_a_hybrid_host(tmp_path):
    from pyrt_namespaces import mounts

    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    (tmp_path / "cgroup").write_text(CGROUP)
    got = mounts.cgroup_hierarchies(str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"))
    assert got == [
        mounts.CgroupHierarchy("cpu,cpuacct", "cgroup", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/pyrt/c1"),
        mounts.CgroupHierarchy("memory", "cgroup", "memory", "/sys/fs/cgroup/memory/pyrt/c1"),
        mounts.CgroupHierarchy("systemd", "cgroup", "name=systemd", "/sys/fs/cgroup/systemd/user.slice"),
        mounts.CgroupHierarchy("unified", "cgroup2", "", "/sys/fs/cgroup/unified"),
    ]


def test_cgroup_hierarchies_of_a_v2_host(tmp_path):
    from pyrt_namespaces import mounts

    (tmp_path / "mountinfo").write_text(
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    (tmp_path / "cgroup").write_text("0::/pyrt/c2\n")
    got = mounts.cgroup_hierarchies(str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"))
    assert got == [mounts.CgroupHierarchy("", "cgroup2", "", "/sys/fs/cgroup/pyrt/c2")]


def test_sysctls_must_be_namespaced():
    from types import SimpleNamespace

    from pyrt_core.errors import RuntimeError_
    from pyrt_namespaces import plans

    def plan(sysctl, namespaces=("ipc", "network", "uts")):
        return plans.sysctl_plan(SimpleNamespace(sysctl=sysctl), lambda t: t in namespaces)

    assert plan({"net.ipv4.ip_forward": "1", "kernel.shmmax": 10, "fs.mqueue.msg_max": "5"}) == [
        ("/proc/sys/net/ipv4/ip_forward", "1"), ("/proc/sys/kernel/shmmax", "10"),
        ("/proc/sys/fs/mqueue/msg_max", "5")]
    with pytest.raises(RuntimeError_, match="not in a separate kernel namespace"):
        plan({"vm.swappiness": "1"})
    with pytest.raises(RuntimeError_, match="own network namespace"):
        plan({"net.ipv4.ip_forward": "1"}, namespaces=("ipc",))
    with pytest.raises(RuntimeError_, match="invalid sysctl"):
        plan({"net.ipv4/../../x": "1"})


def test_a_joined_namespace_that_is_the_runtimes_own_is_not_the_containers():
    # a container joined to another that shares the host's namespace: its sysctls
    # would be the host's (the engine refuses them too: cli/run_flags.py)
    from types import SimpleNamespace

    from pyrt_namespaces import plans

    def ns(t, path=""):
        return SimpleNamespace(type=t, path=path)

    assert plans.owns_namespace(ns("ipc")) and not plans.owns_namespace(None)
    for t, proc in (("ipc", "ipc"), ("network", "net"), ("uts", "uts")):
        assert not plans.owns_namespace(ns(t, f"/proc/self/ns/{proc}"))
        assert not plans.owns_namespace(ns(t, f"/proc/{os.getpid()}/ns/{proc}"))


# -- runtime-spec additions: mountinfo, console fds, personality, state ------------------

def test_read_mountinfo_and_the_parent_mount_of_a_path(tmp_path, monkeypatch):
    from pyrt_namespaces import mounts

    info = tmp_path / "mountinfo"
    info.write_text("27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                    "60 27 0:50 / /var/lib rw shared:7 - xfs /dev/vdb rw\n"
                    "61 60 0:51 / /var/lib/with\\040space rw - tmpfs tmpfs rw\n")
    assert mounts.read_mountinfo(str(info)) == [
        ("/", "shared:1"), ("/var/lib", "shared:7"), ("/var/lib/with space", "")]
    assert mounts._under("/var/lib/x", "/var/lib") and mounts._under("/anything", "/")
    assert not mounts._under("/var/library", "/var/lib")

    calls = []
    monkeypatch.setattr(mounts, "read_mountinfo",
                        lambda path=str(info): [("/", "shared:1"), ("/var/lib", "shared:7"),
                                                ("/var/lib/with space", "")])
    monkeypatch.setattr(mounts.syscalls, "mount", lambda *a, **k: calls.append(a[1]))
    monkeypatch.setattr(mounts.os.path, "realpath", lambda p: "/var/lib/pyrt/rootfs")
    mounts.make_parent_private(".")
    assert calls == ["/var/lib"]  # the deepest mount holding the root, and only if shared
    calls.clear()
    monkeypatch.setattr(mounts.os.path, "realpath", lambda p: "/var/lib/with space/rootfs")
    mounts.make_parent_private(".")
    assert calls == []


def test_fds_travel_with_a_channel_message():
    import socket

    parent, child = channel.socketpair()
    r, w = os.pipe()
    try:
        with socket.socket(fileno=os.dup(child)) as s:
            socket.send_fds(s, [b"console"], [w])
        msg, fds = channel.recv_fds(parent)
        assert msg == b"console" and len(fds) == 1
        assert not os.get_inheritable(fds[0])
        os.write(fds[0], b"x")
        assert os.read(r, 1) == b"x"
        os.close(fds[0])
        os.close(child)
        child = None
        assert channel.recv_fds(parent) == (b"", [])  # EOF
    finally:
        for fd in (parent, child, r, w):
            if fd is not None:
                os.close(fd)


def test_personality_domains():
    from pyrt_namespaces import syscalls

    assert syscalls.PERSONALITY == {"LINUX": 0, "LINUX32": 8}


def test_hook_state_and_plan_of_a_config(tmp_path):
    from pyrt_core.runtime.spec import from_spec
    from pyrt_namespaces import plans

    spec = {"root": {"path": str(tmp_path)}, "process": {"args": ["sh"]}, "annotations": {"k": "v"},
            "domainname": "d.example", "linux": {"personality": {"domain": "LINUX32"},
                                                 "namespaces": [{"type": "mount"}, {"type": "uts"}]},
            "hooks": {"prestart": [{"path": "/bin/true"}],
                      "startContainer": [{"path": "/bin/true"}]}}
    cfg = from_spec(spec, "c9", str(tmp_path))
    assert plans.oci_state(cfg, "creating", 42) == {
        "ociVersion": "1.0.2", "id": "c9", "status": "creating", "pid": 42,
        "bundle": str(tmp_path), "annotations": {"k": "v"}}
    opened = []
    try:
        plan = plans.create_plan(cfg, None, opened)
    finally:
        for fd in opened:
            os.close(fd)
    assert (plan.domainname, plan.personality, plan.parent_hooks) == ("d.example", 8, True)
    assert len(plan.start_container_hooks) == 1 and not plan.create_container_hooks
    assert plan.own_mounts and not plan.join_mount and not plan.console
    # the default devices, since /dev is not a bind mount
    assert [d.path for d, _ in plan.rootfs.devices][:2] == ["/dev/null", "/dev/zero"]


# -- what the plugin declares to the core -----------------------------------------------

def test_the_plugin_declares_its_warm_up():
    # create and start import these ahead of time (pyrt_core.runtime.lifecycle.warm_up)
    from pyrt_namespaces import plugin

    assert plugin.WARM_UP
    for hook, modules in plugin.WARM_UP.items():
        assert hasattr(plugin, hook), hook
        for m in modules:
            __import__(m)
