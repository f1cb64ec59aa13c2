#!/usr/bin/env python3
"""Container create time on btrfs vs overlay, for images of 1, 10 and 50 layers.

Run as root from the repository (after a dev install with the btrfs plugin):

    .venv/bin/python bench/btrfs_create.py [--runs 30] [--layers 1,10,50] [--json]

Makes its own btrfs on a sparse loop file (mkfs.btrfs from btrfs-progs) and
puts both drivers' homes on it (overlay upper directories on btrfs work), so
both use the same disk.  For each layer count it builds a synthetic image
through the driver API as the image store does (``create(id, parent)`` then
``apply_diff`` of a layer tar holding a few small files), then times a
container's writable layer: ``create_rw`` + ``get`` + ``put`` + ``remove``,
and each of those alone.  Prints medians side by side and how the cost grows
per extra layer; removes every layer, unmounts and detaches everything.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time

PHASES = ("create_rw", "get", "put", "remove")


def layer_tar(indices: range, files: int, size: int) -> io.BytesIO:
    """A layer tar: for each index ``files`` small files in /layer<index>/, plus
    /etc/generation (which every layer rewrites)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data=None, dir=False):
            ti = tarfile.TarInfo(name)
            ti.mtime = 1609459200
            if dir:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))

        add("etc", dir=True)
        add("etc/generation", f"{indices[-1]}\n".encode())
        for index in indices:
            add(f"layer{index:03d}", dir=True)
            for j in range(files):
                add(f"layer{index:03d}/f{j:03d}", bytes([65 + j % 26]) * size)
    buf.seek(0)
    return buf


def build_image(driver, prefix: str, layers: int, files: int, size: int,
                flat: bool = False) -> tuple[list[str], float]:
    """Layer ids (bottom first) and build seconds of a ``layers``-layer image;
    ``flat``: the same files in one layer."""
    ids, parent = [], None
    t = time.perf_counter()
    for i in range(1 if flat else layers):
        lid = f"{prefix}-l{i:03d}"
        driver.create(lid, parent)
        driver.apply_diff(lid, parent, layer_tar(range(layers) if flat else range(i, i + 1),
                                                 files, size))
        ids.append(lid)
        parent = lid
    return ids, time.perf_counter() - t


