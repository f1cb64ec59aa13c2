"""Resolve a container path inside a root directory, never leaving it.

A mount destination such as ``/etc/resolv.conf`` must land inside the root even
when the image made ``/etc`` a symlink to ``/`` or ``../../..``: symlinks are
followed as if the root were ``/`` and ``..`` stops at the root.  Used before
pivot_root, while the host's tree is still visible around the root.
"""
from __future__ import annotations

import errno
import os
import stat

MAX_SYMLINKS = 40


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def secure_join(root: str, path: str) -> str:
    """Return ``root`` + the symlink-free form of ``path`` resolved within root.

    Components that do not exist are kept as they are (they are created later by
    the caller); ``..`` never climbs above root.  ``root`` itself is trusted and may
    be relative (``"."`` while the working directory is the container root).
    """
    pending = _split(path)
    pending.reverse()  # a stack: next component at the end
    resolved: list[str] = []
    links = 0
    while pending:
        comp = pending.pop()
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, comp)
        try:
            st = os.lstat(candidate)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                resolved.append(comp)
                continue
            raise
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(comp)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, f"resolving {path} in the container: too many symlinks")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = _split(target)
        parts.reverse()
        pending.extend(parts)
    return os.path.join(root, *resolved) if resolved else root


def make_dirs(root: str, path: str, mode: int = 0o755) -> str:
    """Resolve path inside root and create it (and its parents) as a directory."""
    full = secure_join(root, path)
    try:
        os.makedirs(full, mode, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR,
                                 f"{path} exists in the container and is not a directory") from None
    return full


def make_file(root: str, path: str, mode: int = 0o644) -> str:
    """Resolve path inside root and create it as an empty file if nothing is there."""
    make_dirs(root, os.path.dirname(path.rstrip("/")) or "/")
    full = secure_join(root, path)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        fd = os.open(full, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        os.close(fd)
        return full
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"{path} is a directory in the container, "
                                              "a file was expected")
    return full
