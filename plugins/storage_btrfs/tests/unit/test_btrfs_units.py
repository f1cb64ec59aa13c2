"""The btrfs plugin without btrfs: size parsing, ioctl numbers and layouts, refusal."""
import struct

import pytest

from pyrt_core.testing import machine

units = machine.import_plugin_module("pyrt_storage_btrfs.units", "pyrt-storage-btrfs")
from pyrt_storage_btrfs import ioctl as B  # noqa: E402
from pyrt_storage_btrfs.driver import BtrfsDriver  # noqa: E402

from pyrt_core.errors import DriverPrerequisitesMissing  # noqa: E402

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@pytest.mark.parametrize("text, value", [
    ("10G", 10 * GiB), ("10g", 10 * GiB), ("512m", 512 * MiB), ("512M", 512 * MiB),
    ("64MiB", 64 * MiB), ("64mb", 64 * MiB), ("1.5g", GiB + GiB // 2), ("4096", 4096),
    ("100b", 100), ("2k", 2 * KiB), ("1T", 1 << 40), ("3 GB", 3 * GiB), (" 7m ", 7 * MiB),
])
def test_parse_size(text, value):
    assert units.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "-1G", "10X", "ten", "1.5.5g", "10 G B", "1i", "0x10"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        units.parse_size(text)


def test_human_size():
    assert units.human_size(0) == "0 B"
    assert units.human_size(1023) == "1023 B"
    assert units.human_size(64 * MiB) == "64 MiB"
    assert units.human_size(GiB + GiB // 2) == "1.5 GiB"


def test_ioctl_numbers_match_the_uapi():
    # values of the kernel's _IOW/_IOR/_IOWR macros for include/uapi/linux/btrfs.h
    assert B.IOC_SUBVOL_CREATE == 0x5000940E
    assert B.IOC_SNAP_DESTROY == 0x5000940F
    assert B.IOC_TREE_SEARCH == 0xD0009411
    assert B.IOC_INO_LOOKUP == 0xD0009412
    assert B.IOC_SNAP_CREATE_V2 == 0x50009417
    assert B.IOC_SUBVOL_GETFLAGS == 0x80089419
    assert B.IOC_SUBVOL_SETFLAGS == 0x4008941A
    assert B.IOC_FS_INFO == 0x8400941F
    assert B.IOC_QUOTA_CTL == 0xC0109428
    assert B.IOC_QGROUP_CREATE == 0x4010942A
    assert B.IOC_QGROUP_LIMIT == 0x8030942B
    assert B.IOC_QUOTA_RESCAN_STATUS == 0x8040942D
    assert B.IOC_QUOTA_RESCAN_WAIT == 0x942E
    assert B.qgroupid(0, 257) == 257 and B.qgroupid(1, 5) == (1 << 48) | 5


def test_vol_args_layout():
    buf = B._vol_args("layer-1")
    assert len(buf) == 4096  # __s64 fd + char name[4088]
    assert struct.unpack_from("=q", buf, 0)[0] == 0
    assert bytes(buf[8:16]) == b"layer-1\0"
    for bad in ("", ".", "..", "a/b", "x" * 256):
        with pytest.raises(OSError):
            B._vol_args(bad)


def test_refuses_home_not_on_btrfs(tmp_path):
    machine.skip_unless("tmp-not-btrfs")
    with pytest.raises(DriverPrerequisitesMissing, match="not btrfs"):
        BtrfsDriver(str(tmp_path / "home"), {})
    with pytest.raises(DriverPrerequisitesMissing, match="btrfs"):
        BtrfsDriver.probe(str(tmp_path / "a" / "b"))
    assert not (tmp_path / "a").exists()
