"""fsutil.remove_tree (also importable from storage.copy): what every storage driver and
the layer unpacker remove trees with.  A container can make a directory tree deeper than
PATH_MAX and than Python's recursion limit; the tree must still go (shutil.rmtree failed
with RecursionError, so such a container could never be removed)."""
import os

from pyrt_core.fsutil import remove_tree


def _deep(top, depth: int) -> None:
    """top/d/d/d/... ``depth`` levels, made through descriptors (no path is that long)."""
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(depth):
        os.mkdir("d", dir_fd=fd)
        if i % 100 == 0:
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as f:
                f.write("x")
            os.symlink("/etc", "link", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)


def test_a_tree_deeper_than_path_max_and_the_recursion_limit(tmp_path):
    top = str(tmp_path / "layer")
    _deep(top, 3000)  # 6,000 bytes of path, 3,000 levels
    before = len(os.listdir("/proc/self/fd"))
    remove_tree(top)
    assert not os.path.lexists(top)
    assert len(os.listdir("/proc/self/fd")) == before  # no descriptor left open
    assert os.path.isdir("/etc")  # symlinks are removed, never followed


def test_files_symlinks_and_locked_directories(tmp_path):
    top = tmp_path / "t"
    (top / "a/b").mkdir(parents=True)
    (top / "a/b/f").write_text("x")
    (top / "a/l").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/keep").write_text("k")
    os.chmod(top / "a/b", 0o000)
    os.chmod(top / "a", 0o500)
    remove_tree(str(top))
    assert not top.exists() and (tmp_path / "outside/keep").exists()
    remove_tree(str(top))  # missing: fine
    (tmp_path / "file").write_text("")
    remove_tree(str(tmp_path / "file"))
    assert not (tmp_path / "file").exists()


def test_the_python_copy_of_a_deep_layer(tmp_path):
    # the vfs driver's copy without GNU cp: deeper than the recursion limit (1,000)
    from pyrt_core.storage.copy import copy_tree_python

    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    _deep(src, 1100)
    copy_tree_python(src, dst)
    fd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1100):
        nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)
    remove_tree(src)
    remove_tree(dst)


def test_storage_copy_still_exports_it():
    """Storage drivers outside this repository import it from pyrt_core.storage.copy, as
    examples/pyrt-storage-example shows."""
    from pyrt_core.storage import copy

    assert copy.remove_tree is remove_tree
