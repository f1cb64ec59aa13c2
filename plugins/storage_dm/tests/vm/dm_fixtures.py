"""Fixtures and helpers for the devicemapper tests of the VM tier.

Import with ``from dm_fixtures import *`` (tests/ and tests/vm/ are on
``sys.path`` when pytest runs there).  Outside the VM everything skips.

* :func:`dm_store` - a factory: ``dm_store(**options)`` makes a
  :class:`~pyrt_storage_dm.driver.DeviceMapperDriver` on a fresh home with
  small loop files (data 1G, metadata 32M, base 64M unless given).  At
  teardown each is cleaned up and its pool deactivated (its loop devices
  detach with it), and the test fails if a device-mapper device of its
  pool is left.
* :func:`dm_devices` - names of the active device-mapper devices.
* :func:`thin_check` - ``thin_check`` on a pool's metadata (pool deactivated).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from pyrt_core.testing import machine

IN_VM = os.environ.get("PYRT_IN_VM") == "1"
SMALL = {"loopdatasize": "1G", "loopmetadatasize": "32M", "basesize": "64M"}

__all__ = ["wait_loops_detached", "dm_store", "dm_devices", "thin_check", "thin_device_ids", "SMALL", "IN_VM",
           "dm_loaded", "dm_home"]


@pytest.fixture(scope="session")
def dm_loaded():
    if not IN_VM:
        pytest.skip(machine.reason("vm-tier"))
    for mod in ("loop", "dm_thin_pool"):
        subprocess.run(["modprobe", mod], check=False)
    machine.skip_unless("device-mapper")
    return True


def dm_devices() -> list[str]:
    from pyrt_storage_dm.dm import DeviceMapper

    dm = DeviceMapper()
    try:
        return sorted(n for n, _ in dm.list())
    finally:
        dm.close()


@pytest.fixture
def dm_home(dm_loaded, tmp_path):
    """A directory for driver homes; homes under it are removed at teardown."""
    d = tempfile.mkdtemp(prefix="dm-", dir=str(tmp_path))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dm_store(dm_home):
    from pyrt_storage_dm.driver import DeviceMapperDriver

    made = []
    before = set(dm_devices())

    def make(home=None, **options):
        opts = dict(SMALL)
        opts.update({k: str(v) for k, v in options.items()})
        home = home or os.path.join(dm_home, f"home{len(made)}")
        drv = DeviceMapperDriver(home, opts)
        made.append(drv)
        return drv

    yield make
    for drv in made:
        try:
            drv.shutdown()
        except Exception:  # a test may have broken it on purpose: the safety net below
            pass
    wait_loops_detached(dm_home)
    left = sorted(set(dm_devices()) - before)
    for name in left:
        subprocess.run(["dmsetup", "remove", "--noudevsync", "--retry", name], check=False,
                       capture_output=True)
    assert left == [], f"device-mapper devices left behind: {left}"


def wait_loops_detached(under: str, timeout: float = 5.0) -> None:
    """Autoclear loop devices detach when the pool lets go of them, a moment later."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["losetup", "-a"], capture_output=True, text=True)
        if under not in r.stdout:
            return
        time.sleep(0.1)


def thin_check(metadata_file: str) -> subprocess.CompletedProcess:
    """Run ``thin_check`` on a pool's metadata file (attached read-only to a loop device)."""
    from pyrt_storage_dm import loop

    dev, fd = loop.attach_fd(metadata_file, readonly=True)
    try:
        return subprocess.run(["thin_check", dev], capture_output=True, text=True, timeout=300)
    finally:
        os.close(fd)


def thin_device_ids(metadata_file: str) -> list[int]:
    """The thin device ids recorded in a (deactivated) pool's metadata (``thin_dump``)."""
    import re

    from pyrt_storage_dm import loop

    dev, fd = loop.attach_fd(metadata_file, readonly=True)
    try:
        r = subprocess.run(["thin_dump", dev], capture_output=True, text=True, timeout=300)
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    return sorted(int(m) for m in re.findall(r'<device dev_id="(\d+)"', r.stdout))
