"""The system calls and tables the overlay driver mounts with: mount(2) and umount2(2)
through ctypes (loaded on first use), /proc/self/mountinfo, getdents64(2) for d_type.

Imported by the driver module, which is imported whenever drivers are listed, so it
imports nothing heavier than :mod:`os` at the top.
"""
from __future__ import annotations

import os

MNT_DETACH = 2

_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes

        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_ulong, ctypes.c_char_p]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc = lib
    return _libc


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def mount_overlay(target: str, options: str, cwd: str | None = None) -> None:
    """mount(2) an overlay at ``target``; with ``cwd``, from a child process
    whose working directory is ``cwd`` so relative paths in ``options`` work
    (changing the working directory of this process would affect every
    thread)."""
    lib = libc()
    t, o = os.fsencode(target), os.fsencode(options)
    if cwd is None:
        if lib.mount(b"overlay", t, b"overlay", 0, o) != 0:
            err = _errno()
            raise OSError(err, os.strerror(err), target)
        return
    c = os.fsencode(cwd)
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, only chdir + mount
        code = 255
        try:
            os.chdir(c)
            code = 0 if lib.mount(b"overlay", t, b"overlay", 0, o) == 0 else (_errno() or 255)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = code if 0 < code < 255 else 0
        raise OSError(err, os.strerror(err) if err else "mount helper failed", target)


def unmount(target: str) -> None:
    """Lazily unmount ``target`` (MNT_DETACH: copies of the mount in other
    mount namespaces do not keep it busy)."""
    if libc().umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = _errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, os.strerror(err), target)


def mounts_under(path: str) -> list[str]:
    """Mount points strictly below ``path`` (from /proc/self/mountinfo), deepest first."""
    prefix = path.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            mp = _unescape(line.split(b" ", 5)[4])
            if mp.startswith(prefix):
                out.append(mp)
    return sorted(set(out), key=lambda m: (-m.count("/"), m))


def _unescape(field: bytes) -> str:
    if b"\\" in field:
        import re

        field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
    return os.fsdecode(field)


def backing_filesystem(path: str) -> str:
    """The filesystem type of the mount holding ``path``."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, _, right = line.partition(b" - ")
            mp = _unescape(left.split(b" ")[4])
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, fstype = mp, os.fsdecode(right.split(b" ")[0])
    return fstype


def dir_entry_types(path: str) -> dict[str, int]:
    """``{name: d_type}`` of a directory's entries, read with getdents64(2)."""
    import ctypes
    import struct

    lib = libc()
    buf = ctypes.create_string_buffer(65536)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    out = {}
    try:
        fn = getattr(lib, "getdents64", None)
        if fn is not None:
            fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
            fn.restype = ctypes.c_ssize_t
            call = lambda: fn(fd, buf, len(buf))  # noqa: E731
        else:
            import platform

            nr = {"x86_64": 217, "aarch64": 61, "riscv64": 61, "ppc64le": 202, "s390x": 220}[
                platform.machine()]
            lib.syscall.restype = ctypes.c_long
            call = lambda: lib.syscall(nr, fd, buf, ctypes.c_size_t(len(buf)))  # noqa: E731
        while True:
            n = call()
            if n < 0:
                err = _errno()
                raise OSError(err, os.strerror(err), path)
            if n == 0:
                break
            raw = buf.raw[:n]
            off = 0
            while off < n:
                _ino, _doff, reclen, dtype = struct.unpack_from("=QqHB", raw, off)
                name = raw[off + 19:off + reclen].split(b"\0", 1)[0]
                out[os.fsdecode(name)] = dtype
                off += reclen
    finally:
        os.close(fd)
    return out
