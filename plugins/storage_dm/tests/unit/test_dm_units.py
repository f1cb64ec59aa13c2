"""devicemapper driver, no kernel: ioctl packing, tables, status parsing, sizes, options."""
from __future__ import annotations

import struct
import uuid

import pytest

from pyrt_core.errors import UsageError

from pyrt_core.testing import machine  # noqa: E402

dm = machine.import_plugin_module("pyrt_storage_dm.dm", "pyrt-storage-dm")
from pyrt_storage_dm import fs as fsmod  # noqa: E402
from pyrt_storage_dm import loop  # noqa: E402
from pyrt_storage_dm.options import parse_options  # noqa: E402
from pyrt_storage_dm.units import human_size, parse_bool, parse_percent, parse_size  # noqa: E402


# -- ioctl structures -----------------------------------------------------------------------------
def test_ioctl_numbers_match_the_kernel_headers():
    # _IOWR(0xfd, nr, struct dm_ioctl) with sizeof(struct dm_ioctl) == 312
    assert dm.HEADER_SIZE == 312
    assert dm.ioctl_number(dm.DM_VERSION) == 0xC138FD00
    assert dm.ioctl_number(dm.DM_DEV_CREATE) == 0xC138FD03
    assert dm.ioctl_number(dm.DM_TABLE_LOAD) == 0xC138FD09
    assert dm.ioctl_number(dm.DM_TARGET_MSG) == 0xC138FD0E


def test_request_header_round_trip():
    buf = dm.pack_request("pool", flags=dm.DM_SUSPEND_FLAG, payload=b"abc", target_count=1,
                          buffer_size=1000)
    assert len(buf) == 312 + 1000
    hdr = dm.unpack_header(buf)
    assert hdr["version"] == (4, 0, 0)
    assert hdr["data_size"] == len(buf) and hdr["data_start"] == 312
    assert hdr["name"] == "pool" and hdr["flags"] == dm.DM_SUSPEND_FLAG
    assert hdr["target_count"] == 1
    assert bytes(buf[312:315]) == b"abc"
    with pytest.raises(ValueError, match="too long"):
        dm.pack_request("x" * 128)


def test_table_specs_are_aligned_and_chained():
    targets = [(0, 2048, "thin-pool", "7:1 7:0 128 8192 1 skip_block_zeroing"),
               (2048, 100, "linear", "8:0 0")]
    raw = dm.pack_table(targets)
    start, length, status, nxt, ttype = struct.unpack_from("=QQiI16s", raw, 0)
    assert (start, length, status) == (0, 2048, 0)
    assert ttype.rstrip(b"\0") == b"thin-pool"
    params = b"7:1 7:0 128 8192 1 skip_block_zeroing"
    assert nxt % 8 == 0 and nxt == 40 + 40  # 37 bytes of params + NUL, padded to 40
    assert raw[40:40 + len(params) + 1] == params + b"\0"

    assert struct.unpack_from("=QQ", raw, nxt) == (2048, 100)
    assert len(raw) % 8 == 0


def _kernel_status_answer(targets):
    """What DM_TABLE_STATUS writes: specs from data_start, ``next`` counted from there."""
    out = bytearray()
    for start, length, ttype, params in targets:
        spec_at = len(out)
        out += b"\0" * 40
        p = params.encode() + b"\0"
        out += p
        while len(out) % 8:
            out += b"\0"
        struct.pack_into("=QQiI16s", out, spec_at, start, length, 0, len(out), ttype.encode())
    buf = bytearray(312) + out
    hdr = {"data_start": 312, "target_count": len(targets), "data_size": len(buf)}
    return bytes(buf), hdr


def test_unpack_table_status_answer():
    targets = [(0, 2097152, "thin-pool", "3 10/8192 20/16384 - rw discard_passdown queue_if_no_space - 1024"),
               (2097152, 8, "error", "")]
    buf, hdr = _kernel_status_answer(targets)
    assert dm.unpack_table(buf, hdr) == targets


