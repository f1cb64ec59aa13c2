"""The process and namespace flags of run/create (cli/run_flags.py) and their OCI config
(containers/spec_runflags.py): parsing and the spec, no root (the effects are proven in
tests/privileged/test_run_flags.py)."""
import argparse

import pytest

from pyrt_core.cli import run_flags
from pyrt_core.containers import spec
from pyrt_core.errors import ExecError, UsageError
from pyrt_core.models import Container, ContainerConfig, Image, ImageConfig


def _args(*argv):
    p = argparse.ArgumentParser()
    p.add_argument("--hostname")
    run_flags.add_run_flags(p)
    return p.parse_args(list(argv))


def _flags(*argv, network="none"):
    return run_flags.run_flags_from_args(_args(*argv), network)


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwheel:x:10:root\naudio:x:29:\n")
    return str(tmp_path)


def _spec(rootfs, tmp_path, joined=None, **kw):
    c = Container(id="a" * 64, name="t", image_id="sha256:x", image_name="img", created="",
                  storage_driver="vfs", config=ContainerConfig(image="img", command=["id"], **kw))
    return spec.build_spec(c, Image(id="sha256:" + "b" * 64, config=ImageConfig()), rootfs,
                           str(tmp_path / "bundle"), joined=joined)


def test_ulimit_parse_and_rlimits():
    f = _flags("--ulimit", "nofile=10:20", "--ulimit", "core=-1", "--ulimit", "nofile=30")
    assert f["ulimits"] == [{"Name": "nofile", "Soft": 30, "Hard": 30},
                            {"Name": "core", "Soft": -1, "Hard": -1}]
    from pyrt_core.containers.spec_runflags import rlimits

    assert rlimits(f["ulimits"])[1] == {"type": "RLIMIT_CORE", "soft": 2**64 - 1,
                                        "hard": 2**64 - 1}
    assert run_flags.parse_ulimit("stack=1:-1") == {"Name": "stack", "Soft": 1, "Hard": -1}


@pytest.mark.parametrize("value", ["x=1", "nofile", "nofile=", "nofile=a", "nofile=2:1",
                                   "nofile=-1:5", "nofile=-3", f"nofile={2**63}"])
def test_ulimit_refused(value):
    with pytest.raises(UsageError):
        _flags("--ulimit", value)


@pytest.mark.parametrize("argv, network", [
    (("--sysctl", "kernel.pid_max=1"), "none"),
    (("--sysctl", "net.ipv4.ip_forward=1"), "host"),
    (("--sysctl", "net.ipv4.ip_forward=1"), "container:abc"),
    (("--sysctl", "kernel.shmmax=1", "--ipc", "host"), "none"),
    (("--sysctl", "fs.mqueue.msg_max=1", "--ipc", "container:x"), "none"),
    (("--sysctl", "kernel.domainname=x", "--uts", "host"), "none"),
    (("--sysctl", "kernel.hostname=x"), "none"),
    (("--sysctl", "net/ipv4=1"), "none"),
    (("--sysctl", "net.x=1\n2"), "none"),
])
def test_sysctl_refused(argv, network):
    with pytest.raises(UsageError):
        _flags(*argv, network=network)


def test_sysctl_accepted():
    f = _flags("--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.sem=1 2 3 4",
               "--sysctl", "fs.mqueue.queues_max=5", "--ipc", "shareable", network="bridge")
    assert f["sysctls"] == {"net.ipv4.ip_forward": "1", "kernel.sem": "1 2 3 4",
                            "fs.mqueue.queues_max": "5"}


@pytest.mark.parametrize("flag, value, ok", [
    ("--ipc", "shareable", True), ("--ipc", "none", True), ("--ipc", "container:db", True),
    ("--pid", "none", False), ("--pid", "container:", False), ("--uts", "container:a/b", False),
    ("--cgroupns", "host", True), ("--cgroupns", "shareable", False),
])
def test_namespace_modes(flag, value, ok):
    if ok:
        assert _flags(flag, value)[f"{flag[2:]}_mode"] == value
    else:
        with pytest.raises(UsageError):
            _flags(flag, value)


def test_uts_host_conflicts_with_hostname():
    with pytest.raises(UsageError, match="conflicting options: hostname and the UTS mode"):
        _flags("--uts", "host", "--hostname", "x")


