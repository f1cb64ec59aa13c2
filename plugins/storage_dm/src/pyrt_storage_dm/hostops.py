"""What the device set does to the host besides device-mapper: loop devices, mkfs,
mounts, discards and sparse files (one class, so that unit tests can replace it with a
fake that keeps the kernel's part in memory)."""
from __future__ import annotations

import os

from . import fs as fsmod
from . import loop as loopmod


class HostOps:
    """What the device set does to the host besides device-mapper (replaced by fakes in
    unit tests)."""

    attach = staticmethod(loopmod.attach_fd)
    find_backing = staticmethod(loopmod.find_backing)
    backing_devices = staticmethod(loopmod.backing_devices)
    dev_numbers = staticmethod(loopmod.dev_numbers)
    device_size = staticmethod(loopmod.device_size)
    discard = staticmethod(loopmod.discard)
    mkfs = staticmethod(fsmod.mkfs)
    read_uuid = staticmethod(fsmod.read_uuid)
    mount = staticmethod(fsmod.mount)
    umount = staticmethod(fsmod.umount)
    is_mountpoint = staticmethod(fsmod.is_mountpoint)
    grow = staticmethod(fsmod.grow)
    missing_tools = staticmethod(fsmod.missing_tools)

    @staticmethod
    def close(fd: int) -> None:
        os.close(fd)

    @staticmethod
    def zero_head(path: str, length: int = 4096) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(fd, b"\0" * length, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def create_sparse(path: str, size: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
        finally:
            os.close(fd)
