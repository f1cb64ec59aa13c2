"""compare_trees, changes/diff with a fake driver, and the diff/apply round trip."""
from __future__ import annotations

import io
import os
import shutil
import stat

import pytest

from pyrt_core.archive.changes import compare_trees
from pyrt_core.archive.pack import pack_paths
from pyrt_core.archive.unpack import apply_layer
from pyrt_core.storage import naivediff
from pyrt_core.storage.driver import Change


def make_old(path):
    os.makedirs(path / "etc/skel")
    (path / "etc/passwd").write_text("root:x:0:0\n")
    (path / "etc/hostname").write_text("old\n")
    (path / "etc/skel/.bashrc").write_text("bashrc")
    os.makedirs(path / "var/cache/apt/archives")
    (path / "var/cache/apt/archives/a.deb").write_bytes(b"deb" * 100)
    (path / "var/cache/apt/pkgcache.bin").write_bytes(b"cache")
    os.makedirs(path / "usr/bin")
    (path / "usr/bin/tool").write_bytes(b"tool")
    os.chmod(path / "usr/bin/tool", 0o755)
    os.symlink("usr/bin", path / "bin")
    (path / "was_dir").mkdir()
    (path / "was_dir/inner").write_text("i")
    (path / "was_file").write_text("f")
    (path / "unchanged").write_text("same")
    os.utime(path / "unchanged", ns=(1_500_000_000_123_456_789,) * 2)
    return path


def copy_tree(src, dst):
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
    # copytree does not keep directory mtimes reliably; not compared anyway
    return dst


def modify(new):
    (new / "etc/hostname").write_text("new name\n")           # content + size
    os.chmod(new / "etc/passwd", 0o600)                          # mode
    shutil.rmtree(new / "var/cache/apt")                         # deleted tree
    (new / "etc/skel/.bashrc").unlink()                          # deleted file
    (new / "etc/new.conf").write_text("added")                   # added
    os.makedirs(new / "opt/app/lib")                              # added tree
    (new / "opt/app/lib/x.so").write_bytes(os.urandom(5000))
    os.symlink("../lib/x.so", new / "opt/app/link")
    shutil.rmtree(new / "was_dir")                               # dir -> file
    (new / "was_dir").write_text("now a file")
    (new / "was_file").unlink()                                  # file -> dir
    (new / "was_file").mkdir()
    (new / "was_file/child").write_text("c")
    os.unlink(new / "bin")                                       # symlink retargeted
    os.symlink("usr/local/bin", new / "bin")
    os.link(new / "usr/bin/tool", new / "usr/bin/tool-hard")     # hard link ...
    (new / "usr/bin/tool").write_bytes(b"tool v2")               # ... to a changed file
    os.mkfifo(new / "opt/app/fifo")


def test_compare_trees_all_added(tmp_path):
    old = make_old(tmp_path / "old")
    ch = compare_trees(str(old), None)
    assert all(c.kind == "A" for c in ch)
    assert [c.path for c in ch] == sorted(c.path for c in ch)
    assert Change("/etc/skel/.bashrc", "A") in ch and Change("/bin", "A") in ch
    assert not any(c.path == "/" for c in ch)


def test_compare_trees_kinds(tmp_path):
    old = make_old(tmp_path / "old")
    new = copy_tree(old, tmp_path / "new")
    assert compare_trees(str(new), str(old)) == []
    modify(new)
    ch = compare_trees(str(new), str(old))
    kinds = {c.path: c.kind for c in ch}
    assert [c.path for c in ch] == sorted(kinds)
    assert kinds["/etc/hostname"] == "C"
    assert kinds["/etc/passwd"] == "C"
    assert kinds["/var/cache/apt"] == "D"
    assert "/var/cache/apt/archives" not in kinds  # only the top deleted path
    assert kinds["/etc/skel/.bashrc"] == "D"
    assert kinds["/etc/new.conf"] == "A"
    assert kinds["/opt"] == kinds["/opt/app"] == kinds["/opt/app/lib/x.so"] == "A"
    assert kinds["/was_dir"] == "C" and "/was_dir/inner" not in kinds
    assert kinds["/was_file"] == "C" and kinds["/was_file/child"] == "A"
    assert kinds["/bin"] == "C"
    assert kinds["/usr/bin/tool-hard"] == "A"
    assert kinds["/usr/bin/tool"] == "C"
    assert "/unchanged" not in kinds
    # directories holding changes are listed as changed (docker does the same)
    assert kinds["/etc"] == kinds["/etc/skel"] == kinds["/var/cache"] == kinds["/usr/bin"] == "C"


