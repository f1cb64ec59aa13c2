"""Volumes without the kernel: the flags' parsing (docker's syntax and messages), the
name rule, the core's records with the local driver's plain directories, the spec's
mount entries, and the copy-up's refusal to leave the rootfs (on plain directories)."""
from __future__ import annotations

import os

import pytest

from pyrt_core.errors import ConflictError, NotFoundError, UsageError
from pyrt_core.models import VolumeSpec, check_volume_name
from pyrt_core.volumes import names


# -- -v ----------------------------------------------------------------------------------

def test_v_bind_named_anonymous():
    b = VolumeSpec.parse("/srv/x/:/data:ro")
    assert (b.type, b.source, b.destination, b.readonly, b.create_source) == \
        ("bind", "/srv/x", "/data", True, True)
    n = VolumeSpec.parse("pgdata:/var/lib/data")
    assert (n.type, n.source, n.anonymous, n.readonly) == ("volume", "pgdata", False, False)
    a = VolumeSpec.parse("/cache")
    assert (a.type, a.source, a.destination, a.anonymous) == ("volume", "", "/cache", True)
    assert VolumeSpec.parse("data:/x:ro,nocopy").nocopy
    assert VolumeSpec.parse("/h:/c:rshared").propagation == "rshared"


@pytest.mark.parametrize("text, words", [
    ("../../etc:/x", "invalid characters"),
    ("a/b:/x", "invalid characters"),
    ("data:rel", "absolute"),
    ("/h:/c:bogus", "unknown option"),
    ("a:b:c:d", "invalid volume specification"),
    ("data:/x:rshared", "propagation"),
    ("relative", "absolute"),
])
def test_v_refused(text, words):
    with pytest.raises(UsageError, match=words):
        VolumeSpec.parse(text)


# -- --mount -----------------------------------------------------------------------------

def test_mount_keys():
    m = VolumeSpec.parse_mount("type=bind,source=/srv,target=/data,readonly,"
                               "bind-propagation=rslave")
    assert (m.type, m.source, m.destination, m.readonly, m.propagation, m.create_source) == \
        ("bind", "/srv", "/data", True, "rslave", False)
    v = VolumeSpec.parse_mount("src=db,dst=/db,volume-driver=local,volume-opt=type=tmpfs,"
                               "volume-opt=device=tmpfs,volume-nocopy")
    assert (v.type, v.source, v.driver, v.driver_opts, v.nocopy) == \
        ("volume", "db", "local", {"type": "tmpfs", "device": "tmpfs"}, True)
    t = VolumeSpec.parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert (t.tmpfs_size, t.tmpfs_mode) == (64 << 20, 0o1770)
    assert VolumeSpec.parse_mount("type=volume,target=/anon").anonymous
    assert VolumeSpec.parse_mount("type=bind,src=/a,dst=/b,ro=false").readonly is False


@pytest.mark.parametrize("text, words", [
    ("type=bind,src=/a", "target is required"),
    ("type=nfs,dst=/a", "invalid mount type"),
    ("type=tmpfs,src=x,dst=/a", 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ("type=bind,dst=/a", "field Source must not be empty"),
    ("type=bind,src=rel,dst=/a", "must be absolute"),
    ("type=bind,src=/a,dst=/b,volume-nocopy", "VolumeOptions must not be specified"),
    ("type=volume,dst=/b,bind-propagation=shared", "BindOptions must not be specified"),
    ("type=volume,dst=/b,tmpfs-size=1m", "TmpfsOptions must not be specified"),
    ("type=bind,src=/a,dst=/b,colour=blue", "unexpected key"),
    ("type=tmpfs,dst=/b,tmpfs-mode=999", "tmpfs-mode"),
    ("src=../x,dst=/b", "invalid characters"),
    ("type=bind,src=/a,dst=/b,justaword", "must be a key=value pair"),
])
def test_mount_refused(text, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        VolumeSpec.parse_mount(text)


def test_tmpfs_flag():
    t = VolumeSpec.parse_tmpfs("/run:size=64m,mode=1777,exec")
    assert t.tmpfs_options == [f"size={64 << 20}", "mode=1777", "exec"]
    from pyrt_core.containers.mounts import tmpfs_entry

    e = tmpfs_entry(t)
    assert e["type"] == "tmpfs" and "noexec" not in e["options"] and "exec" in e["options"]
    assert {"nosuid", "nodev"} <= set(e["options"])
    with pytest.raises(UsageError, match="unknown option"):
        VolumeSpec.parse_tmpfs("/run:colour=red")
    with pytest.raises(UsageError, match="absolute"):
        VolumeSpec.parse_tmpfs("run")


def test_old_records_load():
    from pyrt_core.models import ContainerConfig

    cfg = ContainerConfig.from_dict({"image": "x", "volumes": [
        {"source": "/a", "destination": "/b", "readonly": True}]})
    v = cfg.volumes[0]
    assert (v.type, v.source, v.readonly, v.create_source) == ("bind", "/a", True, False)
    again = ContainerConfig.from_dict(ContainerConfig(image="x", volumes=[
        VolumeSpec.parse_mount("type=tmpfs,dst=/t,tmpfs-size=1k")]).to_dict())
    assert again.volumes[0].tmpfs_size == 1024


# -- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ab", "a.b-c_d", "0x", "A" * 255, "a", "", ".x", "-x",
                                  "..", "../etc", "a/b", "a b", "é1", "A" * 256, "x\x00y"])
