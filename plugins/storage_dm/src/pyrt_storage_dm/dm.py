"""Device-mapper through the ``/dev/mapper/control`` ioctls, and the thin
targets' table and status strings.

Nothing here runs ``dmsetup``: every request is one ``struct dm_ioctl``
(see linux/dm-ioctl.h) followed by its payload, sent with
``fcntl.ioctl``.  The packing and parsing functions are pure and are
unit-tested without a kernel; :class:`DeviceMapper` is the thin wrapper
that talks to the kernel.

There is no udev in the VM tier (nor necessarily on a host), so
:meth:`DeviceMapper.create` makes ``/dev/mapper/<name>`` itself (what
``dmsetup mknodes`` does) and :meth:`DeviceMapper.remove` deletes it.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
import time

CONTROL = "/dev/mapper/control"
MAPPER_DIR = "/dev/mapper"
SECTOR = 512

# struct dm_ioctl: version[3], data_size, data_start, target_count, open_count,
# flags, event_nr, padding, dev, name[128], uuid[129], data[7]
_HDR = struct.Struct("=3IIIIiIIIQ128s129s7s")
HEADER_SIZE = _HDR.size  # 312
assert HEADER_SIZE == 312
# struct dm_target_spec: sector_start, length, status, next, target_type[16]
_SPEC = struct.Struct("=QQiI16s")
assert _SPEC.size == 40
DM_NAME_LEN = 128
DM_UUID_LEN = 129
VERSION = (4, 0, 0)

# commands
DM_VERSION, DM_REMOVE_ALL, DM_LIST_DEVICES, DM_DEV_CREATE, DM_DEV_REMOVE, DM_DEV_RENAME, \
    DM_DEV_SUSPEND, DM_DEV_STATUS, DM_DEV_WAIT, DM_TABLE_LOAD, DM_TABLE_CLEAR, DM_TABLE_DEPS, \
    DM_TABLE_STATUS, DM_LIST_VERSIONS, DM_TARGET_MSG = range(15)

# flags
DM_READONLY_FLAG = 1 << 0
DM_SUSPEND_FLAG = 1 << 1
DM_PERSISTENT_DEV_FLAG = 1 << 3
DM_STATUS_TABLE_FLAG = 1 << 4
DM_ACTIVE_PRESENT_FLAG = 1 << 5
DM_INACTIVE_PRESENT_FLAG = 1 << 6
DM_BUFFER_FULL_FLAG = 1 << 8
DM_NOFLUSH_FLAG = 1 << 11
DM_DATA_OUT_FLAG = 1 << 16
DM_DEFERRED_REMOVE = 1 << 17

_NAMES = {DM_VERSION: "version", DM_LIST_DEVICES: "list", DM_DEV_CREATE: "create",
          DM_DEV_REMOVE: "remove", DM_DEV_SUSPEND: "suspend/resume", DM_DEV_STATUS: "info",
          DM_TABLE_LOAD: "load", DM_TABLE_STATUS: "status", DM_TARGET_MSG: "message",
          DM_TABLE_DEPS: "deps"}


def ioctl_number(cmd: int) -> int:
    """``_IOWR(0xfd, cmd, struct dm_ioctl)``."""
    return (3 << 30) | (HEADER_SIZE << 16) | (0xFD << 8) | cmd


def _align8(n: int) -> int:
    return (n + 7) & ~7


class DMError(OSError):
    """A device-mapper request failed; ``errno`` is the kernel's."""


# -- packing and unpacking (pure) ------------------------------------------------------------
def pack_request(name: str = "", *, flags: int = 0, payload: bytes = b"", target_count: int = 0,
                 buffer_size: int = 0, event_nr: int = 0, uuid: str = "", dev: int = 0) -> bytearray:
    """One ioctl buffer: header, payload at offset 312, room for ``buffer_size`` bytes of output."""
    bname = name.encode()
    if len(bname) >= DM_NAME_LEN:
        raise ValueError(f"device-mapper name too long ({len(bname)} bytes, at most 127): {name}")
    size = max(HEADER_SIZE + _align8(len(payload)), HEADER_SIZE + buffer_size)
    buf = bytearray(size)
    _HDR.pack_into(buf, 0, *VERSION, size, HEADER_SIZE, target_count, 0, flags, event_nr, 0, dev,
                   bname, uuid.encode(), b"")
    buf[HEADER_SIZE:HEADER_SIZE + len(payload)] = payload
    return buf


