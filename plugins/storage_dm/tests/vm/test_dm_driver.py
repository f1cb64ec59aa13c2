"""The devicemapper driver on a real thin pool (VM tier): each dm.* option taking
effect, pool exhaustion, busy devices, crash recovery with thin_check.

Every pool is made by the ``dm_store`` fixture (dm_fixtures.py) on small
sparse loop files and deactivated at teardown, which detaches its loop
devices; the fixture fails a test that leaves a device-mapper device.
"""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time

import pytest

from pyrt_core.errors import StorageError, UsageError

from dm_fixtures import (  # noqa: F401  (fixtures)
    SMALL,
    dm_devices,
    dm_home,
    dm_loaded,
    dm_store,
    thin_check,
    thin_device_ids,
)

pytestmark = pytest.mark.vm
MiB = 1 << 20


def _pool_table(drv):
    from pyrt_storage_dm import dm as dmmod

    (_, length, ttype, params), = drv.ds.dm.table(drv.ds.pool_name)
    assert ttype == "thin-pool"
    return length, dmmod.parse_pool_table(params)


def _fill(path: str, size: int) -> None:
    with open(path, "wb") as f:
        chunk = os.urandom(MiB)
        for _ in range(size // MiB):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def _hold_mounts(path: str) -> subprocess.Popen:
    """A process in a new mount namespace holding a copy of the mount at ``path`` (how a
    mount leaks into a container and keeps the device busy); returns once it holds it."""
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{p.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
                with open(f"/proc/{p.pid}/mountinfo") as f:
                    if any(line.split()[4] == path for line in f):
                        return p
        except OSError:
            pass
        time.sleep(0.1)
    p.kill()
    p.wait()
    raise AssertionError("the mount-holding process did not start")


def _mount_facts(path: str) -> tuple[str, str]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[4] == path:
                fstype, _src, superopts = right.split()[:3]
                return fstype, left.split()[5] + "," + superopts
    raise AssertionError(f"{path} is not mounted")


# -- the pool on loop files, and the options that shape it ------------------------------------
def test_pool_on_loop_files(dm_store):
    drv = dm_store(loopdatasize="512M", loopmetadatasize="16M", blocksize="128K")
    pool = drv.ds.pool
    assert os.path.getsize(pool["data_file"]) == 512 * MiB
    assert os.path.getsize(pool["metadata_file"]) == 16 * MiB
    assert os.stat(pool["data_file"]).st_blocks * 512 < 64 * MiB  # sparse
    length, table = _pool_table(drv)
    assert length == 512 * MiB // 512 and table["block_sectors"] == 256  # dm.blocksize=128K
    from pyrt_storage_dm import loop

    for key, path in (("metadata_dev", pool["metadata_file"]), ("data_dev", pool["data_file"])):
        dev = loop.find_backing(path)
        assert dev and loop.dev_numbers(dev) == table[key]
    st = dict(drv.status())
    assert st["Data Space Total"] == "512 MiB" and st["Metadata Space Total"] == "16 MiB"
    assert st["Pool Blocksize"] == "128 KiB" and st["Data loop device"].startswith("/dev/loop")
    assert int(st["Transaction ID"]) == 1  # the base device


def test_basesize_fs_mkfsarg_mountopt(dm_store):
    # xfsprogs 6 makes no filesystem below 300M
    drv = dm_store(basesize="320M", fs="xfs", mkfsarg="-L pyrtbase", mountopt="noatime")
    drv.create("l1", None)
    root = drv.get("l1")
    try:
        mp = os.path.dirname(root)
        fstype, opts = _mount_facts(mp)
        assert fstype == "xfs" and "noatime" in opts.split(",") and "nouuid" in opts
        dev = drv.ds.dev_path("l1")
        from pyrt_storage_dm import loop

        assert loop.device_size(dev) == 320 * MiB
        with open(dev, "rb") as f:
            sb = f.read(512)
        assert sb[:4] == b"XFSB" and sb[108:120].rstrip(b"\0") == b"pyrtbase"  # sb_fname
    finally:
        drv.put("l1")


def test_basesize_grows_the_base_filesystem(dm_store, dm_home):
    home = os.path.join(dm_home, "grow")
    drv = dm_store(home=home)
    drv.create("small", None)
    drv.shutdown()
    with pytest.raises(UsageError, match="can only grow"):
        dm_store(home=home, basesize="32M")
    drv = dm_store(home=home, basesize="256M")
    drv.create("big", None)
    for id, lo, hi in (("small", 40, 64), ("big", 200, 256)):
        root = drv.get(id)
        try:
            st = os.statvfs(root)
            assert lo * MiB < st.f_blocks * st.f_frsize <= hi * MiB, (id, st.f_blocks * st.f_frsize)
        finally:
            drv.put(id)


def test_container_size(dm_store):
    drv = dm_store()
    drv.create("img", None)
    with pytest.raises(UsageError, match="below the base device size"):
        drv.create_rw("c0", "img", {"size": "32M"})
    drv.create_rw("c1", "img", {"size": "200M"})
    root = drv.get("c1")
    try:
        st = os.statvfs(root)
        assert st.f_blocks * st.f_frsize > 150 * MiB
    finally:
        drv.put("c1")


def test_datadev_and_metadatadev(dm_store, dm_home):
    from pyrt_storage_dm import loop

    files = []
    devs = []
    for name, size in (("data", 512 * MiB), ("meta", 16 * MiB)):
        path = os.path.join(dm_home, name)
        with open(path, "wb") as f:
            f.truncate(size)
            f.write(b"\xff" * 4096)  # stale bytes where metadata starts
        files.append(path)
        devs.append(loop.attach(path))
    try:
        drv = dm_store(datadev=devs[0], metadatadev=devs[1])
        _, table = _pool_table(drv)
        assert table["data_dev"] == loop.dev_numbers(devs[0])
        assert table["metadata_dev"] == loop.dev_numbers(devs[1])
        st = dict(drv.status())
        assert st["Data device"] == devs[0] and st["Discard (dm.blkdiscard)"] == "false"
        drv.create("l1", None)
        assert drv.exists("l1")
        drv.shutdown()
    finally:
        for d in devs:
            loop.detach(d)


def test_thinpooldev(dm_store, dm_home):
    from pyrt_storage_dm import dm as dmmod
    from pyrt_storage_dm import loop

    name = f"pyrt-test-pool-{os.getpid()}"
    fds = []
    paths = {}
    for part, size in (("data", 512 * MiB), ("meta", 16 * MiB)):
        paths[part] = os.path.join(dm_home, part)
        with open(paths[part], "wb") as f:
            f.truncate(size)
    k = dmmod.DeviceMapper()
    try:
        ddev, fd = loop.attach_fd(paths["data"])
        fds.append(fd)
        mdev, fd = loop.attach_fd(paths["meta"])
        fds.append(fd)
        sectors = 512 * MiB // 512
        k.create(name, [(0, sectors, "thin-pool",
                         dmmod.pool_table(sectors, loop.dev_numbers(mdev), loop.dev_numbers(ddev),
                                          128, 1024, ["skip_block_zeroing"]))])
        for fd in fds:
            os.close(fd)
        fds = []
        drv = dm_store(thinpooldev=name)
        drv.create("l1", None)
        assert dict(drv.status())["Pool Name"] == name
        drv.shutdown()
        assert name in dm_devices()  # not ours to remove
        with pytest.raises(StorageError, match="not empty"):
            from pyrt_storage_dm.driver import DeviceMapperDriver

            DeviceMapperDriver(os.path.join(dm_home, "second"), dict(SMALL, thinpooldev=name))
    finally:
        for fd in fds:
            os.close(fd)
        k.remove(name, retries=20)
        k.close()


def test_blkdiscard_shrinks_the_loop_file(dm_store):
    for discard, should_shrink in (("true", True), ("false", False)):
        drv = dm_store(blkdiscard=discard)
        data = drv.ds.pool["data_file"]
        drv.create("img", None)
        drv.create_rw("ctr", "img")
        _fill(os.path.join(drv.get("ctr"), "big"), 48 * MiB)
        drv.put("ctr")
        before = os.stat(data).st_blocks * 512
        drv.remove("ctr")
        after = os.stat(data).st_blocks * 512
        if should_shrink:
            assert after < before - 32 * MiB, (discard, before, after)
        else:
            assert after > before - 8 * MiB, (discard, before, after)
        drv.shutdown()


def test_min_free_space_refuses_new_snapshots(dm_store, dm_home):
    home = os.path.join(dm_home, "full")
    drv = dm_store(home=home, loopdatasize="256M")
    drv.create("img", None)
    _fill(os.path.join(drv.get("img"), "data"), 48 * MiB)
    drv.put("img")
    drv.shutdown()
    strict = dm_store(home=home, loopdatasize="256M", min_free_space="90%")
    with pytest.raises(StorageError) as e:
        strict.create_rw("ctr", "img")
    msg = str(e.value)
    assert "below dm.min_free_space=90%" in msg and "refusing to create a new device" in msg
    assert not strict.exists("ctr")
    relaxed = dm_store(home=home, loopdatasize="256M", min_free_space="10%")
    relaxed.create_rw("ctr", "img")
    assert relaxed.exists("ctr")


def test_filling_a_thin_device_is_enospc_and_the_pool_stays_healthy(dm_store):
    drv = dm_store()
    drv.create("img", None)
    drv.create_rw("ctr", "img")
    root = drv.get("ctr")
    with pytest.raises(OSError) as e:
        _fill(os.path.join(root, "fill"), 200 * MiB)  # the device is 64M
    assert e.value.errno == 28  # ENOSPC
    drv.put("ctr")
    st = drv.ds.pool_status()
    assert st["mode"] == "rw" and not st["needs_check"]
    drv.remove("ctr")
    drv.create_rw("ctr2", "img")
    assert os.listdir(drv.get("ctr2")) == []
    drv.put("ctr2")


def test_mount_leaked_into_another_namespace_does_not_block_removal(dm_store):
    drv = dm_store()
    drv.create("img", None)
    drv.create_rw("ctr", "img")
    mp = os.path.dirname(drv.get("ctr"))
    holder = _hold_mounts(mp)  # a container started meanwhile holds a copy of the mount
    try:
        drv.remove("ctr")  # unmount + rmdir of the mount point detach the copy too
        assert not drv.exists("ctr")
        assert drv.ds.dev_name("ctr") not in dm_devices()
        with open(f"/proc/{holder.pid}/mountinfo") as f:
            assert not any(line.split()[4] == mp for line in f)
    finally:
        holder.kill()
        holder.wait()


def test_busy_device_deferred_removal_and_deletion(dm_store):
    drv = dm_store(use_deferred_removal="true", use_deferred_deletion="true")
    drv.create("img", None)
    drv.create_rw("ctr", "img")
    drv.get("ctr")
    fd = os.open(drv.ds.dev_path("ctr"), os.O_RDONLY)  # someone holds the device open
    try:
        drv.remove("ctr")  # does not fail: removal and deletion are deferred
        assert not drv.exists("ctr")
        assert dict(drv.status())["Deferred Deleted Device Count"] == "1"
        assert drv.ds.dev_name("ctr") in dm_devices()
        assert drv.ds.retry_deferred_deletions() == 1  # still busy
    finally:
        os.close(fd)
    for _ in range(100):  # the kernel removes it after the close (from a workqueue)
        if drv.ds.dev_name("ctr") not in dm_devices():
            break
        time.sleep(0.1)
    assert drv.ds.dev_name("ctr") not in dm_devices()
    # the pool lets go of the thin device once the kernel has destroyed its table, a
    # moment after the name is gone: until then a retry leaves it pending
    for _ in range(100):
        if drv.ds.retry_deferred_deletions() == 0:
            break
        time.sleep(0.1)
    assert drv.ds.retry_deferred_deletions() == 0
    assert dict(drv.status())["Deferred Deleted Device Count"] == "0"
    assert drv.ds.meta("img") is not None


def test_busy_device_without_deferral_says_busy(dm_store, monkeypatch):
    import pyrt_storage_dm.metadata as dsmod  # the constant the pool, devices and recovery read

    monkeypatch.setattr(dsmod, "REMOVE_RETRIES", 5)
    drv = dm_store()
    drv.create("img", None)
    drv.get("img")
    fd = os.open(drv.ds.dev_path("img"), os.O_RDONLY)
    try:
        with pytest.raises(StorageError, match="device or resource busy"):
            drv.remove("img")
        assert drv.exists("img")
    finally:
        os.close(fd)
    drv.remove("img")
    assert not drv.exists("img")


# -- crash survival -------------------------------------------------------------------------------
_CREATOR = r"""
import sys
from pyrt_storage_dm.driver import DeviceMapperDriver
drv = DeviceMapperDriver(sys.argv[1], dict(loopdatasize="1G", loopmetadatasize="32M", basesize="64M"))
parent = None
for i in range(10000):
    drv.create(f"layer{i}", parent)
    parent = f"layer{i}"
"""


def test_sigkill_during_layer_creation_recovers(dm_store, dm_home):
    from pyrt_storage_dm.driver import DeviceMapperDriver

    home = os.path.join(dm_home, "killed")
    drv = dm_store(home=home)  # the pool and base exist before the killing starts
    ds = drv.ds
    proc = subprocess.Popen([sys.executable, "-c", _CREATOR, home])
    caught = False
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            metas = [n for n in ds.hashes() if n.startswith("layer")]
            if len(metas) >= 3:
                txn = ds.txn_state()
                if txn["open_transaction_id"] > ds.pool_status()["transaction_id"]:
                    caught = True  # killed inside a transaction
                    break
            if len(metas) >= 25:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # the next command
    nxt = DeviceMapperDriver(home, dict(SMALL))
    st = nxt.ds.pool_status()
    assert nxt.ds.txn_state()["open_transaction_id"] == st["transaction_id"]
    layers = sorted((n for n in nxt.ds.hashes() if n.startswith("layer")),
                    key=lambda n: int(n[5:]))
    recs = {h: nxt.ds.meta(h) for h in nxt.ds.hashes()}
    assert all(r["transaction_id"] <= st["transaction_id"] for r in recs.values())
    assert len({r["device_id"] for r in recs.values()}) == len(recs)
    # the chain is whole: each layer's parent exists, and a new layer goes on top
    for n in layers:
        p = recs[n]["parent"]
        assert p is None or p in recs
    top = layers[-1] if layers else None
    nxt.create("after-crash", top)
    nxt.shutdown()
    pool = nxt.ds.pool
    r = thin_check(pool["metadata_file"])
    assert r.returncode == 0, r.stdout + r.stderr
    ids = thin_device_ids(pool["metadata_file"])
    assert ids == sorted(r["device_id"] for r in [nxt.ds.meta(h) for h in nxt.ds.hashes()]), \
        "orphaned or missing thin devices"
    print(f"killed {'inside' if caught else 'between'} transactions after {len(layers)} layers")