def test_the_two_name_checks_agree(name):
    try:
        check_volume_name(name)
        ok_models = True
    except UsageError:
        ok_models = False
    assert names.valid(name) is ok_models


# -- the records and the local driver's directories --------------------------------------

class _PM:
    """The builtin plugin's volume hooks, called as the lean caller would."""

    class hook:
        pass

    def __init__(self):
        from pyrt_core import builtin

        for n in dir(builtin):
            if n.startswith("pyrt_volume_"):
                f = getattr(builtin, n)
                if n == "pyrt_volume_drivers":
                    setattr(self.hook, n, staticmethod(lambda f=f: [f()]))
                else:
                    setattr(self.hook, n, staticmethod(f))


class _Engine:
    def __init__(self, root):
        class S:
            pass

        self.settings = S()
        self.settings.root = str(root)
        self.pm = _PM()

        class C:
            def list(self_inner):
                return self.containers_list

        self.containers = C()
        self.containers_list = []


def test_create_inspect_remove(tmp_path):
    from pyrt_core.engine import volumes as ev

    eng = _Engine(tmp_path)
    rec, made = ev.create_volume(eng, "data", labels={"a": "b"})
    assert made and rec["Driver"] == "local" and rec["Labels"] == {"a": "b"}
    d = tmp_path / "volumes" / "data"
    assert (d / "_data").is_dir() and oct(d.stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "volumes").stat().st_mode & 0o777) == "0o700"
    again, made = ev.create_volume(eng, "data")
    assert not made and again["CreatedAt"] == rec["CreatedAt"]
    ins = ev.inspect_volume(eng, rec)
    assert set(ins) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert ins["Mountpoint"] == str(d / "_data") and ins["Scope"] == "local"
    with pytest.raises(NotFoundError, match="plugin"):
        ev.create_volume(eng, "other", driver="nosuch")
    assert not (tmp_path / "volumes" / "other").exists()
    with pytest.raises(UsageError, match="invalid option key"):
        ev.create_volume(eng, "bad", options={"colour": "red"})
    assert not (tmp_path / "volumes" / "bad").exists()  # nothing left behind
    ev.remove_volume(eng, "data")
    assert not d.exists()
    with pytest.raises(NotFoundError, match="no such volume"):
        ev.remove_volume(eng, "data")
    ev.remove_volume(eng, "data", force=True)


def test_in_use_refused(tmp_path):
    from pyrt_core.engine import volumes as ev

    eng = _Engine(tmp_path)
    ev.create_volume(eng, "busy")

    class C:
        id = "c" * 64

        class config:
            volumes = [VolumeSpec.parse("busy:/x")]

    eng.containers_list = [C]
    with pytest.raises(ConflictError, match=r"remove busy: volume is in use - \[c{64}\]"):
        ev.remove_volume(eng, "busy")
    assert (tmp_path / "volumes" / "busy" / "_data").is_dir()
    assert ev.prune(eng, all_volumes=True) == []
    eng.containers_list = []
    assert ev.prune(eng) == []  # named volumes stay without -a
    assert ev.prune(eng, all_volumes=True) == ["busy"]


def test_names_are_never_paths(tmp_path):
    from pyrt_core.engine import volumes as ev
    from pyrt_core.volumes.store import VolumeStore

    eng = _Engine(tmp_path)
    for bad in ("../../etc", "..", "a/../../b", "/etc"):
        with pytest.raises(UsageError):
            ev.create_volume(eng, bad)
        with pytest.raises(UsageError):
            ev.remove_volume(eng, bad)
        assert VolumeStore(str(tmp_path)).load(bad) is None
    assert not os.path.exists(tmp_path / "etc")


