"""The btrfs driver on a real btrfs: a loop file, mkfs.btrfs, a mount.

Fixtures ``btrfs_mount`` (one filesystem per test) and ``btrfs_class_mount``
(one per test class) make a sparse 1 GiB file, attach it with ``losetup
--find --show``, ``mkfs.btrfs`` it and mount it below the test's temporary
directory; afterwards they unmount (retrying, lazily as a last resort),
detach the loop device and delete the file.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid

import pytest

from pyrt_core.errors import (
    DriverNotSupported,
    DriverPrerequisitesMissing,
    NotFoundError,
    PyrtError,
    UsageError,
)
from pyrt_core.testing.storage_conformance import (
    DriverConformance,
    build_tar,
    tar_dir,
    tar_file,
    write_files,
)

from pyrt_core.testing.images import image_tools, images_dir, layered_oci_layout  # noqa: F401,E402  (fixtures)

from pyrt_core.testing import machine  # noqa: E402

drv_mod = machine.import_plugin_module("pyrt_storage_btrfs.driver", "pyrt-storage-btrfs")
from pyrt_storage_btrfs import ioctl as B  # noqa: E402
from pyrt_storage_btrfs.loopfs import LoopBtrfs  # noqa: E402

BtrfsDriver = drv_mod.BtrfsDriver
MiB = 1 << 20


def _loop_btrfs(workdir):
    """A loop-backed btrfs: skipped only for what the machine lacks (probed without the
    plugin's code); where it has btrfs and loop devices, the plugin's LoopBtrfs failing
    to make one fails the test."""
    machine.skip_unless("btrfs")
    machine.skip_unless("loop-devices")
    if not shutil.which("mkfs.btrfs"):
        pytest.skip("mkfs.btrfs is not installed (apt-get install btrfs-progs)")
    return LoopBtrfs(str(workdir)).open()


@pytest.fixture
def btrfs_mount(tmp_path):
    """The mount point of a fresh btrfs (1 GiB sparse loop file), removed afterwards."""
    work = tmp_path / "btrfs-fs"
    work.mkdir()
    fs = _loop_btrfs(work)
    try:
        yield fs.mountpoint
    finally:
        fs.close()


@pytest.fixture(scope="class")
def btrfs_class_mount(tmp_path_factory):
    """Like ``btrfs_mount``, shared by the tests of one class."""
    work = tmp_path_factory.mktemp("btrfs-fs")
    fs = _loop_btrfs(work)
    try:
        yield fs.mountpoint
    finally:
        fs.close()


@pytest.fixture
def btrfs(btrfs_mount):
    """A BtrfsDriver with its home on a fresh btrfs."""
    return BtrfsDriver(os.path.join(btrfs_mount, "store", "storage", "btrfs"), {})


def _write_bytes(path: str, total: int, chunk: int = MiB) -> int:
    """Write zeros to ``path`` until ``total`` bytes or an error; return bytes written."""
    done = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        buf = b"\0" * chunk
        while done < total:
            done += os.write(fd, buf)
        os.fsync(fd)
    finally:
        os.close(fd)
    return done


# -- the conformance suite -------------------------------------------------------------------
class TestBtrfsConformance(DriverConformance):
    driver_name = "btrfs"

    @pytest.fixture(autouse=True)
    def _on_btrfs(self, btrfs_class_mount):
        self._mnt = btrfs_class_mount

    def make_driver(self, home):
        # the suite's home is on the test's tmp_path (not btrfs): use one on ours
        return BtrfsDriver(os.path.join(self._mnt, "homes", uuid.uuid4().hex[:12]), {})


# -- refusal ----------------------------------------------------------------------------------------
def test_refuses_a_home_not_on_btrfs(tmp_path):
    home = tmp_path / "store" / "storage" / "btrfs"
    home.mkdir(parents=True)
    with pytest.raises(DriverPrerequisitesMissing) as e:
        BtrfsDriver(str(home), {})
    msg = str(e.value)
    assert "not btrfs" in msg and str(home) in msg and "\n" not in msg
    assert not home.exists()  # the empty home made for it is not left behind
    with pytest.raises(DriverPrerequisitesMissing, match="not btrfs"):
        BtrfsDriver.probe(str(tmp_path / "never" / "made"))
    assert not (tmp_path / "never").exists()


def test_probe_on_btrfs_does_not_create_home(btrfs_mount):
    home = os.path.join(btrfs_mount, "a", "b")
    assert BtrfsDriver.probe(home) == {"fstype": "btrfs"}
    assert not os.path.exists(os.path.join(btrfs_mount, "a"))


def test_unknown_driver_option(btrfs_mount):
    with pytest.raises(UsageError, match="mountopt"):
        BtrfsDriver(os.path.join(btrfs_mount, "h"), {"mountopt": "x"})
    with pytest.raises(UsageError, match="size"):
        BtrfsDriver(os.path.join(btrfs_mount, "h"), {"size": "lots"})


# -- layout: subvolumes and snapshots ------------------------------------------------------------------
def test_layers_are_subvolumes_and_snapshots(btrfs):
    btrfs.create("base", None)
    base = btrfs.get("base")
    assert base == os.path.join(btrfs.home, "subvolumes", "base")
    assert B.is_subvolume_root(os.lstat(base))
    write_files(base, {"/big": b"x" * (4 * MiB)})
    btrfs.put("base")
    btrfs.create("child", "base")
    btrfs.create_rw("ctr", "child")
    ids = set()
    for id in ("base", "child", "ctr"):
        path = btrfs.get(id)
        assert B.is_subvolume_root(os.lstat(path)), id
        ids.add(B.subvolume_id(path))
        assert btrfs.metadata(id)["SubvolumeID"] == str(B.subvolume_id(path))
        btrfs.put(id)
    assert len(ids) == 3
    # a snapshot shares its parent's extents: three layers of a 4 MiB file cost far less than 12 MiB
    os.sync()
    st = os.statvfs(btrfs.home)
    assert (st.f_blocks - st.f_bfree) * st.f_frsize < 10 * MiB
    assert sorted(os.listdir(os.path.join(btrfs.home, "subvolumes"))) == ["base", "child", "ctr"]
    assert btrfs.supports_parallel_apply() is False


def test_base_layer_mode_ignores_umask(btrfs):
    old = os.umask(0o077)
    try:
        btrfs.create("base", None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(btrfs.get("base")).st_mode) == 0o755


def test_invalid_ids_are_refused(btrfs):
    for bad in ("../x", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(UsageError):
            btrfs.create(bad, None)


# -- nested subvolumes ---------------------------------------------------------------------------------
def _make_nested(root: str) -> list[str]:
    os.makedirs(os.path.join(root, "deep", "er"))
    B.subvolume_create(os.path.join(root, "deep", "er"), "inner")
    B.subvolume_create(os.path.join(root, "deep", "er", "inner"), "innermost")
    write_files(os.path.join(root, "deep", "er", "inner", "innermost"), {"/f": "x"})
    B.subvolume_create(root, "top")
    os.chmod(os.path.join(root, "deep"), 0)  # an unfriendly mode does not stop removal
    return [os.path.join(root, p) for p in
            ("deep/er/inner/innermost", "deep/er/inner", "top")]


def test_remove_destroys_nested_subvolumes(btrfs):
    btrfs.create("base", None)
    btrfs.create_rw("ctr", "base")
    root = btrfs.get("ctr")
    nested = _make_nested(root)
    btrfs.put("ctr")
    assert B.nested_subvolumes(root) == nested  # deepest first
    # a subvolume cannot be destroyed while it holds others: the driver does it in order
    with pytest.raises(OSError) as e:
        B.subvolume_destroy(os.path.dirname(root), "ctr")
    assert e.value.errno == errno.ENOTEMPTY
    btrfs.remove("ctr")
    assert not btrfs.exists("ctr")
    assert not os.path.lexists(root)
    assert btrfs.exists("base")
    btrfs.remove("base")
    assert os.listdir(os.path.join(btrfs.home, "subvolumes")) == []


def test_remove_with_read_only_subvolumes(btrfs):
    btrfs.create_rw("ctr", None)
    root = btrfs.get("ctr")
    nested = _make_nested(root)
    B.set_subvolume_readonly(nested[1], True)  # "inner", holding "innermost"
    B.set_subvolume_readonly(root, True)
    assert B.subvolume_readonly(root) and not B.subvolume_readonly(nested[0])
    btrfs.remove("ctr")
    assert not btrfs.exists("ctr")


def test_nested_subvolumes_found_by_walking_without_tree_search(btrfs, monkeypatch):
    btrfs.create("ctr", None)
    root = btrfs.get("ctr")
    nested = _make_nested(root)
    os.chmod(os.path.join(root, "deep"), 0o755)

    def denied(path):
        raise OSError(errno.EPERM, "Operation not permitted", path)

    monkeypatch.setattr(B, "child_subvolumes", denied)
    assert B.nested_subvolumes(root) == nested
    btrfs.remove("ctr")
    assert not btrfs.exists("ctr")


def test_snapshot_of_layer_with_nested_subvolume(btrfs):
    """A snapshot does not include nested subvolumes (they show as empty
    directories), and both layers remove cleanly."""
    btrfs.create("base", None)
    root = btrfs.get("base")
    B.subvolume_create(root, "sub")
    write_files(os.path.join(root, "sub"), {"/inside": "x"})
    btrfs.create("child", "base")
    child = btrfs.get("child")
    assert os.listdir(os.path.join(child, "sub")) == []
    btrfs.remove("child")
    btrfs.remove("base")
    assert os.listdir(os.path.join(btrfs.home, "subvolumes")) == []


# -- size limits -------------------------------------------------------------------------------------------
def test_size_limit_stops_writes(btrfs):
    assert dict(btrfs.status())["Quotas Enabled"] == "no"
    btrfs.create("base", None)
    write_files(btrfs.get("base"), {"/etc/hostname": "base\n"})
    btrfs.create_rw("ctr", "base", {"size": "64M"})
    assert dict(btrfs.status())["Quotas Enabled"] == "yes"
    assert btrfs.quota("ctr") == 64 * MiB
    assert open(os.path.join(btrfs.home, "quotas", "ctr")).read().strip() == str(64 * MiB)
    meta = btrfs.metadata("ctr")
    assert meta["Size"] == str(64 * MiB) and int(meta["Referenced"]) < MiB
    root = btrfs.get("ctr")
    with pytest.raises(OSError) as e:
        _write_bytes(os.path.join(root, "big"), 200 * MiB)
    assert e.value.errno == errno.EDQUOT
    assert os.path.getsize(os.path.join(root, "big")) <= 64 * MiB
    # the sibling without a limit is not affected
    btrfs.create_rw("free", "base")
    assert btrfs.quota("free") is None
    assert _write_bytes(os.path.join(btrfs.get("free"), "big"), 100 * MiB) == 100 * MiB
    btrfs.remove("ctr")
    assert not os.path.exists(os.path.join(btrfs.home, "quotas", "ctr"))


def test_size_limit_is_persisted_and_reapplied(btrfs):
    btrfs.create("base", None)
    btrfs.create_rw("ctr", "base", {"size": "32m"})
    root = btrfs.get("ctr")
    B.quota_disable(root)  # drops every qgroup and limit
    assert B.quota_enabled(root) is False
    # a new driver instance (another pyrt process) re-applies the limit on get
    again = BtrfsDriver(btrfs.home, {})
    assert again.quota("ctr") == 32 * MiB
    root = again.get("ctr")
    assert B.quota_enabled(root) is True
    assert B.qgroup_usage(root, B.subvolume_id(root))["max_referenced"] == 32 * MiB
    with pytest.raises(OSError) as e:
        _write_bytes(os.path.join(root, "big"), 100 * MiB)
    assert e.value.errno == errno.EDQUOT


def test_size_counts_the_image_data(btrfs):
    btrfs.create("base", None)
    write_files(btrfs.get("base"), {"/blob": os.urandom(3 * MiB)})
    os.sync()
    with pytest.raises(UsageError, match="image"):
        btrfs.create_rw("ctr", "base", {"size": "2M"})
    assert not btrfs.exists("ctr")
    assert not os.path.exists(os.path.join(btrfs.home, "quotas", "ctr"))
    btrfs.create_rw("ctr", "base", {"size": "8M"})
    root = btrfs.get("ctr")
    with pytest.raises(OSError) as e:
        _write_bytes(os.path.join(root, "more"), 8 * MiB)  # 3 MiB shared + 8 MiB > 8 MiB
    assert e.value.errno == errno.EDQUOT


@pytest.mark.parametrize("opts, match", [
    ({"size": "lots"}, "invalid size"),
    ({"size": "512k"}, "too small"),
    ({"size": "-5G"}, "invalid size"),
    ({"inodes": "10"}, "inodes"),
])
def test_bad_size_options(btrfs, opts, match):
    btrfs.create("base", None)
    with pytest.raises(UsageError, match=match):
        btrfs.create_rw("ctr", "base", opts)
    assert not btrfs.exists("ctr")
    assert dict(btrfs.status())["Quotas Enabled"] == "no"  # not turned on for nothing


def test_min_space_and_default_size_options(btrfs_mount):
    home = os.path.join(btrfs_mount, "h")
    d = BtrfsDriver(home, {"size": "48M", "min_space": "16M"})
    assert dict(d.status())["Default Container Size"] == "48 MiB"
    d.create("base", None)
    d.create_rw("ctr", "base")  # the driver's default applies
    assert d.quota("ctr") == 48 * MiB
    d.create_rw("ctr2", "base", {"size": "20M"})  # the container's own wins
    assert d.quota("ctr2") == 20 * MiB
    d.create("image-layer", "base")  # image layers never get a limit
    assert d.quota("image-layer") is None
    with pytest.raises(UsageError, match="too small"):
        d.create_rw("ctr3", "base", {"size": "8M"})
    with pytest.raises(UsageError, match="too small"):
        BtrfsDriver(home, {"size": "8M", "min_space": "16M"})


# -- status / errors ----------------------------------------------------------------------------------------
def test_status(btrfs):
    s = dict(btrfs.status())
    assert s["Backing Filesystem"] == "btrfs"
    assert s["Filesystem UUID"] == B.fsid(btrfs.home)
    assert s["Quotas Enabled"] == "no"
    assert s["Space Total"].endswith("GiB") or s["Space Total"].endswith("MiB")
    assert s["Space Used"] and s["Space Available"]
    assert s["Layers"] == "0"
    btrfs.create("base", None)
    assert dict(btrfs.status())["Layers"] == "1"


def test_missing_layers(btrfs):
    with pytest.raises(NotFoundError):
        btrfs.get("nope")
    with pytest.raises(NotFoundError):
        btrfs.create("child", "nope")
    with pytest.raises(NotFoundError):
        btrfs.metadata("nope")
    btrfs.remove("nope")


def test_apply_and_diff_through_naive_diff(btrfs):
    btrfs.create("base", None)
    btrfs.apply_diff("base", None, build_tar([tar_dir("etc"), tar_file("etc/a", b"a"),
                                              tar_file("gone", b"g")]))
    btrfs.create_rw("ctr", "base")
    write_files(btrfs.get("ctr"), {"/etc/b": "b", "/gone": None})
    got = [(c.path, c.kind) for c in btrfs.changes("ctr", "base")]
    assert ("/etc/b", "A") in got and ("/gone", "D") in got
    assert btrfs.diff_size("ctr", "base") == 1


# -- automatic selection ---------------------------------------------------------------------------------------
def _settings(root, **kw):
    from pyrt_core.config import load_settings

    return load_settings(root=str(root), env={}, config=None, **kw)


@pytest.fixture
def no_overlay(monkeypatch):
    """No overlay driver to choose: not installed (the storage_btrfs-alone environment),
    or made to refuse as on a kernel without overlayfs."""
    if not machine.has("distribution", "pyrt-storage-overlay"):
        return
    ov = machine.import_plugin_module("pyrt_storage_overlay.driver", "pyrt-storage-overlay")

    def refuse(cls, home):
        raise DriverNotSupported("overlay: the kernel does not support overlayfs (test)")

    monkeypatch.setattr(ov.OverlayDriver, "probe", classmethod(refuse))


def test_btrfs_chosen_when_overlay_unavailable(btrfs_mount, no_overlay):
    from pyrt_core.storage import select

    assert select.PRIORITY.index("btrfs") < select.PRIORITY.index("vfs")
    root = os.path.join(btrfs_mount, "root")
    name, drv = select.select_driver(_settings(root))
    assert name == "btrfs" and isinstance(drv, BtrfsDriver)
    assert drv.home == os.path.join(root, "storage", "btrfs")
    assert open(os.path.join(root, "storage", "driver")).read().split()[0] == "btrfs"
    probes = {p["name"]: p for p in select.probe_all(_settings(root))}
    assert probes["btrfs"]["usable"] is True
    if machine.has("distribution", "pyrt-storage-overlay"):
        assert probes["overlay"]["usable"] is False
    else:
        assert set(probes) == {"btrfs", "vfs"}


def test_overlay_first_when_available(btrfs_mount):
    from pyrt_core.storage import select

    machine.skip_unless("distribution", "pyrt-storage-overlay")
    root = os.path.join(btrfs_mount, "root")
    name, drv = select.select_driver(_settings(root))
    try:
        assert name == "overlay"  # the priority order: overlay, btrfs, devicemapper, vfs
    finally:
        drv.cleanup()
    # explicitly requested on another store: btrfs
    name, _ = select.select_driver(_settings(os.path.join(btrfs_mount, "root2"),
                                             storage_driver="btrfs"))
    assert name == "btrfs"


def test_btrfs_skipped_off_btrfs(tmp_path, no_overlay):
    from pyrt_core.storage import select

    root = tmp_path / "root"
    name, _ = select.select_driver(_settings(root))
    assert name not in ("btrfs", "overlay")
    assert not (root / "storage" / "btrfs").exists()
    probes = {p["name"]: p for p in select.probe_all(_settings(root))}
    assert probes["btrfs"]["usable"] is False and "not btrfs" in probes["btrfs"]["reason"]


# -- the engine and the CLI on a btrfs store ---------------------------------------------------------------------
@pytest.fixture
def btrfs_cli(btrfs_mount, tmp_path, demo_layout, no_leaks):
    from pyrt_core.testing.cli import PyrtCLI

    # containers on the btrfs store: an isolation plugin runs them, pyrt-cgroups their
    # device rules (the tests expect no "without a device cgroup" warning)
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run containers")
    machine.skip_unless("distribution", "pyrt-cgroups", detail="to run containers")
    cli = PyrtCLI(os.path.join(btrfs_mount, "root"), tmp_path / "run", driver="btrfs")
    try:
        iid = cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
        cli("tag", iid, "demo/busybox:latest", check=True)
        cli.image = "demo/busybox"
        yield cli
    finally:
        cli.cleanup(no_leaks)


def test_cli_load_and_run_on_btrfs(btrfs_cli):
    cli = btrfs_cli
    r = cli("run", "--rm", cli.image, "sh", "-c", "echo hello > /f; cat /f; cat /etc/passwd | head -1")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello\nroot:x:0:0:root:/root:/bin/sh\n", "")
    r = cli("run", "--name", "keep", cli.image, "sh", "-c", "echo kept > /marker")
    assert r.returncode == 0, r.stderr
    info = cli("info", check=True).stdout
    assert "Storage driver: btrfs" in info
    for line in ("Backing Filesystem: btrfs", "Quotas Enabled: no", "Space Used:"):
        assert line in info, info
    insp = cli("inspect", "--type", "container", "keep", check=True).stdout
    assert '"btrfs"' in insp
    home = os.path.join(cli.root, "storage", "btrfs", "subvolumes")
    layers = os.listdir(home)
    assert any(os.path.exists(os.path.join(home, l, "marker")) for l in layers)
    cli("rm", "keep", check=True)
    assert len(os.listdir(home)) == len(layers) - 1


def test_cli_layered_image_on_btrfs(btrfs_cli, layered_oci_layout):
    """A 4-layer image (whiteout, opaque directory, hard link) loads as a chain of snapshots."""
    cli = btrfs_cli
    iid = cli("load", "-q", "-i", layered_oci_layout[0], check=True).stdout.split()[0]
    r = cli("run", "--rm", iid, "sh", "-c",
            "test ! -e /data/gone.txt && cat /data/keep.txt /etc/hello && ls /opq "
            "&& stat -c %h /links/hard && readlink /links/sym")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "keep\nhello from layer 3\nfresh.txt\n2\ntarget.txt\n"
    home = os.path.join(cli.root, "storage", "btrfs", "subvolumes")
    layers = os.listdir(home)
    assert len(layers) >= 4
    assert all(B.is_subvolume_root(os.lstat(os.path.join(home, l))) for l in layers)


def test_cli_size_limit_inside_container(btrfs_cli):
    cli = btrfs_cli
    r = cli("run", "--rm", "--storage-opt", "size=64M", cli.image, "sh", "-c",
            "dd if=/dev/zero of=/big bs=1M count=200")
    assert r.returncode != 0
    assert "Disk quota exceeded" in r.stderr, r.stderr
    r = cli("run", "--rm", cli.image, "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=100 2>&1")
    assert r.returncode == 0, r.stdout  # no limit without the option
    assert "Quotas Enabled: yes" in cli("info", check=True).stdout


def test_engine_container_storage_opts(btrfs_cli, tmp_path):
    """ContainerConfig.storage_opts (docker's per-container --storage-opt) reaches create_rw."""
    from pyrt_core.config import load_settings
    from pyrt_core.engine import Engine
    from pyrt_core.models import ContainerConfig

    engine = Engine(load_settings(root=btrfs_cli.root, runroot=btrfs_cli.runroot,
                                  storage_driver="btrfs", env={}, config=None))
    out = tmp_path / "out"
    config = ContainerConfig(image=btrfs_cli.image, auto_remove=True,
                             command=["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=200"],
                             storage_opts={"size": "48M"})
    with open(out, "wb") as f, open(os.devnull, "rb") as null:
        code = engine.run(config, stdio=(null.fileno(), f.fileno(), f.fileno()))
    assert code != 0
    assert "Disk quota exceeded" in out.read_text()
    c = engine.create(ContainerConfig(image=btrfs_cli.image, storage_opts={"size": "40M"}))
    try:
        assert engine.driver.quota(c.layer_id) == 40 * MiB
    finally:
        engine.remove(c)
    with pytest.raises(PyrtError):
        engine.create(ContainerConfig(image=btrfs_cli.image, storage_opts={"size": "tiny"}))
    assert engine.containers.list() == []


def test_plugin_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, pyrt_storage_btrfs.driver; "
            "print(' '.join(m for m in ('ctypes', 'tarfile', 'json', 'subprocess') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