def unpack_header(buf: bytes) -> dict:
    (v0, v1, v2, data_size, data_start, target_count, open_count, flags, event_nr, _pad, dev,
     name, uuid, _data) = _HDR.unpack_from(buf, 0)
    return {"version": (v0, v1, v2), "data_size": data_size, "data_start": data_start,
            "target_count": target_count, "open_count": open_count, "flags": flags,
            "event_nr": event_nr, "dev": dev, "name": name.split(b"\0", 1)[0].decode(),
            "uuid": uuid.split(b"\0", 1)[0].decode()}


def pack_table(targets: list[tuple[int, int, str, str]]) -> bytes:
    """Target specs for DM_TABLE_LOAD: ``(start sector, length, type, params)`` each;
    a spec's ``next`` is the offset of the following spec from this one."""
    out = bytearray()
    for start, length, ttype, params in targets:
        p = params.encode() + b"\0"
        total = _align8(_SPEC.size + len(p))
        spec = _SPEC.pack(start, length, 0, total, ttype.encode())
        out += spec + p + b"\0" * (total - _SPEC.size - len(p))
    return bytes(out)


def unpack_table(buf: bytes, hdr: dict) -> list[tuple[int, int, str, str]]:
    """Targets of a DM_TABLE_STATUS answer; there ``next`` counts from the data start."""
    out = []
    base = hdr["data_start"]
    off = 0
    for _ in range(hdr["target_count"]):
        start, length, _status, nxt, ttype = _SPEC.unpack_from(buf, base + off)
        pstart = base + off + _SPEC.size
        pend = buf.index(b"\0", pstart)
        out.append((start, length, ttype.split(b"\0", 1)[0].decode(), buf[pstart:pend].decode()))
        off = nxt
    return out


def unpack_names(buf: bytes, hdr: dict) -> list[tuple[str, int]]:
    """``(name, dev)`` pairs of a DM_LIST_DEVICES answer (struct dm_name_list chain)."""
    out = []
    off = hdr["data_start"]
    if hdr["data_size"] - off < 12:
        return out
    while True:
        dev, nxt = struct.unpack_from("=QI", buf, off)
        if dev == 0 and not out:
            return out  # "no devices"
        end = buf.index(b"\0", off + 12)
        out.append((buf[off + 12:end].decode(), dev))
        if nxt == 0:
            return out
        off += nxt


def pack_message(message: str, sector: int = 0) -> bytes:
    """struct dm_target_msg: the sector, then the message text."""
    return struct.pack("=Q", sector) + message.encode() + b"\0"


def decode_dev(dev: int) -> tuple[int, int]:
    """The kernel's huge_encode_dev as (major, minor)."""
    return os.major(dev), os.minor(dev)


# -- tables and statuses of the thin targets (pure) --------------------------------------------------
def pool_table(data_sectors: int, metadata_dev: str, data_dev: str, block_sectors: int,
               low_water_blocks: int, features: list[str] | tuple[str, ...] = ()) -> str:
    """``thin-pool`` parameters, with devices as ``major:minor``."""
    feats = list(features)
    return " ".join([metadata_dev, data_dev, str(block_sectors), str(low_water_blocks),
                     str(len(feats)), *feats]).strip()


def thin_table(pool_dev: str, device_id: int) -> str:
    return f"{pool_dev} {device_id}"


def parse_pool_table(params: str) -> dict:
    """The parameters of a loaded ``thin-pool`` table."""
    parts = params.split()
    if len(parts) < 5:
        raise ValueError(f"not a thin-pool table: {params!r}")
    n = int(parts[4])
    return {"metadata_dev": parts[0], "data_dev": parts[1], "block_sectors": int(parts[2]),
            "low_water_blocks": int(parts[3]), "features": parts[5:5 + n]}


