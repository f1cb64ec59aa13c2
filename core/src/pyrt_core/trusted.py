"""Files pyrt may act on: caches and records that no other user can have written.

pyrt runs as root, and what it reads from a cache decides which code it imports and
calls (the entry-point index, the hook plans of :mod:`pyrt_core.hookcall`) or which
filter a container gets (the seccomp cache).  A cache under a directory another user
controls (``sudo -E pyrt``, ``XDG_CACHE_HOME`` in someone's home, a path under /tmp
they created first) would let that user choose for root.  So a cache is used only when
nobody but the caller and root can have written it:

* a directory is trusted when, after symlinks are resolved, it and every directory
  above it are owned by the caller or root and writable by neither group nor others.
  A sticky directory above it (``/tmp``) is allowed: there others cannot remove or
  rename what they do not own, and the next directory down must be ours;
* a file is opened with ``O_NOFOLLOW`` in a trusted directory, and ``fstat`` of the
  open descriptor must say: a regular file, owned by the caller or root, writable by
  neither group nor others.

The same rule OpenSSH applies to ``authorized_keys`` (``StrictModes``) and sudo to its
sudoers files.  Directories created on the way get mode 0700, as the XDG base
directory specification asks.  Only ``os`` and ``stat`` are imported: the runtime's
``create`` reads its hook plans through here.
"""
from __future__ import annotations

import os
import stat

#: the chain of a directory only its owners (the caller, root) can change: checked once
#: per process.  Maps (path, create) -> None (trusted) or the reason it is not.
_dirs: dict[tuple[str, bool], str | None] = {}

_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def _owners() -> tuple[int, int]:
    return 0, os.geteuid()


def _why_not_dir(st: os.stat_result, path: str, last: bool) -> str | None:
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid not in _owners():
        return f"{path} is owned by uid {st.st_uid}"
    if st.st_mode & _WRITABLE and (last or not st.st_mode & stat.S_ISVTX):
        who = " and ".join(w for bit, w in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others"))
                           if st.st_mode & bit)
        return f"{path} is writable by {who}"
    return None


def _walk(path: str, create: bool) -> str | None:
    real = os.path.realpath(path)
    parts = [p for p in real.split("/") if p]
    try:
        why = _why_not_dir(os.lstat("/"), "/", not parts)
    except OSError as e:
        return f"/: {e.strerror}"
    if why:
        return why
    cur = ""
    for i, name in enumerate(parts):
        cur = f"{cur}/{name}"
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if not create:
                return f"{cur} does not exist"
            try:  # its parent is trusted: nobody else can race us here
                os.mkdir(cur, 0o700)
            except FileExistsError:
                pass
            except OSError as e:
                return f"cannot create {cur}: {e.strerror}"
            try:
                st = os.lstat(cur)
            except OSError as e:
                return f"{cur}: {e.strerror}"
        except OSError as e:
            return f"{cur}: {e.strerror}"
        why = _why_not_dir(st, cur, i == len(parts) - 1)
        if why:
            return why
    return None


def why_untrusted_dir(path: str, create: bool = False) -> str | None:
    """None when the directory ``path`` is trusted (see the module's docstring), else
    why not, in a few words.  ``create``: make the missing directories (mode 0700),
    each only inside a trusted one."""
    key = (path, create)
    if key not in _dirs:
        why = _walk(path, create)
        if create and why is None:
            _dirs[(path, False)] = None
        _dirs[key] = why
    return _dirs[key]


def read(path: str, limit: int = 1 << 22) -> bytes | None:
    """The content of ``path`` when it is a trusted file in a trusted directory and at
    most ``limit`` bytes long; None otherwise (missing, untrusted, a symlink, too big)."""
    if why_untrusted_dir(os.path.dirname(path) or "."):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid not in _owners()
                or st.st_mode & _WRITABLE or st.st_size > limit):
            return None
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, max(limit + 1 - size, 1))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return None
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def write(path: str, data: bytes | str, mode: int = 0o644) -> bool:
    """Replace ``path`` atomically (a new file, renamed over it) when its directory is
    trusted, creating it (0700) when missing; False when not written.  A cache that
    cannot be written only costs time, so errors are not raised."""
    if mode & _WRITABLE:
        raise ValueError(f"a trusted file must not be writable by group or others: {mode:o}")
    if why_untrusted_dir(os.path.dirname(path) or ".", create=True):
        return False
    from .fsutil import atomic_write

    try:
        atomic_write(path, data, mode, durable=False)
    except OSError:
        return False
    return True


def forget() -> None:
    """Drop what this process learnt about directories (tests that change them)."""
    _dirs.clear()
