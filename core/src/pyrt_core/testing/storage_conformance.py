"""The storage-driver conformance suite, an opt-in pytest plugin.

Every storage driver, built in or third party, should pass it.  To test
yours, opt in from your test suite's top-level ``conftest.py``::

    pytest_plugins = ["pyrt_core.testing.storage_conformance"]

and subclass :class:`DriverConformance` in a test module::

    from pyrt_core.testing.storage_conformance import DriverConformance

    class TestMyDriver(DriverConformance):
        driver_name = "mydriver"       # entry-point name in pyrt.storage.drivers

        # or construct it yourself:
        # def make_driver(self, home):
        #     return MyDriver(home, {})

Each test gets a fresh driver whose home is under ``tmp_path``.  At
teardown the plugin calls ``driver.cleanup()`` and then lazily unmounts
anything still mounted below the home, so a failing driver cannot leave
mounts behind; a mount ``cleanup()`` left (it must release everything the
driver holds) fails the test, with the mount points.  A driver whose constructor raises ``DriverNotSupported`` or
``DriverPrerequisitesMissing`` makes the tests skip with that reason.

Most drivers mount and every layer holds files owned by other users, so
the suite skips when not run as root; a driver that needs neither sets
``needs_root = False`` (ownership and device entries are then left out).

What is checked (the rules of :class:`pyrt_core.storage.driver.StorageDriver`):
layer creation, snapshot semantics, get/put, removal (also of mounted
layers), applying layer tars with whiteouts, diffs that round-trip, the
list of changes, diff sizes, layer chains and that applying a malicious
tar writes nothing outside the driver's home.

Helpers for your own driver-specific tests: :func:`build_tar` with the
``tar_*`` entry makers, :func:`tree_snapshot`, :func:`mounts_under`,
:func:`write_files`.
"""
from __future__ import annotations

import io
import os
import stat
import tarfile
import uuid
from typing import Any, Iterable

import pytest

from pyrt_core.errors import (
    DriverNotSupported,
    DriverPrerequisitesMissing,
    LayerError,
    PyrtError,
    UsageError,
)
from pyrt_core.storage.driver import Change, StorageDriver
from pyrt_core.testing import machine

__all__ = [
    "DriverConformance", "build_tar", "tar_file", "tar_dir", "tar_symlink", "tar_hardlink",
    "tar_device", "tar_fifo", "tar_whiteout", "tar_opaque", "tree_snapshot", "mounts_under",
    "unmount_all_under", "write_files", "load_driver_entry_point", "MTIME",
]

IS_ROOT = os.geteuid() == 0
#: the mtime given to tar entries (2021-01-01T00:00:00Z)
MTIME = 1609459200


# -- plugin hooks and fixtures --------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line(
        "markers", "storage_conformance: a test of pyrt's storage-driver conformance suite")


@pytest.fixture
def driver_home(tmp_path):
    """An empty directory for a driver's home; anything mounted below it is
    lazily unmounted at teardown."""
    home = tmp_path / "driver-home"
    home.mkdir(mode=0o700)
    try:
        yield str(home)
    finally:
        unmount_all_under(str(home))


@pytest.fixture
def driver(request, driver_home):
    """The driver under test, made by the test class's ``make_driver``;
    cleaned up (and every mount below its home removed) at teardown."""
    inst = request.instance
    if inst is None or not hasattr(inst, "make_driver"):
        raise TypeError("the 'driver' fixture is for subclasses of DriverConformance")
    if getattr(inst, "needs_root", True) and not IS_ROOT:
        pytest.skip(machine.reason("root", detail="set needs_root = False if your driver does not"))
    try:
        drv = inst.make_driver(driver_home)
    except (DriverNotSupported, DriverPrerequisitesMissing) as e:
        pytest.skip(f"storage driver not usable on this host: {e}")
    left = []
    try:
        yield drv
    finally:
        try:
            drv.cleanup()
        finally:
            left = mounts_under(driver_home)
            unmount_all_under(driver_home)
    if left:
        pytest.fail(f"driver.cleanup() left mounts below the driver's home: {left}", pytrace=False)


