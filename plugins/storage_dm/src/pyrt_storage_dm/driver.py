"""The devicemapper storage driver: a thin pool, one thin snapshot per layer.

The pool (``thin-pool`` target) sits on two sparse loop files
(``dm.loopdatasize``, ``dm.loopmetadatasize``), on two given block devices
(``dm.datadev``, ``dm.metadatadev``) or is an existing empty pool
(``dm.thinpooldev``).  A base device of ``dm.basesize`` holds an empty
``dm.fs`` filesystem; a layer without a parent is a thin snapshot of it
(``create_snap``), every other layer and container a snapshot of its
parent.  ``get`` activates the thin device and mounts it at
``<home>/mnt/<id>``, handing out ``<home>/mnt/<id>/rootfs``; ``put``
unmounts and deactivates.  Diffs are naive (files compared against the
mounted parent), as docker's devicemapper does.

Pool, devices, transactions and recovery are in
:mod:`pyrt_storage_dm.deviceset`; the kernel interface is the
``/dev/mapper/control`` ioctls (:mod:`pyrt_storage_dm.dm`).
"""
from __future__ import annotations

import errno
import os
import re

from pyrt_core.errors import (
    ConflictError,
    DriverNotSupported,
    NotFoundError,
    StorageError,
    UsageError,
)
from pyrt_core.api import NaiveDiffDriver

from . import dm as dmmod
from .deviceset import BASE, DeviceSet
from .options import parse_options
from .units import human_size, parse_size

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,89}")


def _check_id(id: str) -> None:
    if not isinstance(id, str) or not _ID_RE.fullmatch(id):
        raise UsageError(f"invalid layer id {id!r}")


