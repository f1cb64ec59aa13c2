"""ctypes bindings for the Linux system calls that Python 3.11's os module lacks.

Every wrapper raises :class:`OSError` (so ``except PermissionError`` works) whose
``errno`` is the kernel's and whose ``strerror`` names the operation and path, e.g.
``mount tmpfs on /dev: Operation not permitted``.  ``mknod``, ``setresuid`` and
friends are in :mod:`os` and are used from there.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import struct

_ARCH = os.uname().machine

# Numbers for calls reached through syscall(2).  open_tree/move_mount/close_range
# come from the unified table added in 5.x, the same on every architecture.
_SYSCALL_NUMBERS = {
    "x86_64": {"pivot_root": 155, "open_tree": 428, "move_mount": 429, "close_range": 436,
               "openat2": 437, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "open_tree": 428, "move_mount": 429, "close_range": 436,
                "openat2": 437, "mount_setattr": 442},
}

# mount(2)/umount2(2)
MNT_DETACH = 2
# open_tree(2)/move_mount(2)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
# openat2(2) resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
# mount_setattr(2) attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
# close_range(2)
CLOSE_RANGE_CLOEXEC = 1 << 2
# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
# capget(2)/capset(2)
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CapDataPair = _CapData * 2


def _load():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    c_int, c_ulong, c_char_p, c_size_t = ctypes.c_int, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t
    for name, args in {
        "unshare": [c_int],
        "setns": [c_int, c_int],
        "mount": [c_char_p, c_char_p, c_char_p, c_ulong, c_char_p],
        "umount2": [c_char_p, c_int],
        "sethostname": [c_char_p, c_size_t],
        "setdomainname": [c_char_p, c_size_t],
        "prctl": [c_int, c_ulong, c_ulong, c_ulong, c_ulong],
        "capget": [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)],
        "capset": [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)],
        "personality": [c_ulong],
    }.items():
        fn = getattr(libc, name)
        fn.argtypes = args
        fn.restype = c_int
    libc.syscall.restype = ctypes.c_long
    return libc


_libc = _load()


def _fail(what: str):
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def _syscall(name: str, *args) -> int:
    try:
        number = _SYSCALL_NUMBERS[_ARCH][name]
    except KeyError:
        raise OSError(38, f"{name}: no syscall number known for {_ARCH}") from None
    return _libc.syscall(ctypes.c_long(number), *args)


# -- namespaces ---------------------------------------------------------------

def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        _fail(f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0, what: str = "") -> None:
    if _libc.setns(fd, nstype) != 0:
        _fail(f"setns({what or fd})")


# -- mounts -------------------------------------------------------------------

def mount(source, target, fstype, flags: int = 0, data=None, what: str | None = None) -> None:
    """mount(2).  ``what`` replaces the target in the error message (container paths)."""
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data) if data else None) != 0:
        desc = what or f"{os.fsdecode(_b(source or fstype or b'none'))} on {os.fsdecode(_b(target))}"
        _fail(f"mount {desc} (flags {flags:#x}{', data ' + data if data else ''})")


def umount2(target, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        _fail(f"umount {os.fsdecode(_b(target))}")


def pivot_root(new_root, put_old) -> None:
    if _syscall("pivot_root", _b(new_root), _b(put_old)) != 0:
        _fail(f"pivot_root {os.fsdecode(_b(new_root))}")


def open_tree(dirfd: int, path, flags: int) -> int:
    """open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at path."""
    fd = _syscall("open_tree", ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags))
    if fd < 0:
        _fail(f"open_tree {os.fsdecode(_b(path))}")
    return fd


def move_mount(from_fd: int, from_path, to_fd: int, to_path, flags: int) -> None:
    r = _syscall("move_mount", ctypes.c_int(from_fd), _b(from_path), ctypes.c_int(to_fd),
                 _b(to_path), ctypes.c_uint(flags))
    if r != 0:
        _fail(f"move_mount to {os.fsdecode(_b(to_path))}")


def openat2(dirfd: int, path, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` under the ``resolve`` rules."""
    how = struct.pack("QQQ", flags, mode, resolve)
    fd = _syscall("openat2", ctypes.c_int(dirfd), _b(path), how, ctypes.c_size_t(len(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fsdecode(_b(path)))
    return fd


def mount_setattr(dirfd: int, path, flags: int, attr_set: int, attr_clr: int = 0,
                  propagation: int = 0, what: str = "") -> None:
    """mount_setattr(2): change the attributes of the mount at ``path`` (of ``dirfd`` itself
    with AT_EMPTY_PATH), of its whole subtree with AT_RECURSIVE."""
    attr = struct.pack("QQQQ", attr_set, attr_clr, propagation, 0)
    if _syscall("mount_setattr", ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags), attr,
                ctypes.c_size_t(len(attr))) != 0:
        _fail(f"mount_setattr {what or os.fsdecode(_b(path))}")


def close_range(first: int, last: int, flags: int = 0) -> None:
    if _syscall("close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)) != 0:
        _fail("close_range")


# -- identity -----------------------------------------------------------------

def sethostname(name: str) -> None:
    b = name.encode()
    if _libc.sethostname(b, len(b)) != 0:
        _fail(f"sethostname {name!r}")


def setdomainname(name: str) -> None:
    b = name.encode()
    if _libc.setdomainname(b, len(b)) != 0:
        _fail(f"setdomainname {name!r}")


#: personality(2) execution domains (linux.personality.domain)
PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}


def personality(persona: int) -> None:
    if _libc.personality(persona) == -1:
        _fail(f"personality({persona:#x})")


TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def unlock_pty(master: int) -> str:
    """unlockpt + ptsname for a master opened from /dev/ptmx: the slave's path."""
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, struct.pack("i", 0)))[0]
    return f"/dev/pts/{n}"


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0,
          what: str = "") -> int:
    r = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if r < 0:
        _fail(f"prctl({what or option})")
    return r


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of a process as 64-bit masks."""
    hdr = _CapHeader(LINUX_CAPABILITY_VERSION_3, pid)
    data = _CapDataPair()
    if _libc.capget(ctypes.byref(hdr), data) != 0:
        _fail("capget")
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataPair()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        _fail(f"capset(effective={effective:#x}, permitted={permitted:#x}, "
              f"inheritable={inheritable:#x})")