def test_unpack_device_list():
    entries = [("pyrt-8:1-12-pool", (253 << 8) | 0), ("pyrt-8:1-12-_base", (253 << 8) | 1)]
    out = bytearray()
    for i, (name, dev) in enumerate(entries):
        here = len(out)
        rec = struct.pack("=QI", dev, 0) + name.encode() + b"\0"
        rec += b"\0" * ((8 - len(rec) % 8) % 8)
        out += rec
        if i < len(entries) - 1:
            struct.pack_into("=I", out, here + 8, len(rec))
    buf = bytes(bytearray(312) + out)
    assert dm.unpack_names(buf, {"data_start": 312, "data_size": len(buf)}) == entries
    empty = bytes(bytearray(312) + struct.pack("=QI", 0, 0) + b"\0" * 4)
    assert dm.unpack_names(empty, {"data_start": 312, "data_size": len(empty)}) == []


def test_message_payload():
    assert dm.pack_message("create_snap 5 1") == b"\0" * 8 + b"create_snap 5 1\0"


# -- tables and statuses ------------------------------------------------------------------------------
def test_pool_and_thin_tables():
    t = dm.pool_table(2097152, "7:1", "7:0", 128, 8192, ["skip_block_zeroing", "error_if_no_space"])
    assert t == "7:1 7:0 128 8192 2 skip_block_zeroing error_if_no_space"
    assert dm.parse_pool_table(t) == {"metadata_dev": "7:1", "data_dev": "7:0", "block_sectors": 128,
                                      "low_water_blocks": 8192,
                                      "features": ["skip_block_zeroing", "error_if_no_space"]}
    assert dm.pool_table(100, "7:1", "7:0", 128, 10) == "7:1 7:0 128 10 0"
    assert dm.thin_table("253:0", 7) == "253:0 7"


def test_parse_pool_status():
    st = dm.parse_pool_status("12 150/8192 3000/16384 - rw discard_passdown error_if_no_space - 1024")
    assert st["transaction_id"] == 12
    assert (st["metadata_used"], st["metadata_total"]) == (150, 8192)
    assert (st["data_used"], st["data_total"]) == (3000, 16384)
    assert st["mode"] == "rw" and st["discard_passdown"] and st["error_if_no_space"]
    assert not st["needs_check"] and not st["failed"]
    full = dm.parse_pool_status("3 10/8192 16384/16384 - out_of_data_space no_discard_passdown "
                                "queue_if_no_space needs_check 1024")
    assert full["mode"] == "out_of_data_space" and full["needs_check"]
    assert not full["discard_passdown"] and not full["error_if_no_space"]
    assert dm.parse_pool_status("Fail") == {"failed": True}
    with pytest.raises(ValueError):
        dm.parse_pool_status("0 0 0 linear")


def test_parse_thin_status():
    assert dm.parse_thin_status("2048 4095") == {"failed": False, "mapped_sectors": 2048, "highest": 4095}
    assert dm.parse_thin_status("0 -")["highest"] is None
    assert dm.parse_thin_status("Fail")["failed"]


def test_decode_dev():
    assert dm.decode_dev((253 << 8) | 3) == (253, 3)
    big = (300 & 0xFF) | (253 << 8) | ((300 & ~0xFF) << 12)  # huge_encode_dev of 253:300
    assert dm.decode_dev(big) == (253, 300)


# -- loop and filesystem helpers -----------------------------------------------------------------------
def test_loop_config_layout():
    raw = loop.pack_config(5, "/var/lib/pyrt/devicemapper/data")
    assert len(raw) == 304
    fd, block = struct.unpack_from("=II", raw, 0)
    assert (fd, block) == (5, 0)
    flags = struct.unpack_from("=I", raw, 8 + 40 + 12)[0]  # lo_flags after 5 u64 + 3 u32
    assert flags == loop.LO_FLAGS_AUTOCLEAR
    assert raw[8 + 56:8 + 56 + 31] == b"/var/lib/pyrt/devicemapper/data"


