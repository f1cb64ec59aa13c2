"""The base device: the empty filesystem of dm.basesize every layer without a parent
snapshots, its UUID check (a store must find its own filesystem in the pool) and the
growing of a device's filesystem when dm.basesize or a layer's size grows."""
from __future__ import annotations

import errno
import os

from pyrt_core.errors import StorageError, UsageError

from . import dm as dmmod
from .metadata import BASE, write_json
from .units import human_size


class BaseDevice:
    """The base device of a :class:`DeviceSet` (a mixin over
    :class:`pyrt_storage_dm.thindevices.ThinDevices` and the pool and metadata mixins)."""

    # -- the base device ------------------------------------------------------------------------
    def _setup_base(self, old: dict | None) -> None:
        if old is not None:  # a crash while it was being made: start again
            self.deactivate(BASE)
            tid = self._open_txn(BASE, old["device_id"])
            try:
                self.dm.message(self.pool_name, f"delete {old['device_id']}")
            except dmmod.DMError as e:
                if e.errno != errno.ENODATA:
                    raise StorageError(f"devicemapper: deleting a half-made base device: "
                                       f"{e.strerror}") from None
            self._drop_meta(BASE)
            self._close_txn(tid)
        self.check_free_space()
        rec = self._new_device(BASE, None, self.opts.basesize, None)
        dev = self.activate(BASE, rec)
        mp = self._path("mnt", BASE)
        try:
            self.ops.mkfs(self.pool["fs"], dev, self.pool.get("mkfsarg", ""))
            os.makedirs(mp, exist_ok=True)
            self.ops.mount(dev, mp, self.pool["fs"], self.opts.mountopt)
            try:
                os.mkdir(os.path.join(mp, "rootfs"), 0o755)
                os.chmod(os.path.join(mp, "rootfs"), 0o755)
            finally:
                self.ops.umount(mp)
            uuid = self.ops.read_uuid(self.pool["fs"], dev)
        except OSError as e:
            raise StorageError(f"devicemapper: making the base device's filesystem: {e}") from None
        finally:
            self.deactivate(BASE)
        rec["initialized"] = True
        rec["uuid"] = uuid
        self._save_meta(BASE, rec)
        self.pool["base_uuid"] = uuid
        write_json(self._path("pool.json"), self.pool)

    def verify_base_uuid(self) -> None:
        """Refuse a base device whose filesystem is not the one this store made."""
        want = self.pool.get("base_uuid")
        if not want:
            return
        rec = self.meta(BASE)
        dev = self.activate(BASE, rec)
        try:
            found = self.ops.read_uuid(self.pool["fs"], dev)
        finally:
            self.deactivate(BASE)
        if found != want:
            raise StorageError(
                f"devicemapper: base device UUID verification failed: this store's base "
                f"filesystem has UUID {want}, but the base device in thin pool {self.pool_name} "
                f"has {found or 'no ' + self.pool['fs'] + ' filesystem'}; a different pool or "
                f"data file is attached (restore the original files, or use another --root)")

    def _grow_base(self, base: dict) -> None:
        new = self.opts.basesize
        if new < base["size"]:
            raise UsageError(f"devicemapper: dm.basesize={human_size(new)} is smaller than the "
                             f"base device ({human_size(base['size'])}): it can only grow")
        if new == base["size"]:
            return
        grown = dict(base, size=new)
        self._grow_fs(BASE, grown)

    def _grow_fs(self, hash: str, rec: dict) -> None:
        """Give ``hash``'s thin device ``rec['size']`` and grow its filesystem to it."""
        dev = self.activate(hash, rec)
        mp = self._path("mnt", hash)
        os.makedirs(mp, exist_ok=True)
        mounted_here = not self.ops.is_mountpoint(mp)
        try:
            if mounted_here:
                self.ops.mount(dev, mp, self.pool["fs"], self.opts.mountopt)
            try:
                self.ops.grow(self.pool["fs"], dev, mp)
            finally:
                if mounted_here:
                    self.ops.umount(mp)
        except OSError as e:
            raise StorageError(f"devicemapper: growing the filesystem of {hash} to "
                               f"{human_size(rec['size'])}: {e}") from None
        finally:
            if mounted_here:
                self.deactivate(hash)
        self._save_meta(hash, rec)
