"""A throw-away btrfs filesystem on a loop device, for tests and benchmarks.

::

    with LoopBtrfs(tmpdir) as fs:       # sparse file, losetup, mkfs.btrfs, mount
        ... fs.mountpoint ...
    # unmounted (retried, lazily as a last resort), loop device detached,
    # image file deleted

Needs root, ``losetup`` and ``mount`` (util-linux) and ``mkfs.btrfs``
(apt ``btrfs-progs``); :class:`LoopFsUnavailable` says which is missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time


class LoopFsUnavailable(Exception):
    """A loop-backed btrfs cannot be made on this host (the message says why)."""


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def _is_mountpoint(path: str) -> bool:
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo", "rb") as f:
        return any(os.fsdecode(line.split(b" ", 5)[4]) == path for line in f)


class LoopBtrfs:
    """A btrfs of ``size`` bytes (sparse) made and mounted below ``workdir``."""

    def __init__(self, workdir: str, size: int = 1 << 30, mkfs_args: tuple[str, ...] = ()):
        self.workdir = str(workdir)
        self.size = size
        self.mkfs_args = tuple(mkfs_args)
        self.image = os.path.join(self.workdir, "btrfs.img")
        self.mountpoint = os.path.join(self.workdir, "mnt")
        self.device: str | None = None
        self.mounted = False

    @staticmethod
    def check_host() -> None:
        """Raise :class:`LoopFsUnavailable` unless root with the tools and kernel support."""
        if os.geteuid() != 0:
            raise LoopFsUnavailable("a loop-backed btrfs needs root")
        for tool, pkg in (("mkfs.btrfs", "btrfs-progs"), ("losetup", "util-linux"),
                          ("mount", "mount"), ("umount", "mount")):
            if shutil.which(tool) is None:
                raise LoopFsUnavailable(f"{tool} is not installed (apt-get install {pkg})")
        try:
            with open("/proc/filesystems") as f:
                if not any(line.split()[-1:] == ["btrfs"] for line in f):
                    raise LoopFsUnavailable("the kernel has no btrfs (modprobe btrfs)")
        except OSError:
            pass
        if not (os.path.exists("/dev/loop-control") or os.path.exists("/dev/loop0")):
            raise LoopFsUnavailable("no loop devices (/dev/loop-control is missing)")

    def open(self) -> "LoopBtrfs":
        self.check_host()
        os.makedirs(self.mountpoint, exist_ok=True)
        try:
            with open(self.image, "wb") as f:
                f.truncate(self.size)
            r = _run(["losetup", "--find", "--show", self.image])
            if r.returncode != 0:
                raise LoopFsUnavailable(f"losetup failed: {r.stderr.strip()}")
            self.device = r.stdout.strip()
            r = _run(["mkfs.btrfs", "-q", "-f", *self.mkfs_args, self.device], timeout=120)
            if r.returncode != 0:
                raise LoopFsUnavailable(f"mkfs.btrfs failed: {r.stderr.strip()}")
            r = _run(["mount", "-t", "btrfs", self.device, self.mountpoint])
            if r.returncode != 0:
                raise LoopFsUnavailable(f"mounting btrfs failed: {r.stderr.strip()}")
            self.mounted = True
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Unmount (retrying while busy, lazily at last), detach, delete the image."""
        if self.mounted or _is_mountpoint(self.mountpoint):
            for attempt in range(20):
                _run(["umount", self.mountpoint])
                if not _is_mountpoint(self.mountpoint):
                    break
                time.sleep(0.1 * (attempt + 1) if attempt < 5 else 0.5)
            else:
                _run(["umount", "-l", self.mountpoint])
            self.mounted = False
        if self.device:
            # a lazily unmounted fs may still hold the device: -d then only sets
            # autoclear, and the kernel detaches it when the last user goes
            for attempt in range(20):
                r = _run(["losetup", "-d", self.device])
                if r.returncode == 0 or not _attached(self.device, self.image):
                    break
                time.sleep(0.1)
            self.device = None
        try:
            os.rmdir(self.mountpoint)
        except OSError:
            pass
        try:
            os.unlink(self.image)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "LoopBtrfs":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def _attached(device: str, image: str) -> bool:
    r = _run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"])
    for line in r.stdout.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == device and (len(parts) < 2 or image in parts[1]):
            return True
    return False
