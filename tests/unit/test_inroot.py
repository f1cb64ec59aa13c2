"""containers.inroot: files of a container's root read and made from the host without
leaving the root, with openat2(RESOLVE_IN_ROOT) and with the hand walk used where the
kernel has no openat2 (both are run on every case)."""
import os
import subprocess

import pytest

from pyrt_core.containers import inroot
from pyrt_core.errors import ImageError


@pytest.fixture(params=["openat2", "walk"])
def mode(request, monkeypatch):
    monkeypatch.setattr(inroot, "_openat2_missing", request.param == "walk")
    if request.param == "openat2":
        # the real syscall must be what runs (not a silent fallback)
        calls = []
        real = inroot._openat2
        monkeypatch.setattr(inroot, "_openat2", lambda *a: calls.append(a) or real(*a))
        yield calls
        assert calls and not inroot._openat2_missing
    else:
        monkeypatch.setattr(inroot, "_openat2", None)  # never called
        yield None


@pytest.fixture
def tree(tmp_path):
    """root/ (the container's) beside host/ (what an escape would reach)."""
    root, host = tmp_path / "root", tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    host.mkdir()
    (host / "passwd").write_text("hostuser:x:4242:4242::/:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return root, host


def test_plain_file_and_missing(mode, tree):
    root, _ = tree
    assert inroot.read_file(str(root), "/etc/group") == b"root:x:0:\n"
    assert inroot.read_file(str(root), "/etc/passwd") is None
    assert inroot.read_file(str(root), "/etc/group/x") is None  # a file as a directory
    assert inroot.read_file(str(root), "/../../etc/group") == b"root:x:0:\n"  # .. stops at /


@pytest.mark.parametrize("how", ["absolute", "relative", "dir"])
def test_symlinks_resolve_inside_the_root(mode, tree, how):
    root, host = tree
    if how == "absolute":
        (root / "etc/passwd").symlink_to(host / "passwd")
    elif how == "relative":
        (root / "etc/passwd").symlink_to("../" * 30 + str(host / "passwd").lstrip("/"))
    else:  # a directory on the way points out
        (root / "etc/passwd").symlink_to("/hostdir/passwd")
        (root / "hostdir").symlink_to(host)
    assert inroot.read_file(str(root), "/etc/passwd") is None  # never the host's file
    # the same link names a file of the root once it exists there
    inside = root / str(host / "passwd").lstrip("/") if how != "dir" else root / "hostdir"
    if how == "dir":
        (root / "hostdir").unlink()
        inside.mkdir()
        inside = inside / "passwd"
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text("imageuser:x:1:1::/:/bin/sh\n")
    assert inroot.read_file(str(root), "/etc/passwd") == b"imageuser:x:1:1::/:/bin/sh\n"


def test_symlink_loop_is_one_clear_error(mode, tree):
    root, _ = tree
    (root / "etc/passwd").symlink_to("/etc/passwd")
    with pytest.raises(ImageError, match="cannot read /etc/passwd in the container: "):
        inroot.read_file(str(root), "/etc/passwd")


def _returns(fn, unblock=None):
    """fn() in a thread: what it raised, or a failure if it blocks (opening a fifo
    nobody writes to blocks for ever: a hang guard, not a speed check); ``unblock``
    then frees the thread."""
    import threading

    out = []

    def run():
        try:
            fn()
            out.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():
        if unblock:
            unblock()
        raise AssertionError("it blocked")
    return out[0]


def _bytes_read() -> int:
    """What this process has read with read(2) and its kin so far (/proc/self/io rchar)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


def test_fifo_is_refused_at_once_and_never_opened(mode, tree):
    root, _ = tree
    os.mkfifo(root / "etc/passwd")
    err = _returns(lambda: inroot.read_file(str(root), "/etc/passwd"),
                   unblock=lambda: os.close(os.open(root / "etc/passwd", os.O_RDWR)))
    assert isinstance(err, ImageError) and "it is a fifo, not a regular file" in str(err), err


def test_directory_is_refused(mode, tree):
    root, _ = tree
    (root / "etc/passwd").mkdir()
    with pytest.raises(ImageError, match="it is a directory"):
        inroot.read_file(str(root), "/etc/passwd")


def test_huge_sparse_file_is_refused_without_reading(mode, tree):
    root, _ = tree
    with open(root / "etc/passwd", "wb") as f:
        f.truncate(1 << 40)  # a terabyte of holes
    read_before = _bytes_read()
    with pytest.raises(ImageError, match="larger than 1048576 bytes"):
        inroot.read_file(str(root), "/etc/passwd")
    assert _bytes_read() - read_before < 1 << 20  # refused by its size, not read
    (root / "etc/group").write_bytes(b"x" * 10)
    with pytest.raises(ImageError, match="larger than 5 bytes"):
        inroot.read_file(str(root), "/etc/group", limit=5)


def test_dev_zero_symlink_is_resolved_in_the_root(mode, tree):
    root, _ = tree
    (root / "etc/passwd").symlink_to("/dev/zero")
    assert inroot.read_file(str(root), "/etc/passwd") is None  # the root has no /dev/zero


def test_make_dirs_in_the_root_long_and_through_symlinks(mode, tree):
    root, host = tree
    (root / "work").symlink_to(host)  # an absolute link out of the root
    inroot.make_dirs(str(root), "/work/a/../b", os.getuid(), os.getgid())
    assert not (host / "a").exists() and not (host / "b").exists()
    made = root / str(host).lstrip("/")
    assert (made / "a").is_dir() and (made / "b").is_dir()
    assert oct((made / "b").stat().st_mode & 0o777) == "0o755"
    if os.geteuid() == 0:  # the last directory is the container user's, the others root's
        inroot.make_dirs(str(root), "/own/er", 1234, 4321)
        assert ((root / "own").stat().st_uid, (root / "own/er").stat().st_uid) == (0, 1234)
        assert (root / "own/er").stat().st_gid == 4321
    # 1,500 components (within PATH_MAX): no recursion (os.makedirs recursed once per
    # component and failed at a thousand)
    deep = "/d" + "/x" * 1500
    inroot.make_dirs(str(root), deep, os.getuid(), os.getgid())
    os.close(inroot.open_path(str(root), deep))
    subprocess.run(["rm", "-rf", str(root / "d")], check=True)  # shutil.rmtree recurses too
    (root / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        inroot.make_dirs(str(root), "/file/sub", 0, 0)
