#!/usr/bin/env python3
"""The wall-clock figures of pyrt-cgroups' limits, which the tests no longer assert.

Run as root from the repository (after a dev install with the cgroups plugin):

    .venv/bin/python bench/cgroup_effects.py [--seconds 3]

The tests (plugins/cgroups/tests: privileged/test_cgroups_host.py, vm/test_cgroups_v2_vm.py) check
the limits by the kernel's own counters (CPU time per CFS period, throttled periods,
bytes written, a rate limit's minimum duration), which no busy machine can make fail.
The shares and rates over a wall-clock window, which a busy machine does change, are
printed here instead:

1. CPU: the share of a CPU a busy loop gets under ``--cpus 0.5`` and ``--cpus 0.2``
   (two loops in the cgroup, so the quota and not one CPU is the bound).
2. Block I/O: 4 MiB of direct writes to a loop device under ``--device-write-bps
   1mb``, and the same write unthrottled.

Every cgroup, process and loop device it makes is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from pyrt_cgroups.api import Cgroup
from pyrt_core.runtime.config import Resources

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
MiB = 1 << 20


def _usage_ns(cg) -> int:
    paths = cg.paths
    if "cpuacct" in paths:
        with open(os.path.join(paths["cpuacct"], "cpuacct.usage")) as f:
            return int(f.read())
    with open(os.path.join(paths["unified"], "cpu.stat")) as f:
        return 1000 * int(next(line for line in f if line.startswith("usage_usec")).split()[1])


def cpu_share(quota_us: int, seconds: float) -> float:
    cg = Cgroup.create(f"bench-cpu-{uuid.uuid4().hex[:8]}",
                       Resources(cpu_quota=quota_us, cpu_period=100000))
    procs = []
    try:
        procs = [cg.popen([BUSYBOX, "sh", "-c", "while :; do :; done"]) for _ in range(2)]
        time.sleep(0.5)
        u0, t0 = _usage_ns(cg), time.monotonic()
        time.sleep(seconds)
        return (_usage_ns(cg) - u0) / ((time.monotonic() - t0) * 1e9)
    finally:
        cg.remove()
        for p in procs:
            p.wait()


def write_rates() -> tuple[float, float]:
    work = tempfile.mkdtemp(prefix="pyrt-bench-blkio-")
    img = os.path.join(work, "disk.img")
    with open(img, "wb") as f:
        f.truncate(64 * MiB)
    dev = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True,
                         check=True).stdout.strip()
    dd = [BUSYBOX, "dd", "if=/dev/zero", f"of={dev}", "bs=64k", "count=64", "oflag=direct"]
    try:
        st = os.stat(dev)
        cg = Cgroup.create(f"bench-io-{uuid.uuid4().hex[:8]}", Resources(
            blkio_throttle={"throttleWriteBpsDevice": [(os.major(st.st_rdev), os.minor(st.st_rdev), MiB)]}))
        try:
            t0 = time.monotonic()
            p = cg.popen(dd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p.wait()
            limited = time.monotonic() - t0
        finally:
            cg.remove()
        t0 = time.monotonic()
        subprocess.run(dd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        free = time.monotonic() - t0
        return 4 / limited, 4 / free
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU measurement window")
    args = ap.parse_args()
    for cpus, quota in ((0.5, 50000), (0.2, 20000)):
        print(f"--cpus {cpus}: two busy loops got {cpu_share(quota, args.seconds):.3f} CPU "
              f"over {args.seconds:.1f}s")
    limited, free = write_rates()
    print(f"--device-write-bps 1mb: {limited:.2f} MiB/s; unthrottled {free:.1f} MiB/s")


if __name__ == "__main__":
    main()
