"""The thin pool: made over loop files or given devices (or taken, dm.thinpooldev),
activated, adopted after a crash, checked for free space, reported and deactivated."""
from __future__ import annotations

import os

from pyrt_core.errors import StorageError, UsageError

from . import dm as dmmod
from . import metadata
from .metadata import BASE, LOW_WATER_BLOCKS, META_BLOCK, SECTOR, write_json
from .options import POOL_OPTIONS
from .units import human_size


class ThinPool:
    """The pool side of a :class:`DeviceSet` (a mixin: it needs ``opts``, ``dm``, ``ops``,
    ``pool``, ``pool_name`` and ``prefix``, and the files of
    :class:`pyrt_storage_dm.metadata.DeviceMetadata`)."""

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
        write_json(self._path("pool.json"), pool)

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
            self.dm.remove(self.pool_name, retries=metadata.REMOVE_RETRIES)

    def our_active_devices(self) -> list[str]:
        pre = self.prefix + "-"
        return sorted(n for n, _ in self.dm.list() if n.startswith(pre) and n != self.pool_name)

    def deactivate_all(self) -> None:
        for name in self.our_active_devices():
            self.dm.remove(name, retries=metadata.REMOVE_RETRIES, deferred=self.opts.use_deferred_removal)

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