def test_other_values():
    assert _flags("--shm-size", "1g")["shm_size"] == 1 << 30
    assert _flags("--oom-score-adj", "-1000")["oom_score_adj"] == -1000
    assert _flags("--group-add", "wheel", "--group-add", "7")["group_add"] == ["wheel", "7"]
    assert _flags("--annotation", "a.b=c=d")["annotations"] == {"a.b": "c=d"}
    for argv in (("--shm-size", "0"), ("--shm-size", "x"), ("--oom-score-adj", "1001"),
                 ("--group-add", "a b"), ("--annotation", "=x"), ("--annotation", "io.pyrt.x=1"),
                 ("--ipc", "none", "--shm-size", "1m"), ("--init-path", "rel/x")):
        with pytest.raises(UsageError):
            _flags(*argv)


def test_cidfile_must_not_exist(tmp_path):
    (tmp_path / "cid").write_text("x")
    with pytest.raises(UsageError, match="Container ID file found, make sure the other "
                                         "container isn't running or delete"):
        _flags("--cidfile", str(tmp_path / "cid"))
    f = run_flags.CidFile(str(tmp_path / "new"))
    f.abandon()
    assert not (tmp_path / "new").exists()
    f = run_flags.CidFile(str(tmp_path / "new"))
    f.write("abc")
    f.abandon()
    assert (tmp_path / "new").read_text() == "abc"


def test_spec_of_the_flags(rootfs, tmp_path):
    s = _spec(rootfs, tmp_path, ulimits=[{"Name": "nofile", "Soft": 5, "Hard": 6}],
              oom_score_adj=-5, group_add=["audio", "4242", "0"], sysctls={"kernel.sem": "1"},
              annotations={"k": "v", "io.pyrt.name": "mine"}, shm_size=1 << 20)
    p = s["process"]
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 6}]
    assert p["oomScoreAdj"] == -5
    assert p["user"]["additionalGids"] == [10, 29, 4242]  # root's wheel, then the added
    assert s["linux"]["sysctl"] == {"kernel.sem": "1"}
    assert s["annotations"]["k"] == "v" and s["annotations"]["io.pyrt.name"] == "t"
    shm = next(m for m in s["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={1 << 20}" in shm["options"] and "size=65536k" not in shm["options"]
    # it round-trips through the runtime's resolver
    from pyrt_core.runtime.spec import from_spec

    rc = from_spec(s, "a" * 64, str(tmp_path))
    assert rc.process.oom_score_adj == -5 and rc.sysctl == {"kernel.sem": "1"}


def test_spec_group_not_in_the_image(rootfs, tmp_path):
    with pytest.raises(ExecError, match="unable to find group nosuch") as e:
        _spec(rootfs, tmp_path, group_add=["nosuch"])
    assert e.value.exit_code == 125  # docker's


def test_spec_namespaces(rootfs, tmp_path):
    s = _spec(rootfs, tmp_path, pid_mode="host", uts_mode="host", ipc_mode="host",
              cgroupns_mode="host")
    types = {n["type"] for n in s["linux"]["namespaces"]}
    assert types == {"mount", "network"} and "hostname" not in s
    shm = next(m for m in s["mounts"] if m["destination"] == "/dev/shm")
    assert shm["type"] == "bind" and shm["source"] == "/dev/shm"
    s = _spec(rootfs, tmp_path, pid_mode="container:x", ipc_mode="none",
              joined={"pid": "/proc/42/ns/pid"})
    ns = {n["type"]: n.get("path") for n in s["linux"]["namespaces"]}
    assert ns["pid"] == "/proc/42/ns/pid" and ns["ipc"] is None
    assert not any(m["destination"] == "/dev/shm" for m in s["mounts"])


def test_spec_init(rootfs, tmp_path):
    s = _spec(rootfs, tmp_path, init=True)
    assert s["process"]["args"] == ["/run/pyrt-init", "--", "id"]
    m = next(m for m in s["mounts"] if m["destination"] == "/run/pyrt-init")
    assert m["source"] == str(tmp_path / "bundle" / "init") and "ro" in m["options"]


def test_init_copy_is_a_new_inode(tmp_path):
    import os

    from pyrt_core.containers import init

    src = tmp_path / "myinit"
    src.write_bytes(b"\x7fELF" + b"x" * 3_000_000)
    src.chmod(0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    first = init.copy_into(str(bundle), str(src))
    st, sst = os.stat(first), os.stat(src)
    assert (st.st_ino, st.st_dev) != (sst.st_ino, sst.st_dev)
    assert open(first, "rb").read() == src.read_bytes() and st.st_mode & 0o7777 == 0o555
    os.chmod(first, 0o4777)  # what a container did to its copy is gone at the next start
    again = init.copy_into(str(bundle), str(src))
    assert os.stat(again).st_mode & 0o7777 == 0o555 and os.listdir(bundle) == ["init"]
    src.chmod(0o775)
    with pytest.raises(UsageError, match="writable by another user"):
        init.find(str(src))