class DeviceMapperDriver(NaiveDiffDriver):
    """Layers as thin snapshots in a device-mapper thin pool."""

    name = "devicemapper"

    def __init__(self, home: str, options: dict[str, str] | None = None, *, dm=None, ops=None):
        super().__init__(home, options)
        self.home = home = os.path.abspath(home)
        if dm is None:
            try:
                self.probe(home)
            except DriverNotSupported:
                try:
                    os.rmdir(home)  # made empty for us by the selector: leave no trace
                except OSError:
                    pass
                raise
        self.opts = parse_options(self.options)
        os.makedirs(home, mode=0o700, exist_ok=True)
        self.ds = DeviceSet(home, self.opts, dm=dm, ops=ops)
        self._refs: dict[str, int] = {}

    @staticmethod
    def probe(home: str) -> dict[str, str]:
        """Whether device-mapper is usable here (nothing is created)."""
        if not dmmod.available():
            raise DriverNotSupported("device-mapper is not available: no /dev/mapper/control")
        try:
            v = dmmod.DeviceMapper().version()
        except OSError as e:
            raise DriverNotSupported(f"device-mapper is not usable: {dmmod.CONTROL}: "
                                     f"{os.strerror(e.errno or 0)}") from None
        return {"version": "%d.%d.%d" % v}

    # -- paths ---------------------------------------------------------------------------
    def _mnt(self, id: str) -> str:
        return os.path.join(self.home, "mnt", id)

    # -- layers ----------------------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        self._create(id, parent, None)

    def _create(self, id: str, parent: str | None, size: int | None) -> None:
        _check_id(id)
        if parent is not None:
            _check_id(parent)
            if not self.ds.exists(parent):
                raise NotFoundError(f"parent layer {parent} does not exist")
        if self.ds.exists(id):
            raise ConflictError(f"layer {id} already exists")
        self.ds.create_snapshot(id, parent if parent is not None else BASE, size)

    def create_rw(self, id: str, parent: str | None, options: dict[str, str] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - {"size"})
        if unknown:
            raise UsageError(f"storage driver 'devicemapper' does not support the storage options "
                             f"{', '.join(unknown)} (supported: size)")
        size = self.opts.size
        if options.get("size"):
            try:
                size = parse_size(options["size"])
            except ValueError as e:
                raise UsageError(f"devicemapper: size: {e}") from None
        if size is not None:
            base = self.ds.meta(BASE)["size"]
            if size < base:
                raise UsageError(f"devicemapper: size {human_size(size)} is below the base device "
                                 f"size dm.basesize={human_size(base)}: a container cannot be "
                                 "smaller than its base")
        self._create(id, parent, size)

    def remove(self, id: str) -> None:
        _check_id(id)
        self._refs.pop(id, None)
        mp = self._mnt(id)
        self._release_mount(mp)
        if self.ds.exists(id):
            self.ds.delete_device(id)

    def exists(self, id: str) -> bool:
        _check_id(id)
        return self.ds.exists(id)

    def get(self, id: str) -> str:
        _check_id(id)
        mp = self._mnt(id)
        if self._refs.get(id):
            self._refs[id] += 1
            return os.path.join(mp, "rootfs")
        rec = self.ds.meta(id)
        if rec is None:
            raise NotFoundError(f"layer {id} does not exist")
        if not self.ds.ops.is_mountpoint(mp):
            dev = self.ds.activate(id, rec)
            os.makedirs(mp, mode=0o700, exist_ok=True)
            try:
                self.ds.ops.mount(dev, mp, self.ds.pool["fs"], self.opts.mountopt)
            except OSError as e:
                try:
                    self.ds.deactivate(id)
                except StorageError:
                    pass
                raise StorageError(f"devicemapper: mounting layer {id}: {e}") from None
        self._refs[id] = 1
        root = os.path.join(mp, "rootfs")
        if not os.path.isdir(root):
            os.mkdir(root, 0o755)
        return root

    def put(self, id: str) -> None:
        _check_id(id)
        n = self._refs.pop(id, 0)
        if n > 1:
            self._refs[id] = n - 1
            return
        self._release_mount(self._mnt(id))
        if self.ds.exists(id):
            self.ds.deactivate(id)

    def _release_mount(self, mp: str) -> None:
        """Unmount ``mp`` and remove the directory: removing a mount point also detaches
        the copies of the mount that leaked into other mount namespaces (containers
        started meanwhile), which would otherwise keep the device busy."""
        if self.ds.ops.is_mountpoint(mp):
            self._unmount(mp, lazy_ok=True)
        try:
            os.rmdir(mp)
        except OSError:
            pass

    def _unmount(self, mp: str, lazy_ok: bool) -> None:
        import time

        for attempt in range(20):
            try:
                self.ds.ops.umount(mp)
                return
            except OSError as e:
                if e.errno == errno.EINVAL:  # not mounted any more
                    return
                if e.errno != errno.EBUSY:
                    raise StorageError(f"devicemapper: {e}") from None
                time.sleep(0.05)
        if not lazy_ok:
            raise StorageError(f"devicemapper: umount {mp}: device or resource busy")
        # detach it; copies in other mount namespaces go with it when they are released,
        # and the device's removal is retried (or deferred)
        self.ds.ops.umount(mp, lazy=True)

    def cleanup(self) -> None:
        """Unmount every layer and deactivate every thin device (the pool stays up);
        retry deletions that were deferred."""
        self._refs.clear()
        mnt = os.path.join(self.home, "mnt")
        for n in sorted(os.listdir(mnt)):
            self._release_mount(os.path.join(mnt, n))
        self.ds.deactivate_all()
        if self.ds.deferred_deletions():
            self.ds.retry_deferred_deletions()

    def shutdown(self) -> None:
        """:meth:`cleanup`, then deactivate the pool (unless it is dm.thinpooldev); loop
        devices go with it.  The next command activates it again."""
        self.cleanup()
        self.ds.deactivate_pool()

    def supports_parallel_apply(self) -> bool:
        return False  # a layer is a snapshot of its parent's content

    # -- information --------------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        return self.ds.status()

    def metadata(self, id: str) -> dict[str, str]:
        _check_id(id)
        rec = self.ds.meta(id)
        if rec is None:
            raise NotFoundError(f"layer {id} does not exist")
        out = {"DeviceId": str(rec["device_id"]), "DeviceSize": str(rec["size"]),
               "DeviceName": self.ds.dev_name(id), "TransactionId": str(rec["transaction_id"])}
        mp = self._mnt(id)
        if self.ds.ops.is_mountpoint(mp):
            out["MergedDir"] = os.path.join(mp, "rootfs")
        return out
