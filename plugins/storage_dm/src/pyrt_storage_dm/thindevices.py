"""Thin devices: snapshots of the base device or of a parent layer, activated and
deactivated as layers are mounted, deleted (or their deletion deferred while busy)."""
from __future__ import annotations

import errno
import os

from pyrt_core.errors import ConflictError, NotFoundError, StorageError

from . import dm as dmmod
from . import metadata
from .metadata import BASE, SECTOR, read_json, write_json


class ThinDevices:
    """The devices of a :class:`DeviceSet` (a mixin: it needs the pool of
    :class:`pyrt_storage_dm.pool.ThinPool` and the metadata and transactions of
    :class:`pyrt_storage_dm.metadata.DeviceMetadata`)."""

    # -- devices -------------------------------------------------------------------------------
    def exists(self, hash: str) -> bool:
        return os.path.exists(self.meta_path(hash))

    def create_snapshot(self, hash: str, origin_hash: str, size: int | None = None) -> dict:
        with self._lock():
            if self.exists(hash):
                raise ConflictError(f"layer {hash} already exists")
            origin = self.meta(origin_hash)
            if origin is None:
                raise NotFoundError(f"parent layer {origin_hash} does not exist")
            self.check_free_space()
            origin["hash"] = origin_hash
            size = max(size or 0, origin["size"])
            rec = self._new_device(hash, origin, size, origin_hash if origin_hash != BASE else None)
        if size > origin["size"]:
            try:
                self._grow_fs(hash, rec)
            except BaseException:
                self.delete_device(hash)
                raise
        return rec

    def activate(self, hash: str, rec: dict | None = None) -> str:
        """The device node of ``hash``, activating the thin device when needed."""
        rec = rec or self.meta(hash)
        if rec is None:
            raise NotFoundError(f"layer {hash} does not exist")
        name = self.dev_name(hash)
        sectors = rec["size"] // SECTOR
        table = [(0, sectors, "thin", dmmod.thin_table(self.pool_dev(), rec["device_id"]))]
        info = self.dm.info(name)
        if info is not None:
            if info["flags"] & dmmod.DM_DEFERRED_REMOVE:
                self.dm.cancel_deferred_remove(name)
            if info["flags"] & dmmod.DM_ACTIVE_PRESENT_FLAG:
                live = self.dm.table(name)
                if not (live and live[0][1] == sectors and live[0][3] == table[0][3]):
                    self.dm.reload(name, table)
                return self.dm.node_for(name, info["dev"])
            self.dm.remove(name)
        try:
            dev = self.dm.create(name, table)
        except dmmod.DMError as e:
            raise StorageError(f"devicemapper: activating the device of layer {hash}: "
                               f"{e.strerror}") from None
        return self.dm.node_for(name, dev)

    def dev_path(self, hash: str) -> str | None:
        """The node of ``hash``'s active device, None when it is not active."""
        info = self.dm.info(self.dev_name(hash))
        return None if info is None else self.dm.node_for(self.dev_name(hash), info["dev"])

    def deactivate(self, hash: str) -> bool:
        """Remove the active device of ``hash``; True when gone, False when deferred."""
        try:
            return self.dm.remove(self.dev_name(hash), retries=metadata.REMOVE_RETRIES,
                                  deferred=self.opts.use_deferred_removal)
        except dmmod.DMError as e:
            if e.errno == errno.EBUSY:
                raise StorageError(
                    f"devicemapper: the device of layer {hash} is busy (device or resource busy: "
                    "still mounted, or a mount leaked into another mount namespace); "
                    "dm.use_deferred_removal=true removes it when it is released") from None
            raise StorageError(f"devicemapper: deactivating layer {hash}: {e.strerror}") from None

    def delete_device(self, hash: str) -> None:
        """Delete ``hash``'s thin device (discarding its blocks first with dm.blkdiscard)."""
        rec = self.meta(hash)
        if rec is None:
            return
        if self.opts.discard and rec.get("initialized"):
            try:
                self.ops.discard(self.activate(hash, rec))
            except (OSError, StorageError):
                pass  # discarding is an optimisation
        gone = self.deactivate(hash)
        with self._lock():
            rec = self.meta(hash)
            if rec is None:
                return
            tid = self._open_txn(hash, rec["device_id"])
            try:
                if not gone:
                    raise dmmod.DMError(errno.EBUSY, "busy")
                self.dm.message(self.pool_name, f"delete {rec['device_id']}")
            except dmmod.DMError as e:
                if e.errno == errno.EBUSY:
                    if self.opts.use_deferred_deletion:
                        write_json(self._path("deleted", str(rec["device_id"])),
                                    dict(rec, hash=hash, deleted=True))
                        self._drop_meta(hash)
                        self._abort_txn(tid)
                        return
                    self._abort_txn(tid)
                    raise StorageError(
                        f"devicemapper: cannot delete the device of layer {hash}: device or "
                        "resource busy (it is still open; dm.use_deferred_deletion=true deletes "
                        "it later)") from None
                if e.errno != errno.ENODATA:
                    self._abort_txn(tid)
                    raise StorageError(f"devicemapper: deleting the device of layer {hash}: "
                                       f"{e.strerror}") from None
            self._drop_meta(hash)
            self._close_txn(tid)

    def deferred_deletions(self) -> list[str]:
        return sorted(n for n in os.listdir(self._path("deleted")) if not n.startswith("."))

    def retry_deferred_deletions(self) -> int:
        """Delete devices whose deletion was deferred; return how many are still pending."""
        pending = 0
        with self._lock():
            for n in self.deferred_deletions():
                rec = read_json(self._path("deleted", n))
                if rec is None:
                    continue
                name = self.dev_name(rec.get("hash", ""))
                info = self.dm.info(name)
                if info is not None and (info["open_count"] > 0 or
                                         info["flags"] & dmmod.DM_DEFERRED_REMOVE):
                    pending += 1
                    continue
                if info is not None:
                    # the hash may be in use again by a new device: only remove ours
                    live = self.dm.table(name)
                    if live and live[0][3].split()[-1] == str(rec["device_id"]):
                        self.dm.remove(name)
                tid = self._open_txn(f".deleted-{n}", rec["device_id"])
                try:
                    self.dm.message(self.pool_name, f"delete {rec['device_id']}")
                except dmmod.DMError as e:
                    if e.errno == errno.EBUSY:
                        self._abort_txn(tid)
                        pending += 1
                        continue
                    if e.errno != errno.ENODATA:
                        self._abort_txn(tid)
                        raise StorageError(f"devicemapper: deferred deletion of device "
                                           f"{rec['device_id']}: {e.strerror}") from None
                os.unlink(self._path("deleted", n))
                self._close_txn(tid)
        return pending
