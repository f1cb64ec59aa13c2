"""Bundle building: command, env, user resolution (pure logic, no root)."""
import pytest

from pyrt_core.containers import spec
from pyrt_core.errors import ExecError, UsageError
from pyrt_core.models import Container, ContainerConfig, Image, ImageConfig, VolumeSpec


def _c(**kw):
    return Container(id="a" * 64, name="t", image_id="sha256:x", image_name="img", created="",
                     storage_driver="vfs", config=ContainerConfig(image="img", **kw))


def _img(**kw):
    return Image(id="sha256:" + "b" * 64, config=ImageConfig(**kw))


@pytest.mark.parametrize("ckw, ikw, want", [
    ({}, {"cmd": ["sh"]}, ["sh"]),
    ({"command": ["echo", "hi"]}, {"entrypoint": ["/e"], "cmd": ["x"]}, ["/e", "echo", "hi"]),
    ({"entrypoint": ["/bin/true"]}, {"entrypoint": ["/e"], "cmd": ["x"]}, ["/bin/true"]),
    ({"entrypoint": ["ls"], "command": ["/"]}, {"cmd": ["x"]}, ["ls", "/"]),
])
def test_args(ckw, ikw, want):
    assert spec.resolve_args(_c(**ckw), _img(**ikw)) == want


def test_no_command_is_an_error():
    with pytest.raises(UsageError, match="no command specified"):
        spec.resolve_args(_c(), _img())


def test_env_merge():
    env = spec.merge_env(["A=1", "PATH=/bin"], ["A=2", "B=3"], "h", tty=False)
    assert env == ["A=2", "PATH=/bin", "B=3", "HOSTNAME=h"]
    assert "TERM=xterm" in spec.merge_env([], [], "h", tty=True)


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nuser:x:1000:\nextra:x:2000:user,other\nwheel:x:10:root\n")
    return str(tmp_path)


@pytest.mark.parametrize("user, want", [
    ("", (0, 0, [10])), ("root", (0, 0, [10])), ("user", (1000, 1000, [2000])),
    ("1000", (1000, 1000, [2000])), ("4242", (4242, 0, [])), ("user:extra", (1000, 2000, [])),
    ("1000:7", (1000, 7, [])), ("0:0", (0, 0, [])),
])
def test_resolve_user(rootfs, user, want):
    assert spec.resolve_user(rootfs, user) == want


@pytest.mark.parametrize("user", ["nosuch", "user:nogroup"])
def test_unknown_user(rootfs, user):
    """run/start: docker's 125 (a daemon error to its CLI); exec asks for 126."""
    with pytest.raises(ExecError, match="unable to find") as e:
        spec.resolve_user(rootfs, user)
    assert e.value.exit_code == 125
    with pytest.raises(ExecError, match="unable to find") as e:
        spec.resolve_user(rootfs, user, exit_code=126)
    assert e.value.exit_code == 126


def test_passwd_symlink_out_of_rootfs_is_not_followed(tmp_path):
    # resolved inside the root (containers.inroot): /etc/shadow of the rootfs, which it lacks
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").symlink_to("/etc/shadow")
    with pytest.raises(ExecError):
        spec.resolve_user(str(tmp_path), "root")
    (tmp_path / "etc/group").symlink_to("../../../../../../../../../etc/gshadow")
    with pytest.raises(ExecError):  # the host's group "root" is not the image's
        spec.resolve_user(str(tmp_path), "0:root")


def test_passwd_symlink_to_itself_is_a_clear_error(tmp_path):
    from pyrt_core.errors import ImageError

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").symlink_to("/etc/passwd")
    with pytest.raises(ImageError, match="cannot read /etc/passwd in the container"):
        spec.resolve_user(str(tmp_path), "root")


def test_build_spec_defaults(rootfs, tmp_path):
    c = _c(command=["id"], hostname="box", volumes=[VolumeSpec(rootfs, "/data", True)], read_only=True)
    s = spec.build_spec(c, _img(), rootfs, str(tmp_path / "bundle"))
    assert s["process"]["args"] == ["id"] and s["hostname"] == "box"
    assert s["root"] == {"path": rootfs, "readonly": True}
    assert len(s["process"]["capabilities"]["bounding"]) == 14
    assert s["process"]["noNewPrivileges"] is True
    types = {n["type"] for n in s["linux"]["namespaces"]}
    assert types == {"pid", "ipc", "uts", "mount", "cgroup", "network"}
    data = [m for m in s["mounts"] if m["destination"] == "/data"][0]
    assert "ro" in data["options"] and data["source"] == rootfs
    assert "/proc/kcore" in s["linux"]["maskedPaths"]
    # round-trips through the runtime's resolver
    from pyrt_core.runtime.config import MS_BIND, MS_RDONLY
    from pyrt_core.runtime.spec import from_spec
    rc = from_spec(s, c.id, str(tmp_path / "bundle"))
    m = [m for m in rc.mounts if m.destination == "/data"][0]
    assert m.flags & MS_RDONLY and m.flags & MS_BIND


def test_host_network_and_userns(rootfs, tmp_path):
    from pyrt_core.models import IdMap
    c = _c(command=["id"], network="host", userns=True, uidmaps=[IdMap(0, 5000, 10)])
    s = spec.build_spec(c, _img(), rootfs, str(tmp_path))
    types = {n["type"] for n in s["linux"]["namespaces"]}
    assert "network" not in types and "user" in types
    assert s["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 5000, "size": 10}]
    assert s["linux"]["gidMappings"] == s["linux"]["uidMappings"]


def test_missing_volume_source(rootfs, tmp_path):
    c = _c(command=["id"], volumes=[VolumeSpec("/nonexistent/x", "/d")])
    with pytest.raises(UsageError, match="does not exist"):
        spec.build_spec(c, _img(), rootfs, str(tmp_path))


def test_resolv_conf_drops_loopback_resolvers(monkeypatch, tmp_path):
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch x\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(f if p == "/etc/resolv.conf" else p, *a, **k))
    assert spec.resolv_conf("none") == "nameserver 10.0.0.1\nsearch x\n"
    assert "127.0.0.53" in spec.resolv_conf("host")
