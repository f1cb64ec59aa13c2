"""The files that describe the thin devices, and the transactions that change them.

Device metadata lives in ``metadata/<hash>`` and the open transaction in
``transaction.json`` (see :mod:`pyrt_storage_dm.deviceset` for the whole layout).
Every change of the pool is a transaction: the intent is written before the pool
message, the device's metadata after it, and ``set_transaction_id old new`` closes it;
:meth:`DeviceMetadata.recover` rolls back one left open by a crash.  The constants
shared by the pool, the devices and the base device are here too.
"""
from __future__ import annotations

import errno
import json
import os

from pyrt_core.errors import StorageError

from . import dm as dmmod

BASE = "_base"
SECTOR = 512
META_BLOCK = 4096
LOW_WATER_BLOCKS = 32768 // 4  # in data blocks; the pool raises an event below this
MAX_DEVICE_ID = (1 << 24) - 1
REMOVE_RETRIES = 50  # x 100 ms while a device is busy


def write_json(path: str, obj) -> None:
    from pyrt_core.api import atomic_write

    atomic_write(path, json.dumps(obj, sort_keys=True) + "\n", 0o600)


def read_json(path: str):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise StorageError(f"devicemapper: {path} is corrupt (not JSON)") from None


class DeviceMetadata:
    """Paths, the lock, device metadata and transactions of a :class:`DeviceSet` (a mixin:
    it needs ``home``, ``dm``, ``prefix`` and ``pool_name``, and ``pool_status`` from
    :class:`pyrt_storage_dm.pool.ThinPool`)."""

    def _path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)

    def _lock(self):
        from pyrt_core.api import FileLock

        return FileLock(self._path(".dm.lock"))

    def meta_path(self, hash: str) -> str:
        return self._path("metadata", hash)

    def meta(self, hash: str) -> dict | None:
        return read_json(self.meta_path(hash))

    def _save_meta(self, hash: str, rec: dict) -> None:
        write_json(self.meta_path(hash), rec)

    def _drop_meta(self, hash: str) -> None:
        try:
            os.unlink(self.meta_path(hash))
        except FileNotFoundError:
            pass

    def hashes(self) -> list[str]:
        """Every device hash with metadata (dot-files, i.e. temp files, ignored)."""
        return sorted(n for n in os.listdir(self._path("metadata")) if not n.startswith("."))

    def txn_state(self) -> dict:
        st = read_json(self._path("transaction.json"))
        return st or {"open_transaction_id": 0, "device_hash": "", "device_id": 0,
                      "next_device_id": 1}

    def _write_txn(self, st: dict) -> None:
        write_json(self._path("transaction.json"), st)

    def dev_name(self, hash: str) -> str:
        return f"{self.prefix}-{hash}"

    # -- transactions ------------------------------------------------------------------------
    def _open_txn(self, hash: str, device_id: int) -> int:
        """Record the intent; return the pool's current transaction id."""
        tid = self.pool_status()["transaction_id"]
        st = self.txn_state()
        nxt = max(st.get("next_device_id", 1), device_id + 1)
        if nxt > MAX_DEVICE_ID:
            nxt = 1
        self._write_txn({"open_transaction_id": tid + 1, "device_hash": hash,
                         "device_id": device_id, "next_device_id": nxt})
        return tid

    def _close_txn(self, tid: int) -> None:
        self.dm.message(self.pool_name, f"set_transaction_id {tid} {tid + 1}")

    def _abort_txn(self, tid: int) -> None:
        st = self.txn_state()
        st["open_transaction_id"] = tid
        self._write_txn(st)

    def recover(self) -> bool:
        """Roll back an open transaction left by a crash (delete its device, drop its
        metadata).  Returns whether one was rolled back."""
        with self._lock():
            st = self.txn_state()
            tid = self.pool_status()["transaction_id"]
            if st["open_transaction_id"] <= tid:
                return False
            hash, device_id = st["device_hash"], st["device_id"]
            # a crash during create_snap can leave the origin suspended
            for name in self.our_active_devices():
                info = self.dm.info(name)
                if info is not None and info["flags"] & dmmod.DM_SUSPEND_FLAG:
                    self.dm.resume(name)
            claimed = any((self.meta(h) or {}).get("device_id") == device_id
                          for h in self.hashes() if h != hash)
            claimed = claimed or os.path.exists(self._path("deleted", str(device_id)))
            if not claimed:
                self.dm.remove(self.dev_name(hash), retries=REMOVE_RETRIES)
                try:
                    self.dm.message(self.pool_name, f"delete {device_id}")
                except dmmod.DMError as e:
                    if e.errno not in (errno.ENODATA, errno.ENOENT, errno.EINVAL):
                        raise StorageError(f"devicemapper: rolling back transaction "
                                           f"{st['open_transaction_id']}: {e.strerror}") from None
            rec = self.meta(hash)
            if rec is not None and rec.get("device_id") == device_id:
                self._drop_meta(hash)
            self._abort_txn(tid)
            return True

    def _next_id(self) -> int:
        return self.txn_state().get("next_device_id", 1)

    def _new_device(self, hash: str, origin: dict | None, size: int, parent: str | None) -> dict:
        """create_thin (origin None) or create_snap of ``origin``, as one transaction."""
        device_id = self._next_id()
        for _ in range(1000):
            tid = self._open_txn(hash, device_id)
            if origin is None:
                msg = f"create_thin {device_id}"
                try:
                    self.dm.message(self.pool_name, msg)
                except dmmod.DMError as e:
                    if e.errno == errno.EEXIST:
                        device_id = device_id + 1 if device_id < MAX_DEVICE_ID else 1
                        continue
                    self._abort_txn(tid)
                    raise StorageError(f"devicemapper: {msg}: {e.strerror}") from None
            else:
                origin_name = self.dev_name(origin["hash"])
                oinfo = self.dm.info(origin_name)
                suspended = False
                msg = f"create_snap {device_id} {origin['device_id']}"
                try:
                    if oinfo is not None and oinfo["flags"] & dmmod.DM_ACTIVE_PRESENT_FLAG \
                            and not oinfo["flags"] & dmmod.DM_SUSPEND_FLAG:
                        self.dm.suspend(origin_name)  # flushes and freezes its filesystem
                        suspended = True
                    self.dm.message(self.pool_name, msg)
                except dmmod.DMError as e:
                    if e.errno == errno.EEXIST:
                        device_id = device_id + 1 if device_id < MAX_DEVICE_ID else 1
                        continue
                    self._abort_txn(tid)
                    raise StorageError(f"devicemapper: {msg}: {e.strerror}") from None
                finally:
                    if suspended:
                        self.dm.resume(origin_name)
            rec = {"device_id": device_id, "size": size, "transaction_id": tid + 1,
                   "initialized": origin is not None, "parent": parent}
            self._save_meta(hash, rec)
            self._close_txn(tid)
            return rec
        raise StorageError("devicemapper: no free device id in the thin pool")
