"""Loop devices for the pool's sparse data and metadata files, by ioctl.

A file is attached with ``LOOP_CONFIGURE`` (Linux 5.8+) on a free device
from ``/dev/loop-control``, with ``LO_FLAGS_AUTOCLEAR``: the kernel detaches
it when its last user goes, so once the thin pool holds it, removing the
pool frees the loop device as well (and a crash before the pool exists
leaves nothing attached).  :func:`find_backing` finds a device already
backing a file (after a crash the pool still holds them: they are adopted).
"""
from __future__ import annotations

import errno
import os
import stat
import struct

LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LOOP_GET_STATUS64 = 0x4C05
LO_FLAGS_AUTOCLEAR = 4
BLKGETSIZE64 = 0x80081272
BLKDISCARD = 0x1277

# struct loop_info64
_INFO = struct.Struct("=QQQQQIIII64s64s32s2Q")
assert _INFO.size == 232
# struct loop_config: fd, block_size, info, __reserved[8]
_CONFIG = struct.Struct("=II232s64s")
assert _CONFIG.size == 304


def pack_config(fd: int, name: str, flags: int = LO_FLAGS_AUTOCLEAR) -> bytes:
    info = _INFO.pack(0, 0, 0, 0, 0, 0, 0, 0, flags, os.fsencode(name)[-63:], b"", b"", 0, 0)
    return _CONFIG.pack(fd, 0, info, b"")


def attach(path: str, readonly: bool = False, retries: int = 20) -> str:
    """Attach ``path`` to a free loop device without autoclear; return ``/dev/loopN``
    (the caller detaches it)."""
    dev, fd = attach_fd(path, readonly, retries, autoclear=False)
    os.close(fd)
    return dev


def attach_fd(path: str, readonly: bool = False, retries: int = 20,
              autoclear: bool = True) -> tuple[str, int]:
    """Like :func:`attach`, returning ``(device, open fd of the device)``: with autoclear,
    the attachment lasts until the last holder closes it."""
    import fcntl

    mode = os.O_RDONLY if readonly else os.O_RDWR
    ffd = os.open(path, mode | os.O_CLOEXEC)
    try:
        ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(retries):
                n = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                dev = f"/dev/loop{n}"
                if not os.path.exists(dev):  # no devtmpfs node yet: make it
                    try:
                        os.mknod(dev, stat.S_IFBLK | 0o660, os.makedev(7, n))
                    except FileExistsError:
                        pass
                dfd = os.open(dev, mode | os.O_CLOEXEC)
                try:
                    fcntl.ioctl(dfd, LOOP_CONFIGURE,
                                pack_config(ffd, path, LO_FLAGS_AUTOCLEAR if autoclear else 0))
                except OSError as e:
                    os.close(dfd)
                    if e.errno == errno.EBUSY:  # another process took it first
                        continue
                    raise
                return dev, dfd
            raise OSError(errno.EBUSY, "no free loop device could be attached", path)
        finally:
            os.close(ctl)
    finally:
        os.close(ffd)


def backing_file(loopname: str) -> str | None:
    """The file behind ``loopN`` (from sysfs), None when unattached."""
    try:
        with open(f"/sys/block/{loopname}/loop/backing_file") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


def find_backing(path: str) -> str | None:
    """The first loop device (``/dev/loopN``) backing file ``path``, None when there is
    none.  Compared by device and inode (LOOP_GET_STATUS64), so renames do not fool it."""
    found = backing_devices(path)
    return found[0] if found else None


def backing_devices(path: str) -> list[str]:
    """Every loop device backing file ``path`` (one being torn down may still be listed
    beside the one in use)."""
    import fcntl

    out: list[str] = []
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return out
    try:
        names = [n for n in os.listdir("/sys/block") if n.startswith("loop")]
    except OSError:
        return out
    for n in sorted(names, key=lambda n: int(n[4:]) if n[4:].isdigit() else -1):
        if backing_file(n) is None:
            continue
        dev = f"/dev/{n}"
        try:
            fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            buf = bytearray(_INFO.size)
            fcntl.ioctl(fd, LOOP_GET_STATUS64, buf, True)
        except OSError:
            continue
        finally:
            os.close(fd)
        lo_device, lo_inode = struct.unpack_from("=QQ", buf, 0)
        if lo_inode == st.st_ino and _same_dev(lo_device, st.st_dev):
            out.append(dev)
    return out


def _same_dev(kernel_dev: int, st_dev: int) -> bool:
    # loop_info64.lo_device is the kernel's old_encode/new_encode of the fs device
    if kernel_dev == st_dev:
        return True
    major = (kernel_dev & 0xFFF00) >> 8
    minor = (kernel_dev & 0xFF) | ((kernel_dev >> 12) & 0xFFF00)
    return os.makedev(major, minor) == st_dev


def dev_numbers(devpath: str) -> str:
    """``major:minor`` of a block device node."""
    st = os.stat(devpath)
    if not stat.S_ISBLK(st.st_mode):
        raise OSError(errno.ENOTBLK, "not a block device", devpath)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def device_size(devpath: str) -> int:
    """Size in bytes of a block device (BLKGETSIZE64)."""
    import fcntl

    fd = os.open(devpath, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, BLKGETSIZE64, buf, True)
        return struct.unpack("=Q", buf)[0]
    finally:
        os.close(fd)


def discard(devpath: str, length: int | None = None) -> None:
    """BLKDISCARD over the whole device: the thin pool frees the blocks and passes the
    discard down, so a loop file gets holes punched (it shrinks)."""
    import fcntl

    fd = os.open(devpath, os.O_WRONLY | os.O_CLOEXEC)
    try:
        if length is None:
            buf = bytearray(8)
            fcntl.ioctl(fd, BLKGETSIZE64, buf, True)
            length = struct.unpack("=Q", buf)[0]
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("=QQ", 0, length))
    finally:
        os.close(fd)


def detach(devpath: str) -> None:
    """LOOP_CLR_FD (with autoclear set, the kernel detaches at the last close)."""
    import fcntl

    fd = os.open(devpath, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, 0x4C01)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
    finally:
        os.close(fd)
