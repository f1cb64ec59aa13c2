#!/usr/bin/env python3
"""Container create time on devicemapper vs overlay, for images of 1, 10 and 50 layers.

Needs device-mapper (dm-thin), so it runs in the VM tier.  From the host:

    .venv/bin/python bench/dm_create.py --boot [--runs 10]

boots Debian's kernel once under qemu (TCG, with ``.venv-vm/bin/vng`` as
``scripts/test-vm`` sets it up, else ``vng`` from PATH), runs this script
inside with the same interpreter and arguments and prints its output.  Inside the VM (or on any host with
dm-thin) run it without ``--boot``.

Both drivers' homes are on one tmpfs (the guest's /tmp is an overlay,
which cannot hold overlay upper directories); the thin pool sits on sparse
loop files on that tmpfs.  For each layer count a synthetic image is built
through the driver API as the image store does (``create(id, parent)`` and
``apply_diff``), then a container's writable layer is timed:
``create_rw`` + ``get`` + ``put`` + ``remove``, and each phase alone.
Figures under TCG are only meaningful relative to each other (same boot,
same emulated CPU).  Everything is removed at the end: mounts, thin
devices, the pool, its loop devices and the tmpfs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from btrfs_create import PHASES, build_image, ms, time_containers  # noqa: E402  (same tooling)

DM_OPTIONS = {"loopdatasize": "4G", "loopmetadatasize": "64M", "basesize": "256M"}


def boot(argv: list[str]) -> int:
    """Run this script inside the VM tier and print what it prints."""
    from benchlib import run_in_vm

    return run_in_vm("dm_create.py", argv, "pyrt-bench-dm-",
                     setup="modprobe loop; modprobe dm_thin_pool; ")


def make_drivers(base: str, wanted: list[str]):
    out = {}
    for name in wanted:
        home = os.path.join(base, f"{name}-home")
        try:
            if name == "devicemapper":
                from pyrt_storage_dm.driver import DeviceMapperDriver

                out[name] = DeviceMapperDriver(home, dict(DM_OPTIONS))
            elif name == "overlay":
                from pyrt_storage_overlay.driver import OverlayDriver

                out[name] = OverlayDriver(home, {})
            else:
                from pyrt_core.storage.select import load_driver_class

                out[name] = load_driver_class(name)(home, {})
        except Exception as e:  # not installed or not usable here
            print(f"{name}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot", action="store_true", help="run inside the VM tier (from the host)")
    ap.add_argument("--runs", type=int, default=10, help="containers timed per image (median)")
    ap.add_argument("--layers", default="1,10,50", help="comma-separated layer counts")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds the runs are split into")
    ap.add_argument("--files", type=int, default=4, help="small files per layer")
    ap.add_argument("--file-size", type=int, default=2048, help="bytes per file")
    ap.add_argument("--drivers", default="devicemapper,overlay")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    a = ap.parse_args()
    if a.boot:
        return boot([x for x in sys.argv[1:] if x != "--boot"])
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    if not os.path.exists("/dev/mapper/control"):
        raise SystemExit("no device-mapper here: run with --boot from the host (the VM tier)")
    counts = [int(x) for x in a.layers.split(",") if x.strip()]
    labels = [str(n) for n in counts]
    work = tempfile.mkdtemp(prefix="pyrt-bench-dm-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500m", "pyrt-bench", work], check=True)
    results: dict = {"layers": labels, "runs": a.runs, "files_per_layer": a.files, "drivers": {}}
    try:
        drivers = make_drivers(work, [d.strip() for d in a.drivers.split(",") if d.strip()])
        if not drivers:
            raise SystemExit("no driver to measure")
        images: dict[tuple[str, str], list[str]] = {}
        try:
            for name, drv in drivers.items():
                per = results["drivers"].setdefault(name, {})
                for label in labels:
                    n = int(label)
                    ids, build = build_image(drv, f"img{n}", n, a.files, a.file_size)
                    images[name, label] = ids
                    per[label] = {"image_build": build}
                    time_containers(drv, ids[-1], 1, f"warmup{n}")
            rounds = max(1, min(a.rounds, a.runs))
            samples = {key: {p: [] for p in PHASES + ("total",)} for key in images}
            for r in range(rounds):
                k = a.runs // rounds + (1 if r < a.runs % rounds else 0)
                for (name, label), ids in images.items():
                    got = time_containers(drivers[name], ids[-1], k, f"{label}-{r}")
                    for p, v in got.items():
                        samples[name, label][p].extend(v)
            for (name, n), per_phase in samples.items():
                for p, v in per_phase.items():
                    results["drivers"][name][n][p] = statistics.median(v)
            for (name, n), ids in images.items():
                for lid in reversed(ids):
                    drivers[name].remove(lid)
        finally:
            for drv in drivers.values():
                if hasattr(drv, "shutdown"):
                    drv.shutdown()
                else:
                    drv.cleanup()
    finally:
        subprocess.run(["umount", work], check=False)
        shutil.rmtree(work, ignore_errors=True)

    names = list(results["drivers"])
    print(f"Container writable layer: create_rw + get + put + remove, median of {a.runs} (ms)")
    print(f"kernel {os.uname().release} (VM tier, qemu TCG: compare ratios, not absolute times); "
          f"homes on one tmpfs; {a.files} files x {a.file_size} B per layer")
    head = f"{'layers':>7} | " + " | ".join(f"{n:>14}" for n in names)
    if len(names) == 2:
        head += f" | {names[0]}/{names[1]}"
    print(head)
    print("-" * len(head))
    for n in labels:
        row = f"{n:>7} | " + " | ".join(f"{ms(results['drivers'][d][n]['total']):>14}" for d in names)
        if len(names) == 2:
            t0, t1 = (results["drivers"][d][n]["total"] for d in names)
            row += f" | {t0 / t1:8.2f}x"
        print(row)
    print()
    print("Per phase (ms):")
    print(f"{'driver':>13} {'layers':>7} " + " ".join(f"{p:>9}" for p in PHASES) + f" {'image build':>12}")
    for d in names:
        for n in labels:
            r = results["drivers"][d][n]
            print(f"{d:>13} {n:>7} " + " ".join(f"{r[p] * 1000:9.2f}" for p in PHASES)
                  + f" {r['image_build'] * 1000:12.1f}")
    if len(counts) >= 2:
        lo, hi = min(counts), max(counts)
        print()
        print(f"Growth from {lo} to {hi} layers (per extra layer):")
        for d in names:
            a0, a1 = results["drivers"][d][str(lo)]["total"], results["drivers"][d][str(hi)]["total"]
            print(f"  {d:>13}: {ms(a0).strip()} -> {ms(a1).strip()} ms, "
                  f"{(a1 - a0) / (hi - lo) * 1e6:+.1f} us/layer ({a1 / a0:.2f}x)")
    if a.json:
        print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
