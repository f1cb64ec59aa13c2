"""devicemapper driver, no kernel: pool set-up, device ids, transactions, metadata,
crash recovery, free-space refusal, deferred deletion, base device checks.

The kernel is played by :class:`dm_fake.FakeDM`, which outlives the driver
objects as the kernel outlives a killed pyrt.
"""
from __future__ import annotations

import json
import os

import pytest

from pyrt_core.errors import ConflictError, DriverNotSupported, NotFoundError, StorageError, UsageError

from pyrt_core.testing import machine  # noqa: E402

machine.skip_unless("distribution", "pyrt-storage-dm")
from pyrt_storage_dm import dm as dmmod  # noqa: E402
from pyrt_storage_dm.deviceset import BASE  # noqa: E402
from pyrt_storage_dm.driver import DeviceMapperDriver  # noqa: E402

from dm_fake import Crash, FakeDM, FakeOps  # noqa: E402

OPTS = {"loopdatasize": "1G", "loopmetadatasize": "16M", "basesize": "64M"}


@pytest.fixture
def kernel():
    k = FakeDM()
    k.ops = FakeOps(k)
    return k


@pytest.fixture
def home(tmp_path):
    return str(tmp_path / "devicemapper")


def make(kernel, home, **opts):
    o = dict(OPTS)
    o.update(opts)
    o = {k: v for k, v in o.items() if v is not None}
    return DeviceMapperDriver(home, o, dm=kernel, ops=kernel.ops)


def read(home, *parts):
    with open(os.path.join(home, *parts)) as f:
        return json.load(f)


def test_not_supported_without_device_mapper(tmp_path, monkeypatch):
    monkeypatch.setattr(dmmod, "CONTROL", str(tmp_path / "no-control"))
    home = tmp_path / "h"
    home.mkdir()
    with pytest.raises(DriverNotSupported, match="device-mapper is not available: no /dev/mapper/control"):
        DeviceMapperDriver(str(home), {})
    assert not home.exists()
    with pytest.raises(DriverNotSupported):
        DeviceMapperDriver.probe(str(tmp_path / "other"))
    assert not (tmp_path / "other").exists()


def test_new_store_makes_pool_base_and_records(kernel, home):
    drv = make(kernel, home)
    pool = read(home, "pool.json")
    name = pool["pool_name"]
    assert name.startswith("pyrt-") and name.endswith("-pool")
    # the pool table: loop devices, 64K blocks (128 sectors), our features
    (_, length, ttype, params), = kernel.devices[name]["table"]
    t = dmmod.parse_pool_table(params)
    assert ttype == "thin-pool" and t["block_sectors"] == 128
    assert t["features"] == ["skip_block_zeroing", "error_if_no_space"]
    assert length == (1 << 30) // 512
    assert os.path.getsize(pool["data_file"]) == 1 << 30  # sparse loop files
    assert os.path.getsize(pool["metadata_file"]) == 16 << 20
    # the base device: create_thin, mkfs, its UUID recorded, then deactivated
    base = read(home, "metadata", BASE)
    assert base["initialized"] and base["size"] == 64 << 20 and base["device_id"] == 1
    assert pool["base_uuid"] == base["uuid"] and base["uuid"]
    assert kernel.thin_ids(name) == [1]
    assert kernel.pool_by_name(name)["tid"] == 1 == base["transaction_id"]
    assert [m for _, m in kernel.messages] == ["create_thin 1", "set_transaction_id 0 1"]
    assert kernel.ops.mkfs_calls[0][0] == "ext4"
    assert drv.ds.our_active_devices() == []  # only the pool stays active


def test_layers_are_snapshots_with_ids_and_transactions(kernel, home):
    drv = make(kernel, home)
    name = drv.ds.pool_name
    drv.create("l1", None)
    drv.create("l2", "l1")
    drv.create_rw("c1", "l2")
    recs = {h: read(home, "metadata", h) for h in ("l1", "l2", "c1")}
    assert [recs[h]["device_id"] for h in ("l1", "l2", "c1")] == [2, 3, 4]
    assert [recs[h]["transaction_id"] for h in ("l1", "l2", "c1")] == [2, 3, 4]
    assert recs["l2"]["parent"] == "l1" and recs["l1"]["parent"] is None
    snaps = [m for _, m in kernel.messages if m.startswith("create_snap")]
    assert snaps == ["create_snap 2 1", "create_snap 3 2", "create_snap 4 3"]
    assert kernel.pool_by_name(name)["tid"] == 4
    txn = read(home, "transaction.json")
    assert txn == {"open_transaction_id": 4, "device_hash": "c1", "device_id": 4, "next_device_id": 5}
    with pytest.raises(ConflictError):
        drv.create("l1", None)
    with pytest.raises(NotFoundError):
        drv.create("x", "nope")
    assert not drv.exists("x")
    drv.remove("l2")  # the pool does not care about order: snapshots are independent
    assert not drv.exists("l2") and kernel.thin_ids(name) == [1, 2, 4]
    assert kernel.pool_by_name(name)["tid"] == 5
    drv.remove("l2")  # again: not an error