def test_compare_trees_mtime_rules(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for d in (a, b):
        (d / "f").write_text("same size")
        (d / "g").write_text("same size")
        (d / "dir").mkdir()
    os.utime(a / "f", ns=(1_600_000_000_000_000_000,) * 2)
    os.utime(b / "f", ns=(1_600_000_000_500_000_000,) * 2)  # whole seconds on one side: same
    os.utime(a / "g", ns=(1_600_000_000_100_000_000,) * 2)
    os.utime(b / "g", ns=(1_600_000_001_100_000_000,) * 2)
    os.utime(a / "dir", ns=(1,) * 2)  # directory mtimes are not compared
    assert compare_trees(str(b), str(a)) == [Change("/g", "C")]


def tree_state(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            item = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
            if stat.S_ISREG(st.st_mode):
                item += [open(p, "rb").read(), st.st_mtime_ns // 10**9, st.st_nlink]
            elif stat.S_ISLNK(st.st_mode):
                item += [os.readlink(p)]
            out[rel] = item
    return out


def test_round_trip_diff_applied_to_old_reproduces_new(tmp_path):
    old = make_old(tmp_path / "old")
    new = copy_tree(old, tmp_path / "new")
    modify(new)
    ch = compare_trees(str(new), str(old))
    tar = b"".join(pack_paths(str(new), ch))
    target = copy_tree(old, tmp_path / "target")
    apply_layer(io.BytesIO(tar), str(target), whiteouts="delete")
    assert tree_state(target) == tree_state(new)
    assert compare_trees(str(target), str(new)) == []
    # the hard link pair is one inode again
    assert os.lstat(target / "usr/bin/tool").st_ino == os.lstat(target / "usr/bin/tool-hard").st_ino


def test_round_trip_onto_empty_overlay_style_dir(tmp_path):
    """A diff applied alone (as overlay does) carries the parents' modes."""
    old = make_old(tmp_path / "old")
    new = copy_tree(old, tmp_path / "new")
    os.chmod(new / "etc", 0o750)
    (new / "etc/skel/.profile").write_text("p")
    os.chmod(new / "etc/skel", 0o700)
    tar = b"".join(pack_paths(str(new), compare_trees(str(new), str(old))))
    layer = tmp_path / "layer"
    apply_layer(io.BytesIO(tar), str(layer), whiteouts="overlay")
    assert stat.S_IMODE(os.lstat(layer / "etc").st_mode) == 0o750
    assert stat.S_IMODE(os.lstat(layer / "etc/skel").st_mode) == 0o700
    assert (layer / "etc/skel/.profile").read_text() == "p"


class FakeDriver:
    def __init__(self, dirs):
        self.dirs = dirs
        self.mounted: dict[str, int] = {}
        self.calls = []

    def get(self, id):
        self.mounted[id] = self.mounted.get(id, 0) + 1
        self.calls.append(("get", id))
        return str(self.dirs[id])

    def put(self, id):
        self.mounted[id] -= 1
        self.calls.append(("put", id))

    def balanced(self):
        return all(v == 0 for v in self.mounted.values())


def test_changes_and_diff_through_a_driver(tmp_path):
    old = make_old(tmp_path / "old")
    new = copy_tree(old, tmp_path / "new")
    modify(new)
    drv = FakeDriver({"base": old, "top": new})
    ch = naivediff.changes(drv, "top", "base")
    assert ch == compare_trees(str(new), str(old)) and drv.balanced()
    assert all(c.kind == "A" for c in naivediff.changes(drv, "base", None)) and drv.balanced()
    tar = b"".join(naivediff.diff(drv, "top", "base"))
    assert drv.balanced()
    target = copy_tree(old, tmp_path / "target")
    apply_layer(io.BytesIO(tar), str(target))
    assert tree_state(target) == tree_state(new)


def test_diff_releases_the_mount_when_consumer_stops_early(tmp_path):
    old = make_old(tmp_path / "old")
    new = copy_tree(old, tmp_path / "new")
    (new / "big").write_bytes(os.urandom(3 << 20))
    drv = FakeDriver({"base": old, "top": new})
    gen = naivediff.diff(drv, "top", "base")
    next(gen)
    assert drv.mounted["top"] == 1
    gen.close()
    assert drv.balanced()


def test_changes_puts_even_on_error(tmp_path):
    drv = FakeDriver({"top": tmp_path / "missing", "base": tmp_path})
    with pytest.raises(OSError):
        naivediff.changes(drv, "top", "base")
    assert drv.balanced()
