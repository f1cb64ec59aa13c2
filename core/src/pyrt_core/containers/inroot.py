"""Reading and making files inside a container's root filesystem from the host, never
leaving that root.

The engine reads a few files of an image on the host side (``/etc/passwd`` and
``/etc/group`` to resolve ``--user``) and makes the working directory.  The image (or,
for ``pyrt exec`` and a restart, the container itself) chose what those paths are: a
symlink to the host's ``/etc/shadow``, a FIFO that blocks every reader, ``/dev/zero``,
a sparse file of a terabyte.  So:

* paths are resolved with ``openat2(RESOLVE_IN_ROOT)``: symlinks and ``..`` are
  followed as if the root were ``/``, by the kernel, on descriptors, so a concurrent
  rename cannot move the walk outside.  Without openat2 (Linux < 5.6, or a seccomp
  filter refusing it) :func:`_walk` does the same one component at a time: every step
  is an ``openat(O_PATH|O_NOFOLLOW)`` relative to the directory reached so far, a
  symlink is read from its own descriptor and its target walked again from the root
  (absolute) or from where it stands (relative), ``..`` goes back to the previous
  descriptor and never above the root;
* the file is opened ``O_PATH`` first (no open side effect: a FIFO, a tape or watchdog
  device is never opened), must be a regular file no bigger than the limit, and only
  then is reopened for reading through ``/proc/self/fd`` with ``O_NONBLOCK``;
* reads stop at the limit even if the file grows meanwhile.

Errors are :class:`~pyrt_core.errors.ImageError` (exit 125) with one line.
"""
from __future__ import annotations

import errno
import os
import stat

from ..errors import ImageError

#: the most the engine reads of one file of a container (passwd and group files are tiny)
MAX_FILE = 1 << 20
MAX_SYMLINKS = 40

_O_PATH = getattr(os, "O_PATH", 0o10000000)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_SYS_openat2 = 437  # the same number on every architecture (added after the unified table)

_openat2_missing = False  # set once the kernel (or a seccomp filter) refused openat2


_libc = None


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2) through libc's syscall(); OSError as os.open raises it.  (ctypes is
    imported here: only the commands that read a container's files pay for it.)"""
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    syscall = _libc.syscall

    class _OpenHow(ctypes.Structure):  # struct open_how
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                    ("resolve", ctypes.c_uint64)]

    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    fd = syscall(ctypes.c_long(_SYS_openat2), ctypes.c_int(dirfd),
                 ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how),
                 ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return fd


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def _walk(rootfd: int, path: str, create_dirs: tuple[int, int] | None = None) -> int:
    """An ``O_PATH`` descriptor of ``path`` resolved inside ``rootfd`` without openat2
    (see the module docstring).  ``create_dirs=(uid, gid)`` makes missing components
    as directories (mode 0755), as ``mkdir -p`` would in the root; the last one is
    owned by uid:gid, the others by the caller."""
    stack = [os.dup(rootfd)]  # the directories walked through; stack[0] is the root
    pending = _parts(path)
    pending.reverse()  # next component at the end
    links = 0
    try:
        while pending:
            comp = pending.pop()
            if comp == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            try:
                fd = os.open(comp, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            except FileNotFoundError:
                if create_dirs is None:
                    raise
                owner = create_dirs if not pending else (os.geteuid(), os.getegid())
                fd = _make_dir(cur, comp, *owner)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink("", dir_fd=fd)  # the link this descriptor holds
                finally:
                    os.close(fd)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                more = _parts(target)
                more.reverse()
                pending.extend(more)
                continue
            if pending and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return os.dup(stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def _make_dir(dirfd: int, name: str, uid: int, gid: int) -> int:
    """mkdir ``name`` in ``dirfd`` and return a descriptor of it, owned by uid:gid, mode
    0755; the owner and mode are set through the descriptor (never through a name a
    concurrent process could have replaced with a symlink)."""
    try:
        os.mkdir(name, 0o755, dir_fd=dirfd)
        made = True
    except FileExistsError:
        made = False  # made meanwhile: the open below checks what it is
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        if made:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o755)  # not cut by the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_path(root: str, path: str) -> int:
    """An ``O_PATH`` descriptor of ``path`` (a container path) inside directory ``root``;
    raises OSError (FileNotFoundError, NotADirectoryError, ELOOP ...)."""
    global _openat2_missing

    rootfd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not _openat2_missing:
            try:
                return _openat2(rootfd, path.lstrip("/") or ".", _O_PATH,
                                _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
            except OSError as e:
                # ENOSYS: no openat2; EPERM: a seccomp filter refused it (the kernel itself
                # never answers EPERM here); then walk safely by hand
                if e.errno not in (errno.ENOSYS, errno.EPERM):
                    raise
                _openat2_missing = True
        return _walk(rootfd, path)
    finally:
        os.close(rootfd)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a fifo"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def read_file(root: str, path: str, limit: int = MAX_FILE) -> bytes | None:
    """The bytes of the regular file ``path`` inside ``root``, or None when there is no
    such file (or a component of its path is not a directory).  Anything else there (a
    FIFO, a device, a directory, a file over ``limit`` bytes) is refused with one line."""
    what = f"{path} in the container"
    try:
        pfd = open_path(root, path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise ImageError(f"cannot read {what}: {e.strerror or e}") from None
    try:
        st = os.fstat(pfd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"cannot read {what}: it is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise ImageError(f"cannot read {what}: it is larger than {limit} bytes "
                             f"({st.st_size} bytes)")
        # reopen the very inode for reading (O_PATH cannot read); O_NONBLOCK and O_NOCTTY
        # in case it is swapped for something else, which the second fstat catches
        fd = os.open(f"/proc/self/fd/{pfd}",
                     os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise ImageError(f"cannot read {what}: {e.strerror or e}") from None
    finally:
        os.close(pfd)
    try:
        st2 = os.fstat(fd)
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(st2.st_mode):
            raise ImageError(f"cannot read {what}: it changed while it was opened")
        chunks, left = [], limit + 1
        while left > 0:
            c = os.read(fd, min(left, 65536))
            if not c:
                break
            chunks.append(c)
            left -= len(c)
        data = b"".join(chunks)
    except OSError as e:
        raise ImageError(f"cannot read {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ImageError(f"cannot read {what}: it grew larger than {limit} bytes")
    return data


def make_dirs(root: str, path: str, uid: int, gid: int) -> None:
    """``mkdir -p path`` inside ``root`` (symlinks resolved inside it, as the container
    will see them); the last directory, if made, is owned by ``uid:gid``.  Iterative: a
    path of thousands of components is no deeper a recursion than one of two."""
    rootfd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(_walk(rootfd, path, create_dirs=(uid, gid)))
    finally:
        os.close(rootfd)
