"""The filesystem on the thin devices: mkfs, superblock UUID, mount, grow.

``mkfs.ext4`` / ``mkfs.xfs`` make the base device's filesystem (every layer
snapshots it, so every layer shares its UUID: xfs is mounted with
``nouuid``).  ext4 inode tables are written at mkfs time
(``lazy_itable_init=0``): otherwise the kernel's background initialisation
would write them again into every snapshot.  Mounts use mount(2) directly.
"""
from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import struct
import subprocess
import uuid as uuidmod

FILESYSTEMS = ("ext4", "xfs")
MNT_DETACH = 2
_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def tools_for(fs: str) -> list[tuple[str, str]]:
    """(tool, Debian package) pairs a filesystem needs."""
    if fs == "xfs":
        return [("mkfs.xfs", "xfsprogs"), ("xfs_growfs", "xfsprogs")]
    return [("mkfs.ext4", "e2fsprogs"), ("resize2fs", "e2fsprogs")]


def missing_tools(fs: str) -> list[str]:
    return [f"{tool} (apt-get install {pkg})" for tool, pkg in tools_for(fs)
            if shutil.which(tool) is None]


def mkfs_argv(fs: str, device: str, extra: str = "") -> list[str]:
    if fs == "xfs":
        argv = ["mkfs.xfs", "-q", "-f", "-K"]  # -K: no discard at mkfs (the device is new)
    else:
        argv = ["mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0"]
    return argv + shlex.split(extra) + [device]


def mkfs(fs: str, device: str, extra: str = "") -> None:
    argv = mkfs_argv(fs, device, extra)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise OSError(0, f"{' '.join(argv)} failed: {(r.stderr or r.stdout).strip()}")


def parse_uuid(fs: str, head: bytes) -> str | None:
    """The filesystem UUID from the first 2 KiB of a device, None when not that filesystem.
    ext4: superblock at 1024, magic 0xEF53 at +0x38, s_uuid at +0x68;
    xfs: magic ``XFSB`` at 0, sb_uuid at 32."""
    if fs == "xfs":
        if head[:4] != b"XFSB":
            return None
        return str(uuidmod.UUID(bytes=bytes(head[32:48])))
    if len(head) < 2048 or struct.unpack_from("<H", head, 1024 + 0x38)[0] != 0xEF53:
        return None
    return str(uuidmod.UUID(bytes=bytes(head[1024 + 0x68:1024 + 0x78])))


def read_uuid(fs: str, device: str) -> str | None:
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return parse_uuid(fs, os.pread(fd, 2048, 0))
    finally:
        os.close(fd)


#: options mount(8) turns into mount(2) flags rather than passing them to the filesystem
MOUNT_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "sync": 16, "dirsync": 128,
               "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21,
               "strictatime": 1 << 24, "lazytime": 1 << 25}
_IGNORED = {"rw", "defaults", "suid", "dev", "exec", "async", "atime", "diratime"}


def mount_options(fs: str, extra: str = "") -> str:
    """The filesystem's own options (the data string) of ``extra``, plus xfs's ``nouuid``."""
    opts = [o for o in extra.split(",") if o and o not in MOUNT_FLAGS and o not in _IGNORED]
    if fs == "xfs" and "nouuid" not in opts:
        opts.append("nouuid")  # every snapshot has the base's UUID
    return ",".join(opts)


def mount_flags(extra: str = "") -> int:
    flags = 0
    for o in extra.split(","):
        flags |= MOUNT_FLAGS.get(o, 0)
    return flags


def mount(device: str, target: str, fs: str, options: str = "") -> None:
    data = mount_options(fs, options)
    rc = libc().mount(os.fsencode(device), os.fsencode(target), fs.encode(), mount_flags(options),
                      data.encode() if data else None)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {device} on {target} ({fs}{', ' + data if data else ''}): "
                      f"{os.strerror(e)}")


def umount(target: str, lazy: bool = False) -> None:
    rc = libc().umount2(os.fsencode(target), MNT_DETACH if lazy else 0)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"umount {target}: {os.strerror(e)}")


def is_mountpoint(path: str) -> bool:
    try:
        st = os.lstat(path)
        pst = os.lstat(os.path.dirname(path.rstrip("/")) or "/")
    except FileNotFoundError:
        return False
    return st.st_dev != pst.st_dev or st.st_ino == pst.st_ino


def grow(fs: str, device: str, mountpoint: str) -> None:
    """Grow the mounted filesystem on ``device`` to the device's size (online)."""
    argv = ["xfs_growfs", mountpoint] if fs == "xfs" else ["resize2fs", device]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise OSError(0, f"{' '.join(argv)} failed: {(r.stderr or r.stdout).strip()}")