def test_origin_is_suspended_around_a_snapshot_of_an_active_device(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    drv.get("l1")
    dev = drv.ds.dev_name("l1")
    seen = []
    real = kernel.message

    def spy(name, msg):
        seen.append((msg, kernel.devices[dev]["suspended"]))
        return real(name, msg)

    kernel.message = spy
    drv.create("l2", "l1")
    assert seen[0] == ("create_snap 3 2", True)
    assert not kernel.devices[dev]["suspended"]
    drv.put("l1")
    assert dev not in kernel.devices


def test_device_id_in_use_moves_on(kernel, home):
    drv = make(kernel, home)
    kernel.pool_by_name(drv.ds.pool_name)["thins"][2] = {"blocks": set(), "uuid": None}
    drv.create("l1", None)
    assert read(home, "metadata", "l1")["device_id"] == 3


def test_metadata_scan_ignores_dot_files(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    open(os.path.join(home, "metadata", ".tmp-l2-abc"), "w").close()  # a crash's temp file
    assert drv.ds.hashes() == [BASE, "l1"]
    make(kernel, home)  # starts fine


@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_during_create_snap_is_rolled_back(kernel, home, when):
    drv = make(kernel, home)
    drv.create("l1", None)
    name = drv.ds.pool_name
    kernel.crash_on = ("create_snap", when)
    with pytest.raises(Crash):
        drv.create("l2", "l1")
    assert read(home, "transaction.json")["open_transaction_id"] == 3
    assert kernel.pool_by_name(name)["tid"] == 2
    if when == "after":
        assert kernel.thin_ids(name) == [1, 2, 3]  # an orphan in the pool
    drv2 = make(kernel, home)  # the next command
    assert kernel.thin_ids(name) == [1, 2]  # no orphaned thin device
    assert not drv2.exists("l2") and drv2.exists("l1")
    assert read(home, "transaction.json")["open_transaction_id"] == 2 == kernel.pool_by_name(name)["tid"]
    drv2.create("l2", "l1")  # the id is used again
    assert read(home, "metadata", "l2")["transaction_id"] == kernel.pool_by_name(name)["tid"] == 3


def test_crash_after_metadata_before_close_is_rolled_back(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    kernel.crash_on = ("set_transaction_id", "before")
    with pytest.raises(Crash):
        drv.create("l2", "l1")
    assert os.path.exists(os.path.join(home, "metadata", "l2"))
    drv2 = make(kernel, home)
    assert not drv2.exists("l2")
    assert kernel.thin_ids(drv2.ds.pool_name) == [1, 2]


def test_crash_after_close_keeps_the_device(kernel, home):
    drv = make(kernel, home)
    kernel.crash_on = ("set_transaction_id", "after")
    with pytest.raises(Crash):
        drv.create("l1", None)
    drv2 = make(kernel, home)
    assert drv2.exists("l1")
    assert kernel.thin_ids(drv2.ds.pool_name) == [1, 2]


def test_crash_during_delete_finishes_the_delete(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    kernel.crash_on = ("delete", "after")
    with pytest.raises(Crash):
        drv.remove("l1")
    drv2 = make(kernel, home)
    assert not drv2.exists("l1") and kernel.thin_ids(drv2.ds.pool_name) == [1]


def test_rollback_leaves_a_device_id_someone_else_owns(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    name = drv.ds.pool_name
    txn = read(home, "transaction.json")
    # an open transaction naming l1's device (a lost hint): never delete another's device
    txn.update(open_transaction_id=99, device_hash="ghost", device_id=2)
    with open(os.path.join(home, "transaction.json"), "w") as f:
        json.dump(txn, f)
    drv2 = make(kernel, home)
    assert drv2.exists("l1") and kernel.thin_ids(name) == [1, 2]


def test_recovery_resumes_a_suspended_origin(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    drv.get("l1")
    kernel.crash_on = ("create_snap", "before")
    real_resume = kernel.resume
    kernel.resume = lambda n: None  # killed before the resume
    with pytest.raises(Crash):
        drv.create("l2", "l1")
    kernel.resume = real_resume
    dev = drv.ds.dev_name("l1")
    assert kernel.devices[dev]["suspended"]
    make(kernel, home)
    assert not kernel.devices[dev]["suspended"]


def test_min_free_space_refuses_new_devices(kernel, home):
    drv = make(kernel, home, min_free_space="20%")
    drv.create("l1", None)
    kernel.data_used_extra = int(kernel.data_blocks * 0.85)
    with pytest.raises(StorageError) as e:
        drv.create_rw("c1", "l1")
    msg = str(e.value)
    assert "dm.min_free_space=20%" in msg and "free data space" in msg and "refusing" in msg
    assert not drv.exists("c1")
    assert read(home, "transaction.json")["open_transaction_id"] == kernel.pool_by_name(drv.ds.pool_name)["tid"]
    drv.remove("l1")  # removing still works when the pool is short of space
    make(kernel, home, min_free_space="0%").create_rw("c1", None)


def test_container_size_option(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    with pytest.raises(UsageError, match="below the base device size"):
        drv.create_rw("c0", "l1", {"size": "32M"})
    with pytest.raises(UsageError, match="does not support"):
        drv.create_rw("c0", "l1", {"quota": "1"})
    drv.create_rw("c1", "l1", {"size": "128M"})
    rec = read(home, "metadata", "c1")
    assert rec["size"] == 128 << 20
    assert kernel.ops.grown and kernel.ops.grown[-1][0].endswith("-c1")
    assert drv.metadata("c1")["DeviceSize"] == str(128 << 20)
    assert drv.ds.our_active_devices() == []


def test_basesize_grows_and_never_shrinks(kernel, home):
    make(kernel, home)
    drv = make(kernel, home, basesize="128M")
    assert read(home, "metadata", BASE)["size"] == 128 << 20
    assert kernel.ops.grown[-1][0].endswith("-" + BASE)
    drv.create("l1", None)
    assert read(home, "metadata", "l1")["size"] == 128 << 20
    with pytest.raises(UsageError, match="can only grow"):
        make(kernel, home, basesize="64M")
    make(kernel, home, basesize=None)  # not given: the recorded size stands


def test_pool_options_cannot_change(kernel, home):
    make(kernel, home)
    with pytest.raises(UsageError, match="dm.fs=xfs differs"):
        make(kernel, home, fs="xfs")
    with pytest.raises(UsageError, match="dm.blocksize"):
        make(kernel, home, blocksize="128K")
    make(kernel, home, fs="ext4", mountopt="noatime", min_free_space="5%")


def test_pool_left_active_by_a_crash_is_adopted(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    n = len(kernel.ops.loops)
    drv2 = make(kernel, home)  # pool still up: nothing attached again, nothing made
    assert len(kernel.ops.loops) == n and drv2.exists("l1")
    # deactivated pool (reboot, or shutdown): the loop devices are found or attached again
    drv2.shutdown()
    assert drv.ds.pool_name not in kernel.devices
    drv3 = make(kernel, home)
    assert drv3.exists("l1") and drv.ds.pool_name in kernel.devices


def test_pool_of_our_name_on_other_devices_is_refused(kernel, home):
    drv = make(kernel, home)
    name = drv.ds.pool_name
    t = kernel.devices[name]["table"][0]
    kernel.devices[name]["table"] = [(t[0], t[1], t[2], t[3].replace("7:0", "7:9", 1))]
    with pytest.raises(StorageError, match="not backed by this store's devices"):
        make(kernel, home)


def test_base_uuid_change_is_refused(kernel, home):
    drv = make(kernel, home)
    drv.shutdown()
    pool = kernel.metadata[next(iter(kernel.metadata))]
    pool["thins"][1]["uuid"] = "00000000-0000-0000-0000-000000000001"  # another filesystem
    with pytest.raises(StorageError, match="base device UUID verification failed"):
        make(kernel, home)


def test_half_made_base_is_made_again(kernel, home):
    real_mkfs = kernel.ops.mkfs

    def boom(*a):
        raise Crash("mkfs")

    kernel.ops.mkfs = boom
    with pytest.raises(Crash):
        make(kernel, home)
    assert kernel.devices == {}  # the pool it activated is deactivated again
    kernel.ops.mkfs = real_mkfs
    drv = make(kernel, home)
    assert read(home, "metadata", BASE)["initialized"]
    assert kernel.thin_ids(drv.ds.pool_name) == [2]


def test_busy_device_removal_and_deferred_deletion(kernel, home):
    drv = make(kernel, home, use_deferred_removal="true", use_deferred_deletion="true")
    drv.create("l1", None)
    drv.get("l1")
    dev = drv.ds.dev_name("l1")
    kernel.busy.add(dev)  # a mount leaked into another mount namespace
    drv.remove("l1")
    assert not drv.exists("l1")
    assert drv.ds.deferred_deletions() == ["2"]
    assert kernel.devices[dev]["deferred"]
    assert dict(drv.status())["Deferred Deleted Device Count"] == "1"
    kernel.release(dev)  # the other namespace goes away
    drv2 = make(kernel, home, use_deferred_removal="true", use_deferred_deletion="true")
    assert drv2.ds.deferred_deletions() == []
    assert kernel.thin_ids(drv2.ds.pool_name) == [1]


def test_busy_device_without_deferral_is_a_clear_error(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    drv.get("l1")
    kernel.busy.add(drv.ds.dev_name("l1"))
    import pyrt_storage_dm.metadata as dsmod  # the constant the pool, devices and recovery read

    dsmod.REMOVE_RETRIES, saved = 0, dsmod.REMOVE_RETRIES
    try:
        with pytest.raises(StorageError, match="device or resource busy"):
            drv.remove("l1")
    finally:
        dsmod.REMOVE_RETRIES = saved
    assert drv.exists("l1")


def test_blkdiscard_on_delete(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    drv.remove("l1")
    assert kernel.ops.discarded and kernel.ops.discarded[-1].endswith("-l1")
    drv = make(kernel, home, blkdiscard="false")
    drv.create("l2", None)
    n = len(kernel.ops.discarded)
    drv.remove("l2")
    assert len(kernel.ops.discarded) == n


def test_thinpooldev_must_be_empty(kernel, home, tmp_path):
    kernel.create("mypool", [(0, 2097152, "thin-pool", "7:5 7:6 128 100 0")])
    kernel.metadata["7:5"]["tid"] = 3
    with pytest.raises(StorageError, match="not empty"):
        make(kernel, home, thinpooldev="mypool")
    kernel.metadata["7:5"]["tid"] = 0
    drv = make(kernel, str(tmp_path / "h2"), thinpooldev="mypool")
    assert drv.ds.pool_name == "mypool"
    drv.create("l1", None)
    drv.shutdown()
    assert "mypool" in kernel.devices  # not ours to remove


def test_datadev_zeroes_new_metadata(kernel, home, tmp_path):
    meta = tmp_path / "metadev"
    meta.write_bytes(b"\xff" * 8192)
    data = tmp_path / "datadev"
    data.write_bytes(b"")
    make(kernel, home, datadev=str(data), metadatadev=str(meta))
    raw = meta.read_bytes()
    assert raw[:4096] == b"\0" * 4096 and raw[4096:] == b"\xff" * 4096


def test_status_for_pyrt_info(kernel, home):
    drv = make(kernel, home)
    st = dict(drv.status())
    for key in ("Pool Name", "Data Space Used", "Data Space Total", "Metadata Space Used",
                "Metadata Space Total", "Transaction ID", "Data file", "Metadata file",
                "Data loop device", "Thin Pool Minimum Free Space", "Base Device Size"):
        assert key in st, key
    assert st["Transaction ID"] == "1" and st["Thin Pool Minimum Free Space"] == "10%"
    assert st["Data Space Total"] == "1 GiB" and st["Base Device Size"] == "64 MiB"


def test_get_put_mount_and_deactivate(kernel, home):
    drv = make(kernel, home)
    drv.create("l1", None)
    root = drv.get("l1")
    assert root == os.path.join(home, "mnt", "l1", "rootfs")
    assert drv.get("l1") == root
    dev = drv.ds.dev_name("l1")
    drv.put("l1")
    assert dev in kernel.devices
    drv.put("l1")
    assert dev not in kernel.devices and not kernel.ops.mounts
    drv.put("l1")
    drv.get("l1")
    drv.cleanup()
    assert drv.ds.our_active_devices() == [] and not kernel.ops.mounts
    with pytest.raises(UsageError):
        drv.get("../evil")