# -- copy-up on plain directories --------------------------------------------------------

def test_copy_up_keeps_owners_modes_and_links(tmp_path):
    from pyrt_core.containers.copyup import copy_up
    from pyrt_core.testing import machine

    machine.skip_unless("root", detail="the test gives files other owners (chown)")

    root = tmp_path / "rootfs"
    src = root / "srv" / "app"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_text("content")
    os.chown(src / "f", 1234, 5678)
    os.chmod(src / "f", 0o640)
    os.chmod(src / "sub", 0o1750)
    os.chown(src, 33, 33)
    os.chmod(src, 0o751)
    os.symlink("/etc/passwd", src / "link")
    dest = tmp_path / "vol"
    dest.mkdir()
    assert copy_up(str(root), "/srv/app", str(dest))
    st = os.stat(dest / "f")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o640)
    assert (dest / "f").read_text() == "content"
    assert os.stat(dest / "sub").st_mode & 0o7777 == 0o1750
    assert os.readlink(dest / "link") == "/etc/passwd"  # copied as a link, not followed
    top = os.stat(dest)
    assert (top.st_uid, top.st_mode & 0o777) == (33, 0o751)
    assert not copy_up(str(root), "/srv/app", str(dest))  # not empty any more


def test_copy_up_stays_in_the_rootfs(tmp_path):
    """The image's path and its parents are symlinks to host directories: resolved
    inside the rootfs, so what is copied is the rootfs's, never the host's."""
    from pyrt_core.containers.copyup import copy_up

    host = tmp_path / "host-secret-dir"
    host.mkdir()
    (host / "secret").write_text("host secret")
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink(str(host), root / "data")  # absolute: means <rootfs>/<host path> inside
    os.symlink("../../../../../../../../" + str(host).lstrip("/"), root / "rel")
    (root / "parent").symlink_to(str(tmp_path))
    for path in ("/data", "/rel", "/parent/host-secret-dir"):
        dest = tmp_path / ("vol" + path.replace("/", "_"))
        dest.mkdir()
        copy_up(str(root), path, str(dest))
        assert not (dest / "secret").exists(), path


def test_concurrent_creates_and_removes_of_one_name(tmp_path):
    """Twelve processes create the same volume at once: one makes it, the others get it;
    then twelve remove it at once: one removes it, the others find none (the lock)."""
    import multiprocessing

    from pyrt_core.engine import volumes as ev

    ctx = multiprocessing.get_context("fork")

    def create(q):
        q.put(ev.create_volume(_Engine(tmp_path), "shared")[1])

    def remove(q):
        try:
            ev.remove_volume(_Engine(tmp_path), "shared")
            q.put("removed")
        except NotFoundError:
            q.put("none")

    for fn, want in ((create, [True] + [False] * 11), (remove, ["none"] * 11 + ["removed"])):
        q = ctx.Queue()
        procs = [ctx.Process(target=fn, args=(q,)) for _ in range(12)]
        for p in procs:
            p.start()
        got = sorted(q.get(timeout=30) for _ in procs)
        for p in procs:
            p.join(30)
        assert got == sorted(want), got
    assert not (tmp_path / "volumes" / "shared").exists()


def test_recovery_releases_mounts_of_runs_that_are_over(tmp_path):
    """release_stale (``pyrt system recover``): a MountedBy entry of a container that no
    longer runs gets the driver's unmount; a running one's stays."""
    from pyrt_core.engine import volumes as ev
    from pyrt_core.volumes import local
    from pyrt_core.volumes.store import VolumeStore

    eng = _Engine(tmp_path)
    ev.create_volume(eng, "held")
    vs = VolumeStore(str(tmp_path))
    for cid in ("dead" * 16, "live" * 16):
        local.mount(str(tmp_path), "held", cid)
        rec = vs.get("held")
        rec["MountedBy"].append(cid)
        vs.save(rec)
    actions = ev.release_stale(eng, running={"live" * 16})
    assert actions == [f"released volume held of {'dead' * 3}"]
    assert vs.get("held")["MountedBy"] == ["live" * 16]
    assert local._state(str(tmp_path), "held")["users"] == ["live" * 16]
    with pytest.raises(ConflictError, match="in use"):
        ev.remove_volume(eng, "held")  # still mounted by the live run
