"""Resolve a container path inside a root directory, never leaving it.

A mount destination such as ``/etc/resolv.conf`` must land inside the root even
when the image made ``/etc`` a symlink to ``/`` or ``../../..``, and even when
another container that shares a volume swaps a directory there for a symlink
while this one is being set up (runc's CVE-2021-30465).  So the mount code
never walks a path string: :func:`open_in_root` asks the kernel (openat2 with
RESOLVE_IN_ROOT) for a handle on the destination, resolved as if the root
were ``/``; :func:`mkdir_all` and :func:`make_file` create what is missing
one component at a time relative to a directory handle (mkdirat, openat with
O_NOFOLLOW, refusing a symlink that appears meanwhile); mounts are then
attached to that handle (move_mount with the fd, or mount(2) on
``/proc/self/fd/N``).  Whatever an attacker swaps, the result is inside the
root.
"""
from __future__ import annotations

import errno
import os
import stat

from . import syscalls

MAX_SYMLINKS = 40


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


# -- handles, not paths (mount targets) ----------------------------------------------

_IN_ROOT = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_ONE_STEP = syscalls.RESOLVE_BENEATH | syscalls.RESOLVE_NO_SYMLINKS | syscalls.RESOLVE_NO_MAGICLINKS


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """A close-on-exec fd of ``path`` resolved inside the directory ``root_fd`` (symlinks,
    absolute ones included, and ``..`` stay inside it; no /proc magic links).  Following
    a mount point on the way enters the mount."""
    rel = "/".join(_split(path)) or "."
    return syscalls.openat2(root_fd, rel, flags | os.O_CLOEXEC, _IN_ROOT)


def _step(dir_fd: int, name: str, flags: int) -> int:
    """Open the single component ``name`` of ``dir_fd``, refusing a symlink there."""
    return syscalls.openat2(dir_fd, name, flags | os.O_CLOEXEC | os.O_NOFOLLOW, _ONE_STEP)


def mkdir_all(root_fd: int, path: str, mode: int = 0o755) -> int:
    """Create ``path`` (and its missing parents) as directories inside ``root_fd``; return
    an O_PATH fd of it.  The existing part is resolved in the root; each missing
    component is made with mkdirat and entered without following symlinks."""
    parts = _split(path)
    i = len(parts)
    while True:
        try:
            fd = open_in_root(root_fd, "/".join(parts[:i]))
            break
        except FileNotFoundError:
            if i == 0:
                raise
            i -= 1
        except NotADirectoryError:
            raise NotADirectoryError(errno.ENOTDIR, f"a component of {path} in the container "
                                                    "is not a directory") from None
    stack = [fd]
    try:
        for comp in parts[i:]:
            if comp == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                os.mkdir(comp, mode, dir_fd=stack[-1])
            except FileExistsError:
                pass
            try:
                stack.append(_step(stack[-1], comp, os.O_PATH | os.O_DIRECTORY))
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotADirectoryError(
                        errno.ENOTDIR, f"{path} in the container: {comp!r} is not a directory "
                        "(or became a symlink while it was being created)") from None
                raise
        if not stat.S_ISDIR(os.fstat(stack[-1]).st_mode):
            raise NotADirectoryError(errno.ENOTDIR,
                                     f"{path} exists in the container and is not a directory")
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def make_file(root_fd: int, path: str, mode: int = 0o644) -> int:
    """Resolve ``path`` inside ``root_fd`` and create it as an empty file if nothing is
    there (a dangling symlink is followed, inside the root, as runc does); return an
    O_PATH fd of it, which is never a directory or a symlink."""
    for _ in range(MAX_SYMLINKS):
        try:
            fd = open_in_root(root_fd, path)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            return _not_a_directory(fd, path)
        parts = _split(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "/ is a directory, a file was expected")
        dir_fd = mkdir_all(root_fd, "/".join(parts[:-1]))
        try:
            name = parts[-1]
            try:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, mode, dir_fd=dir_fd))
            except FileExistsError:
                try:
                    target = os.readlink(name, dir_fd=dir_fd)
                except OSError:
                    continue  # made by someone else meanwhile: look again
                # a dangling symlink: the file goes where it points, inside the root
                path = target if target.startswith("/") else "/".join(parts[:-1] + [target])
                continue
            fd = _step(dir_fd, name, os.O_PATH)
            return _not_a_directory(fd, path)
        finally:
            os.close(dir_fd)
    raise OSError(errno.ELOOP, f"resolving {path} in the container: too many symlinks")


def _not_a_directory(fd: int, path: str) -> int:
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "a symlink"
        raise IsADirectoryError(errno.EISDIR, f"{path} is {what} in the container, "
                                              "a file was expected")
    return fd


def proc_fd(fd: int) -> str:
    """The /proc/self/fd path of ``fd``: mount(2) on it lands exactly on what fd names."""
    return f"/proc/self/fd/{fd}"
