#!/usr/bin/env python3
"""``pyrt volume ls`` with 200 volumes beside ``podman volume ls`` with 200.

Run as root from the repository (after scripts/quickstart or a dev install):

    .venv/bin/python bench/volumes.py [--volumes 200] [--runs 20] [--skip-podman]

Each engine gets a private store under one temporary directory (podman its own
``--root``/``--runroot``, as bench/lifecycle.py runs it); N volumes are created in each
(``volume create`` of the local driver, no options), then ``volume ls`` is timed, the
engines taking turns, and the medians printed with their ratio; ``volume ls -q`` and
``volume inspect`` of one volume too.  Everything is removed at the end (``volume
prune -a``, ``podman system reset``, then the work directory).  Time ``pyrt`` with
bytecode cached (the environment below drops PYTHONDONTWRITEBYTECODE, as pip
byte-compiles an installed package).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

# bench/ is on sys.path when run as a script
from benchlib import cleanup_work, podman_command, podman_reset, run, timed

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=200)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--pyrt", default=os.path.join(REPO, ".venv/bin/pyrt"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    work = tempfile.mkdtemp(prefix="pyrt-bench-vol-")
    engines: dict[str, list[str]] = {
        "pyrt": [a.pyrt, "--root", os.path.join(work, "pyrt-root"),
                 "--runroot", os.path.join(work, "pyrt-run")]}
    if not a.skip_podman and shutil.which("podman"):
        engines["podman"] = podman_command(work, "vfs")
    elif not a.skip_podman:
        print("podman skipped (apt-get install podman)")
    times: dict[str, dict[str, list[float]]] = {e: {} for e in engines}
    try:
        for base in engines.values():
            for i in range(a.volumes):
                run(base + ["volume", "create", f"bench-vol-{i:04d}"])
            out = run(base + ["volume", "ls", "-q"]).split()
            if len(out) != a.volumes:
                raise SystemExit(f"{base[0]} lists {len(out)} volumes, not {a.volumes}")
        cases = {"volume ls": ["volume", "ls"], "volume ls -q": ["volume", "ls", "-q"],
                 "volume inspect": ["volume", "inspect", "bench-vol-0100"]}
        for base in engines.values():  # warm both (caches, page cache)
            for args in cases.values():
                timed(base + args)
        for _ in range(a.runs):
            for name, base in engines.items():
                for case, args in cases.items():
                    times[name].setdefault(case, []).append(timed(base + args))
        for name, base in engines.items():
            # podman 4's prune takes every unused volume; docker 23+ and pyrt need -a
            run(base + ["volume", "prune", "-f"] + (["-a"] if name == "pyrt" else []))
            left = run(base + ["volume", "ls", "-q"]).split()
            if left:
                raise SystemExit(f"{base[0]} left volumes: {left[:3]}...")
    finally:
        if "podman" in engines:
            podman_reset(engines["podman"])
        cleanup_work(work)
    print(f"{a.volumes} volumes, median of {a.runs} runs (ms), engines taking turns:")
    cases = list(next(iter(times.values())))
    print(f"  {'':<16}" + "".join(f"{c:>16}" for c in cases))
    med = {e: {c: statistics.median(v) for c, v in t.items()} for e, t in times.items()}
    for e, m in med.items():
        print(f"  {e:<16}" + "".join(f"{m[c] * 1000:16.1f}" for c in cases))
    if "podman" in med:
        print(f"  {'pyrt / podman':<16}" + "".join(
            f"{med['pyrt'][c] / med['podman'][c]:16.2f}" for c in cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
