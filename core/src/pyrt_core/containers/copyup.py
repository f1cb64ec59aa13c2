"""docker's copy-up: a new, empty volume mounted at a path where the image has content
gets that content first, owners, modes, times and symlinks kept.

The image (and, on a restart, the container itself) chose what is at that path: a
symlink to the host's ``/etc``, a parent directory that is a symlink, a FIFO, a device.
So the source is reached only through descriptors: the path resolved inside the rootfs
(:func:`pyrt_core.containers.inroot.open_path`: ``openat2(RESOLVE_IN_ROOT)`` or its
fallback), then every entry below opened relative to its directory with ``O_NOFOLLOW``
(a symlink is copied as a symlink, never followed; a directory swapped for a symlink
meanwhile fails the open).  The destination is the volume's host directory, which the
driver gave and nothing in the container can reach yet (it is not mounted there until
the runtime runs); entries are made relative to its descriptor too, with owners and
modes set on descriptors or with ``follow_symlinks=False``.
"""
from __future__ import annotations

import errno
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: a tree deeper than this is not copied further (a hostile image could be deeper than
#: the descriptor limit)
MAX_DEPTH = 256


def copy_up(rootfs: str, path: str, dest: str) -> bool:
    """Copy the content of ``path`` (a container path) inside ``rootfs`` into the host
    directory ``dest`` when ``dest`` is empty and ``path`` is a directory there; the
    top directory's owner and mode go to ``dest``.  Returns whether it copied."""
    from .inroot import open_path

    dfd = os.open(dest, _DIR)
    try:
        if os.listdir(dfd):
            return False  # not empty: the volume's own data wins (docker)
        try:
            pfd = open_path(rootfs, path)
        except OSError:
            return False  # nothing there (or not reachable inside the root): nothing to copy
        try:
            st = os.fstat(pfd)
            if not stat.S_ISDIR(st.st_mode):
                return False
            sfd = os.open(".", _DIR, dir_fd=pfd)  # the very directory resolved
        finally:
            os.close(pfd)
        try:
            st2 = os.fstat(sfd)
            if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino):
                return False
            _copy_dir(sfd, dfd, 0)
            os.fchown(dfd, st.st_uid, st.st_gid)
            os.fchmod(dfd, stat.S_IMODE(st.st_mode))
        finally:
            os.close(sfd)
        return True
    finally:
        os.close(dfd)


def _copy_dir(sfd: int, dfd: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for name in os.listdir(sfd):
        try:
            st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            try:
                child = os.open(name, _DIR, dir_fd=sfd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    continue  # swapped for something else meanwhile: not followed
                raise
            try:
                os.mkdir(name, 0o700, dir_fd=dfd)
                out = os.open(name, _DIR, dir_fd=dfd)
                try:
                    _copy_dir(child, out, depth + 1)
                    _attrs(out, st)
                finally:
                    os.close(out)
            finally:
                os.close(child)
        elif stat.S_ISREG(mode):
            _copy_file(sfd, dfd, name, st)
        elif stat.S_ISLNK(mode):
            target = os.readlink(name, dir_fd=sfd)
            os.symlink(target, name, dir_fd=dfd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
            try:
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd,
                         follow_symlinks=False)
            except OSError:
                pass
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(mode))
            finally:
                os.close(fd)
        # sockets are not copied (docker neither: they mean nothing without their server)


def _copy_file(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                      | os.O_CLOEXEC, dir_fd=sfd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOENT):
            return  # swapped for a symlink (or removed) meanwhile: not followed
        raise
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            return
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dfd)
        try:
            while True:
                try:
                    n = os.copy_file_range(src, out, 1 << 30)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    n = -1
                if n == -1:
                    while True:
                        chunk = os.read(src, 1 << 20)
                        if not chunk:
                            break
                        os.write(out, chunk)
                    break
                if n == 0:
                    break
            _attrs(out, st)
        finally:
            os.close(out)
    finally:
        os.close(src)


def _attrs(fd: int, st: os.stat_result) -> None:
    """Owner, then mode (chown clears set-id bits), then times, on the descriptor."""
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    try:
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError:
        pass