# -- helpers -------------------------------------------------------------------------------
def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo), deepest first."""
    import re

    path = os.path.realpath(path).rstrip("/")
    out = set()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            field = line.split(b" ", 5)[4]
            field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
            mp = os.fsdecode(field)
            if mp == path or mp.startswith(path + "/"):
                out.add(mp)
    return sorted(out, key=lambda m: (-m.count("/"), m))


def unmount_all_under(path: str) -> None:
    """Lazily unmount every mount at or below ``path`` (the test safety net)."""
    mps = mounts_under(path)
    if not mps:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(3):  # stacked mounts need one pass each
        for mp in mps:
            libc.umount2(os.fsencode(mp), 2)  # MNT_DETACH
        mps = mounts_under(path)
        if not mps:
            return


def load_driver_entry_point(name: str) -> type[StorageDriver]:
    """The driver class registered as ``name`` in ``pyrt.storage.drivers``, loaded the
    way pyrt loads it (:func:`pyrt_core.storage.select.load_driver_class`), so the
    suite tests what ``pyrt --storage-driver NAME`` would use.  A name no installed
    distribution declares is a :class:`LookupError`."""
    from pyrt_core.storage import select

    if name not in select.installed_drivers():
        installed = select.installed_drivers()
        raise LookupError(f"no storage driver {name!r} is installed "
                          f"(installed: {', '.join(installed) or 'none'})")
    return select.load_driver_class(name)


def _info(name: str, type: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = mode
    ti.uid, ti.gid = (uid, gid) if IS_ROOT else (os.geteuid(), os.getegid())
    ti.uname = ti.gname = ""
    ti.mtime = mtime
    return ti


def tar_file(name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,
             mtime: int = MTIME) -> tuple[tarfile.TarInfo, bytes]:
    ti = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    ti.size = len(data)
    return ti, data


def tar_dir(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME):
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime), None


def tar_symlink(name: str, target: str, uid: int = 0, gid: int = 0, mtime: int = MTIME):
    ti = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
    ti.linkname = target
    return ti, None


def tar_hardlink(name: str, target: str):
    """A hard link ``name`` to the earlier entry ``target`` (a path in the layer)."""
    ti = _info(name, tarfile.LNKTYPE, 0o644, 0, 0, MTIME)
    ti.linkname = target
    return ti, None


def tar_device(name: str, major: int, minor: int, block: bool = False, mode: int = 0o666):
    ti = _info(name, tarfile.BLKTYPE if block else tarfile.CHRTYPE, mode, 0, 0, MTIME)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def tar_fifo(name: str, mode: int = 0o644):
    return _info(name, tarfile.FIFOTYPE, mode, 0, 0, MTIME), None


def tar_whiteout(path: str):
    """The image-format deletion of ``path`` (``dir/.wh.name``)."""
    d, base = os.path.split(path.strip("/"))
    return tar_file(os.path.join(d, ".wh." + base))


def tar_opaque(dir: str):
    """The image-format marker hiding the parent's content of ``dir``."""
    return tar_file(os.path.join(dir.strip("/"), ".wh..wh..opq"))


