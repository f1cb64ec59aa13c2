"""The driver's options (``--storage-opt dm.<name>=<value>``), with docker's defaults."""
from __future__ import annotations

import re

import attrs

from pyrt_core.errors import UsageError

from .units import parse_bool, parse_percent, parse_size

KNOWN = ("loopdatasize", "loopmetadatasize", "basesize", "datadev", "metadatadev", "thinpooldev",
         "fs", "mkfsarg", "mountopt", "blocksize", "blkdiscard", "min_free_space",
         "use_deferred_removal", "use_deferred_deletion", "size")
#: options fixed when the pool is made; given again later they must agree
POOL_OPTIONS = ("loopdatasize", "loopmetadatasize", "datadev", "metadatadev", "thinpooldev", "fs",
                "blocksize")
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
_POOL_NAME_RE = re.compile(r"[A-Za-z0-9_.:+-]{1,127}")


@attrs.define
class Options:
    loopdatasize: int = 100 * GiB
    loopmetadatasize: int = 2 * GiB
    basesize: int = 10 * GiB
    datadev: str | None = None
    metadatadev: str | None = None
    thinpooldev: str | None = None
    fs: str = "ext4"
    mkfsarg: str = ""
    mountopt: str = ""
    blocksize: int = 64 * KiB
    blkdiscard: bool | None = None  # None: on for loop files, off for block devices
    min_free_space: int = 10
    use_deferred_removal: bool = False
    use_deferred_deletion: bool = False
    size: int | None = None  # every container's default size
    given: frozenset = frozenset()

    @property
    def loop_backed(self) -> bool:
        return not (self.datadev or self.thinpooldev)

    @property
    def discard(self) -> bool:
        return self.loop_backed if self.blkdiscard is None else self.blkdiscard


def _size(key: str, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as e:
        raise UsageError(f"devicemapper: dm.{key}: {e}") from None


def parse_options(raw: dict[str, str]) -> Options:
    """Options from the driver's option dict (``dm.`` already stripped); UsageError when wrong."""
    unknown = sorted(set(raw) - set(KNOWN))
    if unknown:
        raise UsageError(f"storage driver 'devicemapper' does not know the options "
                         f"{', '.join('dm.' + k for k in unknown)} (known: "
                         f"{', '.join('dm.' + k for k in KNOWN if k != 'size')}, size)")
    o = Options(given=frozenset(raw))
    for key in ("loopdatasize", "loopmetadatasize", "basesize", "blocksize"):
        if key in raw:
            setattr(o, key, _size(key, raw[key]))
    if "size" in raw and raw["size"]:
        o.size = _size("size", raw["size"])
    for key in ("datadev", "metadatadev"):
        if raw.get(key):
            if not raw[key].startswith("/"):
                raise UsageError(f"devicemapper: dm.{key} must be the path of a block device, "
                                 f"got {raw[key]!r}")
            setattr(o, key, raw[key])
    if raw.get("thinpooldev"):
        name = raw["thinpooldev"]
        if name.startswith("/dev/mapper/"):
            name = name[len("/dev/mapper/"):]
        if not _POOL_NAME_RE.fullmatch(name):
            raise UsageError(f"devicemapper: dm.thinpooldev: invalid pool name {raw['thinpooldev']!r}")
        o.thinpooldev = name
    if bool(o.datadev) != bool(o.metadatadev):
        raise UsageError("devicemapper: dm.datadev and dm.metadatadev must be given together")
    if o.thinpooldev and o.datadev:
        raise UsageError("devicemapper: dm.thinpooldev cannot be combined with dm.datadev/dm.metadatadev")
    if "fs" in raw:
        if raw["fs"] not in ("ext4", "xfs"):
            raise UsageError(f"devicemapper: dm.fs must be ext4 or xfs, got {raw['fs']!r}")
        o.fs = raw["fs"]
    o.mkfsarg = raw.get("mkfsarg", "")
    o.mountopt = raw.get("mountopt", "")
    if o.blocksize % (64 * KiB) or not (64 * KiB <= o.blocksize <= GiB):
        raise UsageError(f"devicemapper: dm.blocksize must be a multiple of 64K between 64K "
                         f"and 1G, got {raw.get('blocksize')}")
    if "blkdiscard" in raw:
        o.blkdiscard = _bool("blkdiscard", raw["blkdiscard"])
    for key in ("use_deferred_removal", "use_deferred_deletion"):
        if key in raw:
            setattr(o, key, _bool(key, raw[key]))
    if "min_free_space" in raw:
        try:
            o.min_free_space = parse_percent(raw["min_free_space"])
        except ValueError as e:
            raise UsageError(f"devicemapper: dm.min_free_space: {e}") from None
    if o.basesize < 16 * MiB:
        raise UsageError(f"devicemapper: dm.basesize must be at least 16M, got {raw.get('basesize')}")
    if o.loopmetadatasize < 2 * MiB or o.loopdatasize < o.blocksize * 16:
        raise UsageError("devicemapper: dm.loopdatasize / dm.loopmetadatasize are too small")
    return o


def _bool(key: str, value: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError as e:
        raise UsageError(f"devicemapper: dm.{key}: {e}") from None
