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
"""
from __future__ import annotations

import errno
import json
import os
import time

from pyrt_core.errors import ConflictError, NotFoundError, StorageError, UsageError

from . import dm as dmmod
from . import fs as fsmod
from . import loop as loopmod
from .options import POOL_OPTIONS, Options
from .units import human_size



BASE = "_base"
SECTOR = 512
META_BLOCK = 4096
LOW_WATER_BLOCKS = 32768 // 4  # in data blocks; the pool raises an event below this
MAX_DEVICE_ID = (1 << 24) - 1
REMOVE_RETRIES = 50  # x 100 ms while a device is busy


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


def _write_json(path: str, obj) -> None:
    from pyrt_core.api import atomic_write

    atomic_write(path, json.dumps(obj, sort_keys=True) + "\n", 0o600)


def _read_json(path: str):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise StorageError(f"devicemapper: {path} is corrupt (not JSON)") from None


class DeviceSet:
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
        self.pool = _read_json(self._path("pool.json"))
        if self.pool is None:
            with self._lock():
                self.pool = _read_json(self._path("pool.json"))
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

    # -- files -------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)

    def _lock(self):
        from pyrt_core.api import FileLock

        return FileLock(self._path(".dm.lock"))

    def meta_path(self, hash: str) -> str:
        return self._path("metadata", hash)

    def meta(self, hash: str) -> dict | None:
        return _read_json(self.meta_path(hash))

    def _save_meta(self, hash: str, rec: dict) -> None:
        _write_json(self.meta_path(hash), rec)

    def _drop_meta(self, hash: str) -> None:
        try:
            os.unlink(self.meta_path(hash))
        except FileNotFoundError:
            pass

    def hashes(self) -> list[str]:
        """Every device hash with metadata (dot-files, i.e. temp files, ignored)."""
        return sorted(n for n in os.listdir(self._path("metadata")) if not n.startswith("."))

    def txn_state(self) -> dict:
        st = _read_json(self._path("transaction.json"))
        return st or {"open_transaction_id": 0, "device_hash": "", "device_id": 0,
                      "next_device_id": 1}

    def _write_txn(self, st: dict) -> None:
        _write_json(self._path("transaction.json"), st)

    def dev_name(self, hash: str) -> str:
        return f"{self.prefix}-{hash}"

    # -- the pool ----------------------------------------------------------------------------
    def _pool_devices(self) -> tuple[str, str]:
        """(metadata device, data device) paths of a pool we make (attaching loop files)."""
        if self.pool.get("data_dev"):
            return self.pool["metadata_dev"], self.pool["data_dev"]
        return self.pool["metadata_file"], self.pool["data_file"]

    def _check_pool_options(self) -> None:
        """Options that made the pool must not change later."""
        o, p = self.opts, self.pool
        recorded = {"fs": p.get("fs"), "blocksize": p.get("blocksize"),
                    "datadev": p.get("data_dev"), "metadatadev": p.get("metadata_dev"),
                    "thinpooldev": p.get("pool_name") if p.get("external") else None,
                    "loopdatasize": p.get("loopdatasize"), "loopmetadatasize": p.get("loopmetadatasize")}
        for key in POOL_OPTIONS:
            if key in o.given and getattr(o, key) != recorded.get(key):
                raise UsageError(
                    f"devicemapper: dm.{key}={getattr(o, key)} differs from the pool this store "
                    f"was made with ({recorded.get(key)}); it cannot change (use another --root)")

    def _setup_pool(self) -> None:
        """A new store: make (or take) the pool, then the base device."""
        o = self.opts
        missing = self.ops.missing_tools(o.fs)
        if missing:
            from pyrt_core.errors import DriverPrerequisitesMissing

            raise DriverPrerequisitesMissing(f"devicemapper: {', '.join(missing)} not found")
        pool = {"version": 1, "fs": o.fs, "blocksize": o.blocksize, "mkfsarg": o.mkfsarg,
                "base_uuid": None, "external": bool(o.thinpooldev)}
        if o.thinpooldev:
            pool["pool_name"] = o.thinpooldev
            info = self.dm.info(o.thinpooldev)
            if info is None:
                raise StorageError(f"devicemapper: dm.thinpooldev {o.thinpooldev}: no such "
                                   "device-mapper device")
            status = self._status_of(o.thinpooldev)
            if status["transaction_id"] != 0:
                raise StorageError(
                    f"devicemapper: dm.thinpooldev {o.thinpooldev} is not empty (transaction id "
                    f"{status['transaction_id']}, expected 0): give an unused thin pool")
            pool["blocksize"] = self._pool_table_of(o.thinpooldev)["block_sectors"] * SECTOR
        else:
            pool["pool_name"] = f"{self.prefix}-pool"
            if o.datadev:
                for dev in (o.datadev, o.metadatadev):
                    try:
                        self.ops.dev_numbers(dev)
                    except OSError as e:
                        raise UsageError(f"devicemapper: {dev}: not a block device "
                                         f"({e.strerror})") from None
                pool["data_dev"], pool["metadata_dev"] = o.datadev, o.metadatadev
                # a new pool on a metadata device: the kernel formats metadata that starts
                # with zeros; stale metadata would be taken for a pool
                self.ops.zero_head(o.metadatadev, META_BLOCK)
            else:
                d = self._path("devicemapper")
                os.makedirs(d, mode=0o700, exist_ok=True)
                pool["data_file"], pool["metadata_file"] = os.path.join(d, "data"), os.path.join(d, "metadata")
                pool["loopdatasize"], pool["loopmetadatasize"] = o.loopdatasize, o.loopmetadatasize
                self.ops.create_sparse(pool["data_file"], o.loopdatasize)
                self.ops.create_sparse(pool["metadata_file"], o.loopmetadatasize)
        self.pool = pool
        _write_json(self._path("pool.json"), pool)

    def _status_of(self, name: str) -> dict:
        for _s, _l, ttype, params in self.dm.table(name, status=True):
            if ttype == "thin-pool":
                return dmmod.parse_pool_status(params)
        raise StorageError(f"devicemapper: {name} is not a thin pool")

    def _pool_table_of(self, name: str) -> dict:
        for _s, _l, ttype, params in self.dm.table(name):
            if ttype == "thin-pool":
                return dmmod.parse_pool_table(params)
        raise StorageError(f"devicemapper: {name} is not a thin pool")

    def pool_status(self) -> dict:
        try:
            st = self._status_of(self.pool_name)
        except dmmod.DMError as e:
            raise StorageError(f"devicemapper: thin pool {self.pool_name}: {e.strerror}") from None
        if st["failed"]:
            raise StorageError(f"devicemapper: thin pool {self.pool_name} has failed (its metadata "
                               "may be damaged: deactivate it and run thin_check)")
        return st

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

    def _activate_pool(self, exists: bool) -> None:
        """Make the pool device over our metadata and data (fresh loop devices for loop
        files: a loop device still attached to a file while no pool is active is one in
        its autoclear rundown after the previous pool released it, or someone else's;
        adopting it raced with its teardown: the pool's table was refused, or the pool's
        I/O failed).  Two loop devices over one file share its page cache."""
        meta_src, data_src = self._pool_devices()
        fds = []
        try:
            if self.pool.get("data_dev"):
                meta_dev, data_dev = meta_src, data_src
            else:
                meta_dev, fd = self.ops.attach(meta_src)
                fds.append(fd)
                data_dev, fd = self.ops.attach(data_src)
                fds.append(fd)
            block_sectors = self.pool["blocksize"] // SECTOR
            data_sectors = self.ops.device_size(data_dev) // SECTOR // block_sectors * block_sectors
            params = dmmod.pool_table(data_sectors, self.ops.dev_numbers(meta_dev),
                                      self.ops.dev_numbers(data_dev), block_sectors,
                                      LOW_WATER_BLOCKS, ["skip_block_zeroing", "error_if_no_space"])
            if exists:  # a device without a table (a crash between create and load)
                self.dm.remove(self.pool_name)
            try:
                self.dm.create(self.pool_name, [(0, data_sectors, "thin-pool", params)])
            except dmmod.DMError as e:
                raise StorageError(
                    f"devicemapper: cannot create thin pool {self.pool_name} over {meta_dev} "
                    f"(metadata) and {data_dev} (data): {e.strerror} (is dm-thin-pool loaded? "
                    "modprobe dm-thin-pool; damaged metadata: thin_check)") from None
        finally:
            for fd in fds:  # autoclear: the pool now holds the loop devices
                self.ops.close(fd)

    def _check_adopted(self) -> None:
        """An active pool of our name must sit on our devices (a pool left by a crashed run
        is adopted only when its table's devices are the ones backing our files)."""
        table = self._pool_table_of(self.pool_name)
        meta_src, data_src = self._pool_devices()
        ok = True
        for src, used in ((meta_src, table["metadata_dev"]), (data_src, table["data_dev"])):
            devs = [src] if self.pool.get("data_dev") else self.ops.backing_devices(src)
            ok = ok and used in [self.ops.dev_numbers(d) for d in devs]
        if not ok:
            raise StorageError(
                f"devicemapper: a thin pool named {self.pool_name} is active but is not backed by "
                f"this store's devices (its table uses {table['metadata_dev']} and "
                f"{table['data_dev']}); remove it (dmsetup remove {self.pool_name}) or use another --root")

    def pool_dev(self) -> str:
        """``major:minor`` of the pool, for thin tables."""
        if self._pool_dev is None:
            info = self.dm.info(self.pool_name)
            if info is None:
                raise StorageError(f"devicemapper: thin pool {self.pool_name} is not active")
            self._pool_dev = "%d:%d" % dmmod.decode_dev(info["dev"])
        return self._pool_dev

    def deactivate_pool(self) -> None:
        """Deactivate every device of ours and the pool (unless dm.thinpooldev)."""
        self.deactivate_all()
        if not self.pool.get("external"):
            self.dm.remove(self.pool_name, retries=REMOVE_RETRIES)

    def our_active_devices(self) -> list[str]:
        pre = self.prefix + "-"
        return sorted(n for n, _ in self.dm.list() if n.startswith(pre) and n != self.pool_name)

    def deactivate_all(self) -> None:
        for name in self.our_active_devices():
            self.dm.remove(name, retries=REMOVE_RETRIES, deferred=self.opts.use_deferred_removal)

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

    # -- free space --------------------------------------------------------------------------
    def check_free_space(self) -> None:
        st = self.pool_status()
        minimum = self.opts.min_free_space
        if st["mode"] != "rw":
            raise StorageError(f"devicemapper: thin pool {self.pool_name} is {st['mode']}: "
                               "refusing to create a new device (free space by removing "
                               "containers and images)")
        if not minimum:
            return
        block = self.pool["blocksize"]
        for what, used, total, unit in (("data", st["data_used"], st["data_total"], block),
                                        ("metadata", st["metadata_used"], st["metadata_total"],
                                         META_BLOCK)):
            free = total - used
            if total and free * 100 < minimum * total:
                raise StorageError(
                    f"devicemapper: thin pool {self.pool_name} has {free * 100 / total:.1f}% free "
                    f"{what} space ({human_size(free * unit)} of {human_size(total * unit)}), "
                    f"below dm.min_free_space={minimum}%: refusing to create a new device "
                    "(remove unused containers and images, or make the pool bigger)")

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
            return self.dm.remove(self.dev_name(hash), retries=REMOVE_RETRIES,
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
                        _write_json(self._path("deleted", str(rec["device_id"])),
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
                rec = _read_json(self._path("deleted", n))
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
        _write_json(self._path("pool.json"), self.pool)

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

    # -- information ---------------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        st = self.pool_status()
        block = self.pool["blocksize"]
        du, dt = st["data_used"] * block, st["data_total"] * block
        mu, mt = st["metadata_used"] * META_BLOCK, st["metadata_total"] * META_BLOCK
        base = self.meta(BASE) or {}
        out = [("Pool Name", self.pool_name),
               ("Pool Blocksize", human_size(block)),
               ("Base Device Size", human_size(base.get("size", 0))),
               ("Backing Filesystem", self.pool["fs"])]
        if self.pool.get("data_file"):
            out += [("Data file", self.pool["data_file"]),
                    ("Metadata file", self.pool["metadata_file"])]
            for key, path in (("Data loop device", self.pool["data_file"]),
                              ("Metadata loop device", self.pool["metadata_file"])):
                out.append((key, self.ops.find_backing(path) or "-"))
        elif self.pool.get("data_dev"):
            out += [("Data device", self.pool["data_dev"]),
                    ("Metadata device", self.pool["metadata_dev"])]
        else:
            out.append(("Thin pool device (dm.thinpooldev)", self.pool_name))
        out += [("Data Space Used", human_size(du)), ("Data Space Total", human_size(dt)),
                ("Data Space Available", human_size(dt - du)),
                ("Metadata Space Used", human_size(mu)), ("Metadata Space Total", human_size(mt)),
                ("Metadata Space Available", human_size(mt - mu)),
                ("Thin Pool Minimum Free Space", f"{self.opts.min_free_space}%"),
                ("Transaction ID", str(st["transaction_id"])),
                ("Pool Mode", st["mode"]),
                ("Discard (dm.blkdiscard)", "true" if self.opts.discard else "false"),
                ("Deferred Removal Enabled", str(self.opts.use_deferred_removal).lower()),
                ("Deferred Deletion Enabled", str(self.opts.use_deferred_deletion).lower()),
                ("Deferred Deleted Device Count", str(len(self.deferred_deletions()))),
                ("Thin Devices", str(len([h for h in self.hashes() if h != BASE])))]
        try:
            out.append(("Device-mapper Driver Version", "%d.%d.%d" % self.dm.version()))
        except OSError:
            pass
        return out