def build_tar(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    """An uncompressed layer tar (PAX) holding ``entries``, rewound."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def write_files(root: str, files: dict[str, bytes | str | None]) -> None:
    """Write ``{path: content}`` below ``root``; a path ending in "/" is a
    directory, content None deletes the path."""
    import shutil

    for path, content in files.items():
        full = os.path.join(root, path.lstrip("/"))
        if content is None:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
            continue
        if path.endswith("/"):
            os.makedirs(full, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def tree_snapshot(root: str, *, mtimes: bool = True) -> dict[str, tuple]:
    """A comparable picture of the tree at ``root``: for every path its type,
    permission bits, owner and type-specific facts (file content and whole-second
    mtime, symlink target, device number), and which paths are hard links of one
    another.  Directory mtimes are left out (applying a layer touches them) and
    so is a top-level ``lost+found``."""
    out: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], list[str]] = {}

    def walk(dirpath: str, rel: str):
        for name in sorted(os.listdir(dirpath)):
            if rel == "" and name == "lost+found":
                continue
            full = os.path.join(dirpath, name)
            path = f"{rel}/{name}"
            st = os.lstat(full)
            mode = st.st_mode
            facts: tuple[Any, ...]
            if stat.S_ISDIR(mode):
                facts = ("dir",)
            elif stat.S_ISREG(mode):
                with open(full, "rb") as f:
                    facts = ("file", f.read(), int(st.st_mtime) if mtimes else 0)
            elif stat.S_ISLNK(mode):
                facts = ("symlink", os.readlink(full))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                facts = ("chr" if stat.S_ISCHR(mode) else "blk", os.major(st.st_rdev),
                         os.minor(st.st_rdev))
            elif stat.S_ISFIFO(mode):
                facts = ("fifo",)
            else:
                facts = ("other", stat.S_IFMT(mode))
            out[path] = facts + (stat.S_IMODE(mode), st.st_uid, st.st_gid)
            if not stat.S_ISDIR(mode) and st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(path)
            if stat.S_ISDIR(mode):
                walk(full, path)

    walk(root, "")
    for paths in inodes.values():
        if len(paths) > 1:
            for p in paths:
                out[p] = out[p] + (("links", tuple(sorted(paths))),)
    return out


def _content(driver: StorageDriver, id: str) -> dict[str, tuple]:
    root = driver.get(id)
    try:
        return tree_snapshot(root)
    finally:
        driver.put(id)


def _read(driver: StorageDriver, id: str, path: str) -> bytes | None:
    root = driver.get(id)
    try:
        with open(os.path.join(root, path.lstrip("/")), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    finally:
        driver.put(id)


def _write(driver: StorageDriver, id: str, files: dict[str, bytes | str | None]) -> None:
    root = driver.get(id)
    try:
        write_files(root, files)
    finally:
        driver.put(id)


def _owner(uid: int) -> int:
    return uid if IS_ROOT else os.geteuid()


# -- the suite -----------------------------------------------------------------------------
class DriverConformance:
    """Subclass as ``Test<Something>`` and set ``driver_name`` or override
    ``make_driver``."""

    #: entry-point name in ``pyrt.storage.drivers``
    driver_name: str | None = None
    #: options passed to the constructor by the default ``make_driver``
    driver_options: dict[str, str] = {}
    #: skip the suite when not root
    needs_root: bool = True

    def make_driver(self, home: str) -> StorageDriver:
        """Construct the driver under test with its home at ``home``."""
        if not self.driver_name:
            raise NotImplementedError(
                f"{type(self).__name__}: set driver_name or override make_driver(home)")
        return load_driver_entry_point(self.driver_name)(home, dict(self.driver_options))

    # -- creating layers --------------------------------------------------------------
    def test_create_empty_base(self, driver):
        assert not driver.exists("base")
        driver.create("base", None)
        assert driver.exists("base")
        root = driver.get("base")
        try:
            assert os.path.isdir(root)
            assert [n for n in os.listdir(root) if n != "lost+found"] == []
            st = os.stat(root)
            assert stat.S_IMODE(st.st_mode) == 0o755, oct(st.st_mode)
            assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
        finally:
            driver.put("base")

    def test_create_from_base(self, driver):
        driver.create("base", None)
        _write(driver, "base", {"/etc/hostname": "base\n", "/bin/": b"", "/data/a/b": "deep"})
        before = _content(driver, "base")
        driver.create("child", "base")
        assert _content(driver, "child") == before
        assert _read(driver, "child", "/data/a/b") == b"deep"

    def test_create_twice_fails(self, driver):
        driver.create("base", None)
        with pytest.raises(PyrtError):
            driver.create("base", None)

    def test_create_with_missing_parent_fails(self, driver):
        with pytest.raises(PyrtError):
            driver.create("child", "no-such-parent")
        assert not driver.exists("child")

    def test_create_rw(self, driver):
        driver.create("base", None)
        _write(driver, "base", {"/f": "from base"})
        driver.create_rw("ctr", "base")
        assert driver.exists("ctr")
        root = driver.get("ctr")
        try:
            assert open(os.path.join(root, "f")).read() == "from base"
            write_files(root, {"/f": "mine", "/new": "n"})
        finally:
            driver.put("ctr")
        assert _read(driver, "ctr", "/f") == b"mine"
        assert _read(driver, "base", "/f") == b"from base"
        assert _read(driver, "base", "/new") is None

    def test_create_rw_rejects_unknown_option(self, driver):
        driver.create("base", None)
        with pytest.raises(UsageError):
            driver.create_rw("ctr", "base", {"no-such-option": "1"})
        assert not driver.exists("ctr")

    def test_create_rw_without_parent(self, driver):
        driver.create_rw("ctr", None)
        _write(driver, "ctr", {"/x": "x"})
        assert _read(driver, "ctr", "/x") == b"x"

    # -- exists / remove / get / put ------------------------------------------------------
    def test_exists_and_remove(self, driver):
        assert not driver.exists("nope")
        driver.remove("nope")  # removing a missing layer is not an error
        driver.create("base", None)
        assert driver.exists("base")
        driver.remove("base")
        assert not driver.exists("base")
        with pytest.raises(PyrtError):
            driver.get("base")
        driver.create("base", None)  # the id can be used again
        assert _content(driver, "base") == {}

    def test_get_put_repeated(self, driver):
        driver.create("base", None)
        first = driver.get("base")
        second = driver.get("base")
        assert first == second
        write_files(first, {"/f": "x"})
        driver.put("base")
        assert open(os.path.join(second, "f")).read() == "x"  # still held once
        driver.put("base")
        driver.put("base")  # an extra put is not an error
        for _ in range(3):
            again = driver.get("base")
            assert again == first
            assert open(os.path.join(again, "f")).read() == "x"
            driver.put("base")

    def test_put_releases_mounts(self, driver, driver_home):
        driver.create("base", None)
        driver.create("child", "base")
        driver.get("child")
        driver.put("child")
        assert mounts_under(driver_home) == []

    def test_remove_mounted_layer_unmounts(self, driver, driver_home):
        driver.create("base", None)
        driver.create_rw("ctr", "base")
        root = driver.get("ctr")
        write_files(root, {"/f": "x"})
        driver.remove("ctr")
        assert not driver.exists("ctr")
        assert mounts_under(driver_home) == []
        assert not os.path.exists(os.path.join(root, "f"))

    def test_remove_layer_with_unfriendly_modes(self, driver):
        driver.create("base", None)
        root = driver.get("base")
        try:
            write_files(root, {"/locked/inner/file": "x", "/ro": "y"})
            os.chmod(os.path.join(root, "locked", "inner", "file"), 0)
            os.chmod(os.path.join(root, "locked", "inner"), 0)
            os.chmod(os.path.join(root, "locked"), 0o500)
            os.chmod(os.path.join(root, "ro"), 0)
        finally:
            driver.put("base")
        driver.create("child", "base")
        driver.remove("child")
        driver.remove("base")
        assert not driver.exists("base")

    # -- snapshot semantics -------------------------------------------------------------
    def test_snapshot_semantics(self, driver):
        driver.create("base", None)
        _write(driver, "base", {"/f": "base", "/d/g": "g", "/keep": "k"})
        base_view = _content(driver, "base")
        driver.create("child", "base")
        root = driver.get("child")
        try:
            write_files(root, {"/f": "child", "/d/g": None, "/new": "n"})
            os.chmod(os.path.join(root, "keep"), 0o600)
        finally:
            driver.put("child")
        assert _content(driver, "base") == base_view  # the parent never changes
        child = _content(driver, "child")
        assert child["/f"][1] == b"child"
        assert "/d/g" not in child and "/d" in child  # hidden in the child only
        assert child["/new"][1] == b"n"
        assert child["/keep"][3] == 0o600
        driver.create("sibling", "base")
        assert _content(driver, "sibling") == base_view

    def test_chain_of_10_layers(self, driver):
        parent = None
        for i in range(10):
            driver.create(f"layer{i}", parent)
            _write(driver, f"layer{i}", {f"/file-{i}": str(i), "/top": str(i)})
            parent = f"layer{i}"
        for i in range(10):
            view = _content(driver, f"layer{i}")
            assert sorted(p for p in view if p.startswith("/file-")) == \
                sorted(f"/file-{j}" for j in range(i + 1))
            assert view["/top"][1] == str(i).encode()

    def test_parent_removal_order(self, driver, driver_home):
        driver.create("a", None)
        _write(driver, "a", {"/a": "a"})
        driver.create("b", "a")
        _write(driver, "b", {"/b": "b"})
        driver.create("c", "b")
        driver.create("c2", "b")
        driver.get("c")
        driver.remove("c")  # a child first, its parent stays intact
        assert not driver.exists("c")
        assert sorted(_content(driver, "b")) == ["/a", "/b"]
        assert sorted(_content(driver, "c2")) == ["/a", "/b"]
        for id in ("c2", "b", "a"):
            driver.remove(id)
            assert not driver.exists(id)
        assert mounts_under(driver_home) == []

    def test_cleanup_unmounts_everything(self, driver, driver_home):
        driver.create("base", None)
        driver.create("child", "base")
        driver.create_rw("ctr", "child")
        for id in ("base", "child", "ctr"):
            driver.get(id)
        driver.get("ctr")
        driver.cleanup()
        assert mounts_under(driver_home) == []
        for id in ("base", "child", "ctr"):
            assert driver.exists(id)

    def test_status_and_metadata(self, driver):
        status = driver.status()
        assert isinstance(status, list)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in status)
        driver.create("base", None)
        meta = driver.metadata("base")
        assert isinstance(meta, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
        assert isinstance(driver.supports_parallel_apply(), bool)

    # -- applying layer tars ----------------------------------------------------------------
    def _base_tar(self):
        entries = [
            tar_dir("etc"),
            tar_file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            tar_file("etc/shadow", b"secret\n", mode=0o600),
            tar_dir("bin"),
            tar_file("bin/tool", b"#!/bin/sh\necho tool\n" * 100, mode=0o755),
            tar_hardlink("bin/tool-link", "bin/tool"),
            tar_symlink("bin/sh", "tool"),
            tar_symlink("abs", "/etc/passwd"),
            tar_dir("opt"),
            tar_dir("opt/app"),
            tar_file("opt/app/one", b"1"),
            tar_file("opt/app/two", b"2"),
            tar_dir("opt/app/sub"),
            tar_file("opt/app/sub/three", b"3"),
            tar_dir("home"),
            tar_dir("home/user", mode=0o700, uid=1000, gid=1000),
            tar_file("home/user/.profile", b"PS1=$\n", uid=1000, gid=1000),
            tar_file("setuid", b"s", mode=0o4755),
            tar_dir("tmp", mode=0o1777),
            tar_file("tmp/junk", b"junk"),
            tar_fifo("fifo"),
            tar_file("gone-later", b"bye"),
        ]
        if IS_ROOT:
            entries += [tar_dir("dev"), tar_device("dev/null", 1, 3),
                        tar_device("dev/loopx", 7, 99, block=True, mode=0o660)]
        return entries

    def _apply(self, driver, id, parent, entries) -> int:
        driver.create(id, parent)
        n = driver.apply_diff(id, parent, build_tar(entries))
        assert isinstance(n, int) and n >= 0
        return n

    def test_apply_diff_base_layer(self, driver):
        n = self._apply(driver, "base", None, self._base_tar())
        assert n >= len(b"#!/bin/sh\necho tool\n" * 100)
        view = _content(driver, "base")
        assert view["/etc/passwd"][:2] == ("file", b"root:x:0:0::/root:/bin/sh\n")
        assert view["/etc/passwd"][2] == MTIME
        assert view["/etc/shadow"][3] == 0o600
        assert view["/bin/tool"][3] == 0o755
        assert view["/bin/tool"][-1] == ("links", ("/bin/tool", "/bin/tool-link"))
        assert view["/bin/sh"][:2] == ("symlink", "tool")
        assert view["/abs"][:2] == ("symlink", "/etc/passwd")
        assert view["/home/user"][1:] == (0o700, _owner(1000), _owner(1000))
        assert view["/home/user/.profile"][-2:] == (_owner(1000), _owner(1000))
        assert view["/setuid"][3] == 0o4755
        assert view["/tmp"][1] == 0o1777
        assert view["/fifo"][0] == "fifo"
        if IS_ROOT:
            assert view["/dev/null"][:3] == ("chr", 1, 3)
            assert view["/dev/loopx"][:4] == ("blk", 7, 99, 0o660)

    def test_apply_diff_whiteouts_and_opaque_dirs(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        self._apply(driver, "child", "base", [
            tar_whiteout("gone-later"),
            tar_whiteout("opt/app/two"),
            tar_dir("tmp", mode=0o1777),
            tar_opaque("tmp"),  # the parent's content of tmp is hidden
            tar_file("tmp/fresh", b"fresh"),
            tar_dir("etc"),
            tar_opaque("etc"),
            tar_file("etc/hosts", b"127.0.0.1 localhost\n"),
            tar_file("bin/added", b"added"),
            tar_hardlink("bin/added-link", "bin/added"),
            tar_symlink("bin/sh", "added"),  # replaces the parent's symlink
        ])
        base = _content(driver, "base")
        view = _content(driver, "child")
        assert "/gone-later" in base and "/gone-later" not in view
        assert "/opt/app/two" not in view
        assert view["/opt/app/one"][1] == b"1" and view["/opt/app/sub/three"][1] == b"3"
        assert sorted(p for p in view if p.startswith("/tmp/")) == ["/tmp/fresh"]
        assert sorted(p for p in view if p.startswith("/etc/")) == ["/etc/hosts"]
        assert view["/bin/sh"][:2] == ("symlink", "added")
        assert view["/bin/added"][-1] == ("links", ("/bin/added", "/bin/added-link"))
        assert not any(".wh." in p for p in view)  # no whiteout marker shows
        assert _content(driver, "base") == base  # the parent is untouched
        # a grandchild sees the child's deletions too
        self._apply(driver, "grandchild", "child", [tar_file("opt/app/four", b"4")])
        grand = _content(driver, "grandchild")
        assert "/gone-later" not in grand and "/etc/passwd" not in grand
        assert sorted(p for p in grand if p.startswith("/opt/app/")) == \
            ["/opt/app/four", "/opt/app/one", "/opt/app/sub", "/opt/app/sub/three"]

    def test_apply_diff_escape_writes_nothing_outside(self, driver, driver_home, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        victim = outside / "victim"
        victim.write_bytes(b"original")
        token = f"pyrt-conformance-escape-{uuid.uuid4().hex}"
        watch = [os.path.dirname(driver_home)]
        p = os.path.dirname(watch[0])
        while p != os.path.dirname(p):
            watch.append(p)
            p = os.path.dirname(p)
        watch.append("/")

        def escaped():
            found = [os.path.join(d, token) for d in watch if os.path.lexists(os.path.join(d, token))]
            found += [str(x) for x in outside.iterdir() if x.name != "victim"]
            return found

        up = "../" * 40
        tars = {
            "dotdot": ([tar_file(up + token, b"pwned")], True),
            "dotdot-dir": ([tar_dir("a"), tar_file("a/" + up + token, b"pwned")], True),
            "symlink-parent": ([tar_symlink("evil", str(outside)),
                                tar_file("evil/" + token, b"pwned")], False),
            "symlink-dotdot": ([tar_symlink("evil", up + str(outside).lstrip("/")),
                                tar_file("evil/" + token, b"pwned")], False),
            "hardlink-out": ([tar_hardlink("stolen", up + str(victim).lstrip("/"))], False),
            "hardlink-abs": ([tar_hardlink("stolen", str(victim))], False),
        }
        driver.create("base", None)
        try:
            for i, (label, (entries, must_refuse)) in enumerate(tars.items()):
                id = f"evil{i}"
                driver.create(id, "base")
                try:
                    driver.apply_diff(id, "base", build_tar(entries))
                except LayerError:
                    pass
                else:
                    assert not must_refuse, f"{label}: apply_diff accepted a path escape"
                assert escaped() == [], f"{label}: wrote outside the driver home"
                assert victim.read_bytes() == b"original"
                assert os.stat(victim).st_nlink == 1, f"{label}: hard-linked a file outside"
                driver.remove(id)
        finally:
            for path in escaped():
                if os.path.lexists(path) and os.path.basename(path) == token:
                    os.unlink(path)

    # -- diffs -------------------------------------------------------------------------------
    def _make_changes(self, driver, id):
        root = driver.get(id)
        try:
            write_files(root, {
                "/added": "added",
                "/newdir/f": "new",
                "/etc/passwd": "changed\n",
                "/gone-later": None,
                "/opt/app/sub": None,
                "/tmp": None,
                "/tmp/": b"",
                "/tmp/only": "only",
            })
            os.chmod(os.path.join(root, "tmp"), 0o1777)
            os.chmod(os.path.join(root, "etc/shadow"), 0o640)
            os.symlink("added", os.path.join(root, "added-link"))
            os.link(os.path.join(root, "added"), os.path.join(root, "added-hard"))
            os.unlink(os.path.join(root, "bin/sh"))
            os.symlink("tool-link", os.path.join(root, "bin/sh"))
            os.utime(os.path.join(root, "etc/passwd"), (MTIME + 100, MTIME + 100))
        finally:
            driver.put(id)

    def test_changes(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        driver.create_rw("ctr", "base")
        self._make_changes(driver, "ctr")
        changes = driver.changes("ctr", "base")
        assert all(isinstance(c, Change) for c in changes)
        assert [c.path for c in changes] == sorted(c.path for c in changes)
        got = {c.path: c.kind for c in changes}
        want = {
            "/added": "A", "/added-link": "A", "/added-hard": "A",
            "/newdir": "A", "/newdir/f": "A",
            "/etc/passwd": "C", "/etc/shadow": "C", "/bin/sh": "C",
            "/gone-later": "D", "/opt/app/sub": "D",
            "/tmp/only": "A", "/tmp/junk": "D",
        }
        for path, kind in want.items():
            assert got.get(path) == kind, f"{path}: want {kind}, got {got.get(path)}"
        # below a deleted directory nothing more is listed
        assert "/opt/app/sub/three" not in got
        # unchanged files are not listed; directories holding changes may be (as C)
        base_view = _content(driver, "base")
        for path, kind in got.items():
            if path in want:
                continue
            assert kind == "C" and base_view.get(path, ("",))[0] == "dir", \
                f"unexpected change {kind} {path}"
        # against no parent everything is added
        driver.create("solo", None)
        _write(driver, "solo", {"/x/y": "y"})
        assert [(c.path, c.kind) for c in driver.changes("solo", None)] == \
            [("/x", "A"), ("/x/y", "A")]

    def test_diff_round_trip(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        driver.create_rw("ctr", "base")
        self._make_changes(driver, "ctr")
        tar = io.BytesIO(b"".join(driver.diff("ctr", "base")))
        driver.create("copy", "base")
        driver.apply_diff("copy", "base", tar)
        assert _content(driver, "copy") == _content(driver, "ctr")

    def test_diff_round_trip_of_base_layer(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        tar = io.BytesIO(b"".join(driver.diff("base", None)))
        driver.create("copy", None)
        driver.apply_diff("copy", None, tar)
        assert _content(driver, "copy") == _content(driver, "base")

    def test_diff_of_a_layer_with_whiteouts(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        self._apply(driver, "child", "base", [
            tar_whiteout("gone-later"), tar_dir("opt"), tar_dir("opt/app"), tar_opaque("opt/app"),
            tar_file("opt/app/only", b"only"),
        ])
        tar = io.BytesIO(b"".join(driver.diff("child", "base")))
        driver.create("copy", "base")
        driver.apply_diff("copy", "base", tar)
        view = _content(driver, "copy")
        assert view == _content(driver, "child")
        assert "/gone-later" not in view
        assert sorted(p for p in view if p.startswith("/opt/app/")) == ["/opt/app/only"]

    def test_diff_size(self, driver):
        driver.create("base", None)
        _write(driver, "base", {"/keep": b"k" * 300, "/modify": b"m" * 200, "/delete": b"d" * 5000})
        driver.create_rw("ctr", "base")
        root = driver.get("ctr")
        try:
            write_files(root, {"/new": b"n" * 1000, "/modify": b"M" * 500, "/delete": None,
                               "/dir/": b""})
        finally:
            driver.put("ctr")
        assert driver.diff_size("ctr", "base") == 1500
        assert driver.diff_size("base", None) == 5500