def time_containers(driver, top: str, runs: int, tag: str) -> dict[str, list[float]]:
    """Seconds of each phase and of the whole for ``runs`` containers on image ``top``."""
    samples: dict[str, list[float]] = {p: [] for p in PHASES + ("total",)}
    for n in range(runs):
        cid = f"ctr-{tag}-{n}"
        t0 = time.perf_counter()
        driver.create_rw(cid, top)
        t1 = time.perf_counter()
        root = driver.get(cid)
        t2 = time.perf_counter()
        if not os.path.isfile(os.path.join(root, "etc", "generation")):
            raise SystemExit(f"{driver.name}: container {cid} does not see the image")
        driver.put(cid)
        t3 = time.perf_counter()
        driver.remove(cid)
        t4 = time.perf_counter()
        for p, v in zip(PHASES + ("total",), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            samples[p].append(v)
    return samples


def make_drivers(mnt: str, wanted: list[str]):
    out = {}
    for name in wanted:
        home = os.path.join(mnt, f"{name}-home")
        try:
            if name == "btrfs":
                from pyrt_storage_btrfs.driver import BtrfsDriver as cls
            elif name == "overlay":
                from pyrt_storage_overlay.driver import OverlayDriver as cls
            else:
                from pyrt_core.storage.select import load_driver_class

                cls = load_driver_class(name)
            out[name] = cls(home, {})
        except Exception as e:  # a driver not installed or not usable here
            print(f"{name}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
    return out


def ms(x: float) -> str:
    return f"{x * 1000:8.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="containers timed per image (median)")
    ap.add_argument("--layers", default="1,10,50", help="comma-separated layer counts")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds the runs are split into")
    ap.add_argument("--files", type=int, default=8, help="small files per layer")
    ap.add_argument("--file-size", type=int, default=2048, help="bytes per file")
    ap.add_argument("--drivers", default="btrfs,overlay")
    ap.add_argument("--fs-size", default="4G", help="size of the sparse btrfs loop file")
    ap.add_argument("--no-flat", dest="flat", action="store_false",
                    help="skip the single-layer image holding the largest image's files")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    from pyrt_storage_btrfs.loopfs import LoopBtrfs, LoopFsUnavailable
    from pyrt_storage_btrfs.units import parse_size

    counts = [int(x) for x in a.layers.split(",") if x.strip()]
    # "N flat": the files of the N-layer image in one layer, to tell the cost of
    # layers from the cost of image size
    labels = [str(n) for n in counts] + ([f"{max(counts)} flat"] if a.flat and max(counts) > 1 else [])
    work = tempfile.mkdtemp(prefix="pyrt-bench-btrfs-")
    results: dict = {"layers": labels, "runs": a.runs, "files_per_layer": a.files, "drivers": {}}
    fs = LoopBtrfs(work, size=parse_size(a.fs_size))
    try:
        try:
            fs.open()
        except LoopFsUnavailable as e:
            raise SystemExit(f"cannot make a btrfs: {e}")
        drivers = make_drivers(fs.mountpoint, [d.strip() for d in a.drivers.split(",") if d.strip()])
        if not drivers:
            raise SystemExit("no driver to measure")
        images: dict[tuple[str, str], list[str]] = {}
        try:
            for name, drv in drivers.items():
                per = results["drivers"].setdefault(name, {})
                for label in labels:
                    n, flat = int(label.split()[0]), label.endswith("flat")
                    ids, build = build_image(drv, f"img{n}{'f' if flat else ''}", n, a.files,
                                             a.file_size, flat)
                    images[name, label] = ids
                    per[label] = {"image_build": build}
                    time_containers(drv, ids[-1], 2, "warmup")
            # interleave drivers and images in rounds so drift (btrfs transaction
            # commits, page cache, other load) hits every combination alike
            rounds = max(1, min(a.rounds, a.runs))
            samples = {key: {p: [] for p in PHASES + ("total",)} for key in images}
            for r in range(rounds):
                k = a.runs // rounds + (1 if r < a.runs % rounds else 0)
                for (name, label), ids in images.items():
                    got = time_containers(drivers[name], ids[-1], k,
                                          f"{label.replace(' ', '')}-{r}")
                    for p, v in got.items():
                        samples[name, label][p].extend(v)
            for (name, n), per_phase in samples.items():
                for p, v in per_phase.items():
                    results["drivers"][name][n][p] = statistics.median(v)
                q = statistics.quantiles(per_phase["total"], n=4) if len(per_phase["total"]) > 1 else [0, 0, 0]
                results["drivers"][name][n]["total_p25"], results["drivers"][name][n]["total_p75"] = q[0], q[2]
            for (name, n), ids in images.items():
                for lid in reversed(ids):
                    drivers[name].remove(lid)
        finally:
            for drv in drivers.values():
                drv.cleanup()
    finally:
        fs.close()
        shutil.rmtree(work, ignore_errors=True)

    names = list(results["drivers"])
    print(f"Container writable layer: create_rw + get + put + remove, median of {a.runs} (ms), "
          "[p25-p75]")
    print(f"host kernel {os.uname().release}; both homes on one loop-backed btrfs; "
          f"{a.files} files x {a.file_size} B per layer")
    head = f"{'layers':>7} | " + " | ".join(f"{n:>24}" for n in names)
    if len(names) == 2:
        head += f" | {names[0]}/{names[1]:<7}"
    print(head)
    print("-" * len(head))
    for n in labels:
        row = f"{n:>7} | " + " | ".join(
            f"{ms(results['drivers'][d][n]['total'])} [{results['drivers'][d][n]['total_p25'] * 1000:5.2f}-"
            f"{results['drivers'][d][n]['total_p75'] * 1000:5.2f}]" for d in names)
        if len(names) == 2:
            t0, t1 = (results["drivers"][d][n]["total"] for d in names)
            row += f" | {t0 / t1:8.2f}x"
        print(row)
    print()
    print("Per phase (ms):")
    print(f"{'driver':>8} {'layers':>7} " + " ".join(f"{p:>9}" for p in PHASES) + f" {'image build':>12}")
    for d in names:
        for n in labels:
            r = results["drivers"][d][n]
            print(f"{d:>8} {n:>7} " + " ".join(f"{r[p] * 1000:9.2f}" for p in PHASES)
                  + f" {r['image_build'] * 1000:12.1f}")
    if len(counts) >= 2:
        lo, hi = min(counts), max(counts)
        print()
        print(f"Growth from {lo} to {hi} layers (per extra layer):")
        for d in names:
            a0, a1 = results["drivers"][d][str(lo)]["total"], results["drivers"][d][str(hi)]["total"]
            slope = (a1 - a0) / (hi - lo)
            print(f"  {d:>8}: {ms(a0).strip()} -> {ms(a1).strip()} ms, "
                  f"{slope * 1e6:+.1f} us/layer ({a1 / a0:.2f}x)"
                  + (f"; {hi} layers flattened into one: "
                     f"{ms(results['drivers'][d][f'{hi} flat']['total']).strip()} ms"
                     if f"{hi} flat" in results["drivers"][d] else ""))
    if a.json:
        print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