def parse_pool_status(params: str) -> dict:
    """A ``thin-pool`` status line::

        <transaction id> <used meta>/<total meta> <used data>/<total data>
        <held metadata root> ro|rw|out_of_data_space [no_]discard_passdown
        [error|queue]_if_no_space needs_check|- [metadata low watermark]

    Metadata blocks are 4 KiB; data blocks are the pool's block size.  A pool
    in failure mode reports only ``Fail``."""
    parts = params.split()
    if not parts or parts[0] == "Fail":
        return {"failed": True}
    if len(parts) < 3 or "/" not in parts[1] or "/" not in parts[2]:
        raise ValueError(f"not a thin-pool status: {params!r}")
    mu, mt = parts[1].split("/")
    du, dt = parts[2].split("/")
    out = {"failed": False, "transaction_id": int(parts[0]),
           "metadata_used": int(mu), "metadata_total": int(mt),
           "data_used": int(du), "data_total": int(dt),
           "held_root": parts[3] if len(parts) > 3 else "-",
           "mode": parts[4] if len(parts) > 4 else "rw",
           "needs_check": len(parts) > 7 and parts[7] == "needs_check"}
    out["discard_passdown"] = not (len(parts) > 5 and parts[5] == "no_discard_passdown")
    out["error_if_no_space"] = len(parts) > 6 and parts[6] == "error_if_no_space"
    return out


def parse_thin_status(params: str) -> dict:
    """A ``thin`` status line: ``<mapped sectors> <highest mapped sector>`` ("-" when none)."""
    parts = params.split()
    if not parts or parts[0] == "Fail":
        return {"failed": True, "mapped_sectors": 0, "highest": None}
    hi = parts[1] if len(parts) > 1 else "-"
    return {"failed": False, "mapped_sectors": int(parts[0]),
            "highest": None if hi == "-" else int(hi)}


# -- the kernel --------------------------------------------------------------------------------------
def available() -> bool:
    return os.path.exists(CONTROL)


