"""The vfs driver: the conformance suite plus the exact-copy helper."""
from __future__ import annotations

import os

import pytest

from pyrt_core.storage.copy import copy_tree
from pyrt_core.testing.storage_conformance import DriverConformance, tree_snapshot



class TestVfsConformance(DriverConformance):
    driver_name = "vfs"


def _xattrs(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = sorted(
                (k, os.getxattr(p, k, follow_symlinks=False))
                for k in os.listxattr(p, follow_symlinks=False))
    return out


@pytest.fixture
def odd_tree(tmp_path):
    src = tmp_path / "src"
    (src / "d" / "e").mkdir(parents=True)
    (src / "f").write_text("hi")
    os.link(src / "f", src / "d" / "hl")
    os.symlink("../f", src / "d" / "sym")
    os.mknod(src / "null", 0o20666, os.makedev(1, 3))
    os.mkfifo(src / "fifo")
    os.chown(src / "d", 1000, 2000)
    os.chmod(src / "f", 0o4755)
    os.setxattr(src / "d" / "e", "user.k", b"v")
    os.setxattr(src / "d" / "e", "trusted.overlay.opaque", b"y")
    os.utime(src / "d" / "sym", ns=(1, 123456789), follow_symlinks=False)
    os.utime(src / "d", ns=(1, 987654321))
    os.chmod(src, 0o710)
    return str(src)


@pytest.mark.parametrize("use_cp", [True, False], ids=["cp", "python"])
def test_copy_tree_is_exact(odd_tree, tmp_path, use_cp):
    dst = str(tmp_path / "dst")
    copy_tree(odd_tree, dst, use_cp=use_cp)
    assert tree_snapshot(dst) == tree_snapshot(odd_tree)
    assert _xattrs(dst) == _xattrs(odd_tree)
    for rel in ("", "d", "d/sym", "f"):
        a, b = os.lstat(os.path.join(odd_tree, rel)), os.lstat(os.path.join(dst, rel))
        assert (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == \
            (b.st_mode, b.st_uid, b.st_gid, b.st_mtime_ns), rel


def test_vfs_layout_and_hardlinks_across_copy(tmp_path):
    from pyrt_core.storage.vfs import VfsDriver

    d = VfsDriver(str(tmp_path / "home"), {})
    d.create("base", None)
    root = d.get("base")
    assert root == str(tmp_path / "home" / "dir" / "base")
    (tmp_path / "home/dir/base/a").write_text("a")
    os.link(tmp_path / "home/dir/base/a", tmp_path / "home/dir/base/b")
    d.create("child", "base")
    child = d.get("child")
    assert os.stat(os.path.join(child, "a")).st_ino == os.stat(os.path.join(child, "b")).st_ino
    assert os.stat(os.path.join(child, "a")).st_ino != os.stat(os.path.join(root, "a")).st_ino
    assert d.supports_parallel_apply() is False
    assert sorted(os.listdir(tmp_path / "home" / "dir")) == ["base", "child"]


def test_vfs_rejects_options(tmp_path):
    from pyrt_core.errors import UsageError
    from pyrt_core.storage.vfs import VfsDriver

    with pytest.raises(UsageError):
        VfsDriver(str(tmp_path / "home"), {"size": "10G"})
    d = VfsDriver(str(tmp_path / "home"), {})
    with pytest.raises(UsageError):
        d.create_rw("c", None, {"size": "10G"})
    with pytest.raises(UsageError):
        d.create("../escape", None)
