"""The thin pool and its devices: ids, transactions, metadata, recovery.

Files under the driver's home::

    pool.json              how the pool was made (devices or loop files, block size,
                           filesystem, the base filesystem's UUID)
    transaction.json       {open_transaction_id, device_hash, device_id, next_device_id}
    metadata/<hash>        one device: {device_id, size, transaction_id, initialized, parent}
    deleted/<device id>    a device whose deletion was deferred (it was busy)
    devicemapper/data      the sparse loop files (unless dm.datadev / dm.thinpooldev)
    devicemapper/metadata
    mnt/<hash>             mount points (the layer is ``mnt/<hash>/rootfs``)
    .dm.lock               flock guarding pool changes and recovery

Every change of the pool is a transaction, as docker does it: the intent
``{open_transaction_id = pool's + 1, device_hash, device_id}`` is written
(atomically: temp file, fsync, rename) before the pool message, the device's
metadata after it, and ``set_transaction_id old new`` closes it.  At start,
an open transaction newer than the pool's transaction id is rolled back:
its device is deleted from the pool and its metadata dropped.  Metadata
files are written the same atomic way and dot-files (temp files) are
ignored.

The base device (hash ``_base``) holds an empty filesystem of
``dm.basesize``; every layer without a parent is a snapshot of it, every
other layer and container a snapshot of its parent.

The work is shared by mixins, one module per concern: :mod:`.metadata` (the
files, device metadata and transactions), :mod:`.pool` (the thin pool over loop
files or devices), :mod:`.thindevices` (snapshots, activation, deletion) and
:mod:`.basedevice` (the base filesystem); :mod:`.hostops` is what they do to the
host besides device-mapper.
"""
from __future__ import annotations

import os

from pyrt_core.errors import StorageError

from . import dm as dmmod
from .basedevice import BaseDevice
from .hostops import HostOps
from .metadata import BASE, DeviceMetadata, read_json
from .options import Options
from .pool import ThinPool
from .thindevices import ThinDevices

__all__ = ["BASE", "DeviceSet", "HostOps"]


class DeviceSet(ThinPool, ThinDevices, BaseDevice, DeviceMetadata):
    """One store's thin pool and thin devices."""

    def __init__(self, home: str, opts: Options, dm=None, ops=None):
        self.home = home
        self.opts = opts
        self.dm = dm if dm is not None else dmmod.DeviceMapper()
        self.ops = ops if ops is not None else HostOps()
        st = os.stat(home)
        self.prefix = f"pyrt-{os.major(st.st_dev)}:{os.minor(st.st_dev)}-{st.st_ino}"
        self._pool_dev: str | None = None
        for d in ("metadata", "deleted", "mnt"):
            os.makedirs(os.path.join(home, d), mode=0o700, exist_ok=True)
        self.pool = read_json(self._path("pool.json"))
        if self.pool is None:
            with self._lock():
                self.pool = read_json(self._path("pool.json"))
                if self.pool is None:
                    self._setup_pool()
        else:
            self._check_pool_options()
        self.pool_name = self.pool["pool_name"]
        self._activated_here = False
        try:
            self._start()
        except BaseException:
            if self._activated_here:  # leave no half-started pool behind
                try:
                    self.deactivate_pool()
                except Exception:
                    pass
            raise

    def _start(self) -> None:
        """Make sure the pool is active (adopting one left behind), roll back an open
        transaction, check the base device.  Cheap when the pool is already up."""
        info = self.dm.info(self.pool_name)
        fresh = False
        if info is None or not info["flags"] & dmmod.DM_ACTIVE_PRESENT_FLAG:
            if self.pool.get("external"):
                raise StorageError(f"devicemapper: the thin pool {self.pool_name} (dm.thinpooldev) "
                                   "is not active")
            with self._lock():
                info = self.dm.info(self.pool_name)
                if info is None or not info["flags"] & dmmod.DM_ACTIVE_PRESENT_FLAG:
                    self._activate_pool(info is not None)
                    fresh = self._activated_here = True
        elif not self.pool.get("external"):
            self._check_adopted()
        self._pool_dev = None
        st = self.pool_status()
        if self.txn_state()["open_transaction_id"] > st["transaction_id"]:
            self.recover()
        base = self.meta(BASE)
        if base is None or not base.get("initialized"):
            with self._lock():
                base = self.meta(BASE)
                if base is None or not base.get("initialized"):
                    self._setup_base(base)
                    fresh = False
        elif "basesize" in self.opts.given and self.opts.basesize != base["size"]:
            with self._lock():
                self._grow_base(self.meta(BASE))
        if fresh:
            self.verify_base_uuid()
        if os.listdir(self._path("deleted")):
            self.retry_deferred_deletions()
