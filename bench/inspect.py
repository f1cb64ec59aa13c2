#!/usr/bin/env python3
"""``ps`` and ``inspect -f`` with many containers, beside podman (issue 16).

Run as root from the repository (after scripts/quickstart or a dev install):

    .venv/bin/python bench/inspect.py [--containers 200] [--runs 10] [--skip-podman]

N containers are *created* (not started: ps and inspect read records, and a created
container has one like any other) from the busybox image scripts/build-demo-image builds
offline, in pyrt and in podman 4 (``--root``/``--runroot`` under a private temporary
directory, runc, overlay, ``--network none``).  Then, engines taking turns, medians of:

- ``ps -a`` (the default table of all N),
- ``ps -a --format '{{.Names}}'`` (the template path),
- ``inspect -f '{{.State.Pid}}' ONE`` (one container among N),
- ``inspect -f '{{.State.Pid}}' ALL`` (all N in one call),
- ``inspect -f '{{json .Config}}' ONE`` (a template that reads the image's config),
- ``inspect ONE`` (the whole document, as JSON).

Both stores are removed at the end (podman's with ``system reset``, then the directory
with whatever is mounted under it).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# bench/ is on sys.path when run as a script
from benchlib import ENGINE_ENV, cleanup_work, podman_command, podman_reset, run, timed

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--pyrt", default=os.path.join(REPO, ".venv/bin/pyrt"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    work = tempfile.mkdtemp(prefix="pyrt-bench-inspect-")
    layout = os.path.join(work, "layout")
    engines: dict[str, tuple[list, str]] = {}
    pbase = None
    try:
        subprocess.run([os.path.join(REPO, "scripts/build-demo-image"), layout, "latest"], check=True,
                       stdout=subprocess.DEVNULL)
        base = [a.pyrt, "--root", os.path.join(work, "pyrt-root"), "--runroot",
                os.path.join(work, "pyrt-run")]
        iid = run(base + ["load", "-q", "-i", layout]).split()[0]
        engines["pyrt"] = (base, iid)
        if not a.skip_podman and shutil.which("podman") and shutil.which("runc"):
            pbase = podman_command(work, "overlay", runtime="runc")
            subprocess.run(pbase + ["pull", "-q", f"oci:{layout}:latest"], check=True,
                           stdout=subprocess.DEVNULL)
            img = run(pbase + ["images", "-q"]).split()[0]
            engines["podman"] = (pbase, img)
        else:
            print("podman skipped (apt-get install podman runc)")
        for label, (b, image) in engines.items():
            t = time.perf_counter()
            for i in range(a.containers):
                run(b + ["create", "--name", f"c{i:03d}", "--network", "none", image, "true"])
            print(f"{label}: created {a.containers} containers in {time.perf_counter() - t:.1f} s")
        names = [f"c{i:03d}" for i in range(a.containers)]
        one = names[len(names) // 2]
        cases = {
            "ps -a": lambda b: b + ["ps", "-a"],
            "ps -a --format {{.Names}}": lambda b: b + ["ps", "-a", "--format", "{{.Names}}"],
            "inspect -f {{.State.Pid}} ONE": lambda b: b + ["inspect", "-f", "{{.State.Pid}}", one],
            f"inspect -f {{{{.State.Pid}}}} ALL({a.containers})":
                lambda b: b + ["inspect", "-f", "{{.State.Pid}}"] + names,
            "inspect -f {{json .Config}} ONE": lambda b: b + ["inspect", "-f", "{{json .Config}}", one],
            "inspect ONE": lambda b: b + ["inspect", one],
        }
        # sanity: both list N, and the template prints one line per container
        for label, (b, _) in engines.items():
            assert len(run(b + ["ps", "-a", "-q"]).split()) == a.containers, label
            assert len(run(cases["inspect -f {{.State.Pid}} ONE"](b)).split()) == 1, label
        res: dict[str, dict[str, list[float]]] = {k: {e: [] for e in engines} for k in cases}
        for label, (b, _) in engines.items():  # warm caches once
            for make in cases.values():
                run(make(b))
        for _ in range(a.runs):
            for case, make in cases.items():
                for label, (b, _) in engines.items():
                    res[case][label].append(timed(make(b)))
    finally:
        for label, (b, _) in engines.items():
            if label == "pyrt":
                ids = subprocess.run(b + ["ps", "-aq"], capture_output=True, text=True,
                                     env=ENGINE_ENV).stdout.split()
                if ids:
                    subprocess.run(b + ["rm", "-f"] + ids, capture_output=True, env=ENGINE_ENV)
        if pbase:
            podman_reset(pbase)
        cleanup_work(work)
    print(f"median of {a.runs} runs (ms) with {a.containers} created containers, engines taking turns:")
    labels = list(engines)
    print(f"  {'':<34}" + "".join(f"{k:>10}" for k in labels) + ("   pyrt/podman" if len(labels) > 1 else ""))
    for case, per in res.items():
        med = {k: statistics.median(v) * 1000 for k, v in per.items()}
        line = f"  {case:<34}" + "".join(f"{med[k]:10.0f}" for k in labels)
        if "podman" in med:
            line += f"   {med['pyrt'] / med['podman']:8.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
