"""pyrt on devicemapper through its command line (VM tier): an image loaded and
containers run on a thin pool on loop files; `pyrt info`; per-container size;
dm.min_free_space refusing a container; a container filling its device gets
ENOSPC while the engine stays healthy."""
from __future__ import annotations

import os
import subprocess

import pytest

from dm_fixtures import dm_devices, dm_loaded, wait_loops_detached  # noqa: F401  (fixture)

pytestmark = pytest.mark.vm
OPTS = ["dm.loopdatasize=384M", "dm.loopmetadatasize=16M", "dm.basesize=64M"]
T = 900  # seconds per command: Python is slow under TCG


def flags(*extra):
    out = []
    for o in OPTS + list(extra):
        out += ["--storage-opt", o]
    return out


@pytest.fixture
def dm_cli(dm_loaded, tmp_path, no_leaks):
    """A ``pyrt`` on devicemapper with its own store on a private tmpfs; at teardown
    its containers are removed and the pool deactivated (its loop devices go with it)
    before the store is deleted."""
    from pyrt_core.testing.cli import PyrtCLI

    before = set(dm_devices())
    base = str(tmp_path / "dm-cli")
    os.mkdir(base)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200m,mode=0755", "pyrt-dm-cli", base],
                   check=True)
    cli = PyrtCLI(os.path.join(base, "root"), os.path.join(base, "run"), driver="devicemapper")
    try:
        yield cli
    finally:
        cli.remove_running(timeout=T)
        # the store's pool (its device-mapper devices and loop devices) stays active until
        # the shutdown below; anything else new is a leak of the test or of the engine
        no_leaks.check("left when the test ended, its running containers removed by `pyrt rm -f`",
                       ignore=lambda item: item.startswith(("dm ", "loop ")))
        r = cli("ps", "-aq", "--no-trunc", timeout=T)
        for cid in r.stdout.split():
            cli("rm", "-f", cid, timeout=T)
        home = os.path.join(cli.root, "storage", "devicemapper")
        if os.path.exists(os.path.join(home, "pool.json")):
            from pyrt_storage_dm.driver import DeviceMapperDriver

            DeviceMapperDriver(home, {}).shutdown()
        wait_loops_detached(base)
        cli.cleanup(no_leaks, timeout=T)
        subprocess.run(["umount", base], check=False)
    assert sorted(set(dm_devices()) - before) == []


def test_image_and_containers_on_devicemapper(dm_cli, demo_layout):
    cli = dm_cli
    r = cli(*flags(), "load", "-q", "-i", demo_layout, check=True, timeout=T)
    image = r.stdout.split()[0]
    r = cli(*flags(), "run", "--rm", image, "sh", "-c", "echo hello; cat /proc/mounts | grep ' / '",
            check=True, timeout=T)
    assert "hello" in r.stdout and "ext4" in r.stdout, r.stdout
    info = cli(*flags(), "info", check=True, timeout=T).stdout
    assert "Storage driver: devicemapper" in info
    for key in ("Pool Name:", "Data Space Used:", "Data Space Total: 384 MiB",
                "Metadata Space Total: 16 MiB", "Transaction ID:", "Data loop device: /dev/loop",
                "Data file:", "Thin Pool Minimum Free Space: 10%"):
        assert key in info, key + "\n" + info
    # a container's own size
    r = cli(*flags(), "run", "--rm", "--storage-opt", "size=160M", image, "df", "-k", "/",
            check=True, timeout=T)
    total_kib = int(r.stdout.splitlines()[-1].split()[1])
    assert total_kib > 120 * 1024, r.stdout
    r = cli(*flags(), "run", "--rm", "--storage-opt", "size=16M", image, "true", timeout=T)
    assert r.returncode == 125 and "below the base device size" in r.stderr, r.stderr


def test_pool_exhaustion(dm_cli, demo_layout):
    cli = dm_cli
    image = cli(*flags(), "load", "-q", "-i", demo_layout, check=True, timeout=T).stdout.split()[0]
    # a container that fills its thin device: ENOSPC inside, the engine stays healthy
    r = cli(*flags(), "run", "--rm", image, "sh", "-c",
            "dd if=/dev/zero of=/fill bs=1M count=200 2>&1; echo dd-exit=$?", timeout=T)
    assert "No space left on device" in r.stdout and "dd-exit=1" in r.stdout, r.stdout + r.stderr
    r = cli(*flags(), "run", "--rm", image, "echo", "still-fine", check=True, timeout=T)
    assert "still-fine" in r.stdout
    # fill the pool past 50% with a kept container, then dm.min_free_space=50% refuses
    cli(*flags(), "run", "--name", "filler", "--storage-opt", "size=300M", image, "sh", "-c",
        "dd if=/dev/zero of=/f bs=1M count=220 && sync", check=True, timeout=T)
    r = cli(*flags("dm.min_free_space=50%"), "run", "--rm", image, "true", timeout=T)
    assert r.returncode == 125, r.stdout + r.stderr
    assert "below dm.min_free_space=50%" in r.stderr and "refusing to create a new device" in r.stderr
    info = cli(*flags(), "info", check=True, timeout=T).stdout
    assert "Pool Mode: rw" in info
    cli(*flags(), "rm", "filler", check=True, timeout=T)
    cli(*flags("dm.min_free_space=50%"), "run", "--rm", image, "true", check=True, timeout=T)