class DeviceMapper:
    """Requests to the kernel's device-mapper; each method is one or a few ioctls."""

    def __init__(self, control: str = CONTROL):
        self.control = control
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.control, os.O_RDWR | os.O_CLOEXEC)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _call(self, cmd: int, name: str = "", *, flags: int = 0, payload: bytes = b"",
              target_count: int = 0, out: int = 0, what: str = "") -> tuple[dict, bytearray]:
        import fcntl

        size = out
        while True:
            buf = pack_request(name, flags=flags, payload=payload, target_count=target_count,
                               buffer_size=size)
            try:
                fcntl.ioctl(self._open(), ioctl_number(cmd), buf, True)
            except OSError as e:
                label = what or _NAMES.get(cmd, str(cmd))
                raise DMError(e.errno, f"device-mapper {label}{' ' + name if name else ''}: "
                              f"{os.strerror(e.errno)}") from None
            hdr = unpack_header(buf)
            if hdr["flags"] & DM_BUFFER_FULL_FLAG and size < (1 << 24):
                size = max(size * 4, 16384)
                continue
            return hdr, buf

    # -- queries ------------------------------------------------------------------------
    def version(self) -> tuple[int, int, int]:
        return self._call(DM_VERSION)[0]["version"]

    def info(self, name: str) -> dict | None:
        """Header facts of device ``name`` (open_count, flags, dev, ...), None when absent."""
        try:
            return self._call(DM_DEV_STATUS, name)[0]
        except DMError as e:
            if e.errno == errno.ENXIO:
                return None
            raise

    def table(self, name: str, status: bool = False) -> list[tuple[int, int, str, str]]:
        """The live table (``status=False``) or the targets' status lines."""
        hdr, buf = self._call(DM_TABLE_STATUS, name, flags=0 if status else DM_STATUS_TABLE_FLAG,
                              out=16384)
        return unpack_table(buf, hdr)

    def list(self) -> list[tuple[str, int]]:
        hdr, buf = self._call(DM_LIST_DEVICES, out=16384)
        return unpack_names(buf, hdr)

    # -- changes -----------------------------------------------------------------------
    def create(self, name: str, targets: list[tuple[int, int, str, str]], *,
               readonly: bool = False) -> int:
        """Create device ``name``, load ``targets``, resume it; make its node.  Returns dev."""
        hdr, _ = self._call(DM_DEV_CREATE, name)
        try:
            self._call(DM_TABLE_LOAD, name, flags=DM_READONLY_FLAG if readonly else 0,
                       payload=pack_table(targets), target_count=len(targets))
            hdr, _ = self._call(DM_DEV_SUSPEND, name, flags=0, what="resume")
        except BaseException:
            try:
                self._call(DM_DEV_REMOVE, name)
            except DMError:
                pass
            raise
        try:
            make_node(name, hdr["dev"])
        except OSError:
            pass  # /dev/mapper is a convenience; node_for() finds a node to use
        return hdr["dev"]

    def reload(self, name: str, targets: list[tuple[int, int, str, str]]) -> None:
        """Swap the table of an active device (suspend, load, resume)."""
        self._call(DM_TABLE_LOAD, name, payload=pack_table(targets), target_count=len(targets))
        self.suspend(name)
        self.resume(name)

    def suspend(self, name: str) -> None:
        self._call(DM_DEV_SUSPEND, name, flags=DM_SUSPEND_FLAG, what="suspend")

    def resume(self, name: str) -> None:
        self._call(DM_DEV_SUSPEND, name, flags=0, what="resume")

    def message(self, name: str, message: str) -> None:
        self._call(DM_TARGET_MSG, name, payload=pack_message(message),
                   what=f"message {message!r} to")

    def remove(self, name: str, *, deferred: bool = False, retries: int = 0,
               interval: float = 0.1) -> bool:
        """Remove device ``name``; retry while busy.  Returns True when gone now, False when
        the kernel deferred it (``deferred``: removed when its last user closes it).
        A missing device is not an error."""
        for attempt in range(retries + 1):
            try:
                self._call(DM_DEV_REMOVE, name)
                remove_node(name)
                return True
            except DMError as e:
                if e.errno == errno.ENXIO:
                    remove_node(name)
                    return True
                if e.errno != errno.EBUSY:
                    raise
                if attempt < retries:
                    time.sleep(interval)
                    continue
                if not deferred:
                    raise
        self._call(DM_DEV_REMOVE, name, flags=DM_DEFERRED_REMOVE, what="deferred remove")
        return False

    def cancel_deferred_remove(self, name: str) -> None:
        self.message(name, "@cancel_deferred_remove")

    @staticmethod
    def make_node(name: str, dev: int) -> str:
        return make_node(name, dev)

    @staticmethod
    def node_for(name: str, dev: int) -> str:
        return node_for(name, dev)


def node_path(name: str) -> str:
    return os.path.join(MAPPER_DIR, name)


def make_node(name: str, dev: int) -> str:
    """``/dev/mapper/<name>`` for ``dev`` (replacing a stale node), as ``dmsetup mknodes``."""
    path = node_path(name)
    major, minor = decode_dev(dev)
    want = os.makedev(major, minor)
    try:
        st = os.stat(path)  # udev's symlink to ../dm-N counts
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == want:
            return path
        os.unlink(path)
    except FileNotFoundError:
        if os.path.islink(path):
            os.unlink(path)
        pass
    os.makedirs(MAPPER_DIR, exist_ok=True)
    try:
        os.mknod(path, stat.S_IFBLK | 0o600, want)
    except FileExistsError:
        pass
    return path


def node_for(name: str, dev: int) -> str:
    """A device node for ``dev`` that is there now: the kernel's own ``/dev/dm-<minor>``
    (devtmpfs makes it synchronously), else ``/dev/mapper/<name>`` (made if needed).
    /dev/mapper entries are udev's when udev runs, and it creates and removes them
    asynchronously: a node of a removed device of the same name can vanish later."""
    major, minor = decode_dev(dev)
    kpath = f"/dev/dm-{minor}"
    try:
        st = os.stat(kpath)
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(major, minor):
            return kpath
    except FileNotFoundError:
        pass
    return make_node(name, dev)


def remove_node(name: str) -> None:
    try:
        os.unlink(node_path(name))
    except FileNotFoundError:
        pass
