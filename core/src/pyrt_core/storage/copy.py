"""Copy a directory tree exactly: the vfs driver's "snapshot".

``copy_tree(src, dst)`` reproduces ``src`` at ``dst`` with everything a
layer can hold: file types (regular, directory, symlink, character and
block devices, fifos, sockets), hard links within the tree, ownership,
permission bits including setuid/setgid/sticky, extended attributes
(``security.capability``, ``trusted.overlay.*``, ACLs) and timestamps
with nanoseconds.

GNU ``cp -a --reflink=auto`` does exactly that and is several times faster
than Python for trees of many small files, so it is used when present; the
pure-Python copy is the fallback (and is tested against it).  On btrfs and
xfs both share file data (reflink) instead of copying it.
"""
from __future__ import annotations

import errno
import os
import stat

# remove_tree lives in pyrt_core.fsutil (the layer unpacker, below storage, needs it too);
# it stays importable from here because storage drivers outside this repository import
# it from here, as examples/pyrt-storage-example does.
from ..fsutil import remove_tree, which

__all__ = ["copy_tree", "copy_tree_python", "remove_tree"]

_FICLONE = 0x40049409  # _IOW(0x94, 9, int)


def copy_tree(src: str, dst: str, *, use_cp: bool | None = None) -> None:
    """Copy the tree at ``src`` to ``dst`` (created if missing; if it exists
    it must be an empty directory, which takes ``src``'s metadata).

    ``use_cp``: None picks GNU cp when available, False forces Python.
    """
    if not os.path.isdir(src) or os.path.islink(src):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", src)
    if use_cp is None:
        use_cp = _gnu_cp() is not None
    if use_cp:
        cp = _gnu_cp()
        if cp is None:
            raise FileNotFoundError("GNU cp is not installed")
        os.makedirs(dst, exist_ok=True)
        import subprocess

        # "src/." into an existing dst: the contents plus src's own metadata.
        r = subprocess.run([cp, "-a", "--reflink=auto", "--no-target-directory",
                            "--", os.path.join(src, "."), dst],
                           stdin=subprocess.DEVNULL, capture_output=True)
        if r.returncode != 0:
            msg = r.stderr.decode(errors="replace").strip()
            raise OSError(errno.EIO, f"cp -a {src} {dst} failed: {msg}")
        return
    copy_tree_python(src, dst)


_cp_path: str | None | bool = False


def _gnu_cp() -> str | None:
    global _cp_path
    if _cp_path is False:
        path = which("cp")
        if path is not None:
            import subprocess

            try:
                r = subprocess.run([path, "--version"], capture_output=True, timeout=10)
                if b"GNU coreutils" not in r.stdout:
                    path = None
            except (OSError, subprocess.SubprocessError):
                path = None
        _cp_path = path
    return _cp_path  # type: ignore[return-value]


def copy_tree_python(src: str, dst: str) -> None:
    """The pure-Python copy (same result as ``cp -a``)."""
    st = os.lstat(src)
    try:
        os.mkdir(dst, 0o700)
    except FileExistsError:
        if not os.path.isdir(dst) or os.path.islink(dst):
            raise
    links: dict[tuple[int, int], str] = {}
    _copy_dir(src, dst, links)
    _copy_meta(src, dst, st)


def _copy_dir(src: str, dst: str, links: dict[tuple[int, int], str]) -> None:
    """Copy the contents of ``src`` into ``dst``.  Iterative (an image layer may be two
    thousand directories deep: a recursion per level would pass Python's limit); a
    directory's own metadata is applied once its contents are copied (its times)."""
    todo: list[tuple[str, str, os.stat_result | None]] = [(src, dst, None)]
    while todo:
        s_dir, d_dir, st_dir = todo.pop()
        if st_dir is not None:  # the contents are done: now the directory itself
            _copy_meta(s_dir, d_dir, st_dir)
            continue
        with os.scandir(s_dir) as it:
            entries = list(it)
        for e in entries:
            s = e.path
            d = os.path.join(d_dir, e.name)
            st = e.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                todo.append((s, d, st))  # its metadata, after...
                todo.append((s, d, None))  # ...its contents
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = links.get(key)
                if first is not None:
                    os.link(first, d)
                    continue
                links[key] = d
            if stat.S_ISREG(mode):
                _copy_file(s, d)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISFIFO(mode):
                os.mkfifo(d, 0o600)
            else:  # character / block device, socket
                os.mknod(d, stat.S_IFMT(mode) | 0o600, st.st_rdev)
            _copy_meta(s, d, st)


def _copy_file(s: str, d: str) -> None:
    sfd = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            try:
                import fcntl

                fcntl.ioctl(dfd, _FICLONE, sfd)
                return
            except OSError:
                pass
            while True:
                try:
                    n = os.copy_file_range(sfd, dfd, 1 << 30)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    while True:
                        buf = os.read(sfd, 1 << 20)
                        if not buf:
                            return
                        os.write(dfd, buf)
                if n == 0:
                    return
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_meta(s: str, d: str, st: os.stat_result) -> None:
    """Ownership, xattrs, mode and times of ``s`` onto ``d`` (in that order:
    chown clears setuid bits and ``security.capability``)."""
    is_link = stat.S_ISLNK(st.st_mode)
    try:
        os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
    except PermissionError:
        if os.geteuid() == 0:
            raise
    try:
        names = os.listxattr(s, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise
        names = []
    for name in names:
        try:
            os.setxattr(d, name, os.getxattr(s, name, follow_symlinks=False),
                        follow_symlinks=False)
        except OSError as e:
            # unprivileged copies cannot set trusted.* / security.*; the
            # target filesystem may lack xattrs for symlinks
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                raise
    if not is_link:
        os.chmod(d, stat.S_IMODE(st.st_mode))
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