def test_superblock_uuids():
    u = uuid.uuid4()
    ext4 = bytearray(2048)
    struct.pack_into("<H", ext4, 1024 + 0x38, 0xEF53)
    ext4[1024 + 0x68:1024 + 0x78] = u.bytes
    assert fsmod.parse_uuid("ext4", bytes(ext4)) == str(u)
    assert fsmod.parse_uuid("ext4", bytes(2048)) is None
    xfs = bytearray(2048)
    xfs[:4] = b"XFSB"
    xfs[32:48] = u.bytes
    assert fsmod.parse_uuid("xfs", bytes(xfs)) == str(u)
    assert fsmod.parse_uuid("xfs", bytes(ext4)) is None


def test_mkfs_and_mount_options():
    argv = fsmod.mkfs_argv("ext4", "/dev/mapper/x", "-O ^has_journal")
    assert argv[0] == "mkfs.ext4" and "lazy_itable_init=0" in argv[4]
    assert argv[-3:] == ["-O", "^has_journal", "/dev/mapper/x"]
    assert fsmod.mkfs_argv("xfs", "/dev/x")[:2] == ["mkfs.xfs", "-q"]
    assert fsmod.mount_options("xfs", "") == "nouuid"
    assert fsmod.mount_options("xfs", "noatime") == "nouuid"
    assert fsmod.mount_options("ext4", "noatime,discard,rw") == "discard"
    assert fsmod.mount_flags("noatime,discard,nodev") == 1024 | 4
    assert fsmod.mount_flags("") == 0


# -- sizes and options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("10G", 10 << 30), ("10g", 10 << 30), ("512m", 512 << 20), ("64K", 64 << 10), ("4096", 4096),
    ("1.5G", 3 << 29), ("2GiB", 2 << 30), ("100 MB", 100 << 20), ("1t", 1 << 40),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "ten", "1x", "-1G", "1GG"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_percent_bool_human():
    assert parse_percent("10%") == 10 and parse_percent("0") == 0
    for bad in ("100%", "x", "-1", "10.5%"):
        with pytest.raises(ValueError):
            parse_percent(bad)
    assert parse_bool("true") and not parse_bool("False")
    with pytest.raises(ValueError):
        parse_bool("maybe")
    assert human_size(64 << 20) == "64 MiB" and human_size(3 << 29) == "1.5 GiB"


def test_option_defaults_are_dockers():
    o = parse_options({})
    assert (o.loopdatasize, o.loopmetadatasize, o.basesize) == (100 << 30, 2 << 30, 10 << 30)
    assert o.fs == "ext4" and o.blocksize == 64 << 10 and o.min_free_space == 10
    assert o.loop_backed and o.discard  # blkdiscard: on for loop files
    assert not o.use_deferred_removal and not o.use_deferred_deletion
    o = parse_options({"datadev": "/dev/sdb", "metadatadev": "/dev/sdc"})
    assert not o.loop_backed and not o.discard
    o = parse_options({"thinpooldev": "/dev/mapper/mypool", "blkdiscard": "true",
                       "min_free_space": "25%", "fs": "xfs", "basesize": "20G"})
    assert o.thinpooldev == "mypool" and o.discard and o.min_free_space == 25
    assert o.fs == "xfs" and o.basesize == 20 << 30 and "basesize" in o.given


@pytest.mark.parametrize("opts,match", [
    ({"nosuch": "1"}, "dm.nosuch"),
    ({"fs": "btrfs"}, "ext4 or xfs"),
    ({"blocksize": "100K"}, "multiple of 64K"),
    ({"datadev": "/dev/sdb"}, "together"),
    ({"datadev": "sdb", "metadatadev": "/dev/sdc"}, "path of a block device"),
    ({"thinpooldev": "p", "datadev": "/dev/a", "metadatadev": "/dev/b"}, "cannot be combined"),
    ({"basesize": "1M"}, "at least 16M"),
    ({"basesize": "lots"}, "dm.basesize"),
    ({"min_free_space": "150%"}, "min_free_space"),
    ({"use_deferred_removal": "perhaps"}, "use_deferred_removal"),
])
def test_bad_options(opts, match):
    with pytest.raises(UsageError, match=match):
        parse_options(opts)
