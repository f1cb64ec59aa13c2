#!/usr/bin/env python3
"""Container start-up: `pyrt run --rm IMAGE true` beside podman+runc and plain runc.

Run as root from the repository (after scripts/quickstart or a dev install):

    .venv/bin/python bench/startup.py [--runs 20] [--driver overlay]

All three start the same busybox image (built offline by
scripts/build-demo-image) in one run; prints the median wall time of each and
the ratios, and the floor: pyrt's interpreter starts for ``run --rm`` (one: the CLI
runs the container in-process, docs/lifecycle.md) times the start of its interpreter
doing nothing (``python -c pass``). ``--compare-pyrt PROGRAM`` times another pyrt (an
older tree's venv) in the same run. Peers missing on the machine are skipped with a
note (apt-get install podman runc).
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
import time

from benchlib import cleanup_work  # bench/ is on sys.path when run as a script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
#: interpreter starts of ``pyrt run --rm`` (docs/lifecycle.md)
STARTS = 1
#: pyrt runs without a network, as podman's row it is compared with (`--network none`): the
#: default bridge network's start is bench/network.py's subject
NONE = ["--network", "none"]
# Python may cache bytecode as an installed package does (pip byte-compiles on install):
# a dev shell's PYTHONDONTWRITEBYTECODE would time the compiler
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_time(cmd, runs, env=None):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or ENV)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode().strip()}")
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--driver", default=None, help="pyrt storage driver (default: automatic)")
    ap.add_argument("--pyrt", default=shutil.which("pyrt") or os.path.join(REPO, ".venv/bin/pyrt"))
    ap.add_argument("--compare-pyrt", metavar="PROGRAM", default=None,
                    help="also time this other pyrt program (an older tree's venv) in the same run")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    work = tempfile.mkdtemp(prefix="pyrt-bench-")
    layout = os.path.join(work, "layout")
    results = {}
    try:
        subprocess.run([os.path.join(REPO, "scripts/build-demo-image"), layout, "latest"], check=True,
                       stdout=subprocess.DEVNULL)
        # pyrt
        root = os.path.join(work, "pyrt-root")
        base = [a.pyrt, "--root", root, "--runroot", os.path.join(work, "pyrt-run")]
        if a.driver:
            base += ["--storage-driver", a.driver]
        iid = subprocess.run(base + ["load", "-q", "-i", layout], check=True, capture_output=True,
                             text=True).stdout.split()[0]
        subprocess.run(base + ["run", "--rm"] + NONE + [iid, "true"], check=True, env=ENV)  # warm caches
        results["pyrt run --rm"] = median_time(base + ["run", "--rm"] + NONE + [iid, "true"], a.runs)
        if a.compare_pyrt:
            cbase = [a.compare_pyrt, "--root", os.path.join(work, "cmp-root"), "--runroot",
                     os.path.join(work, "cmp-run")] + (["--storage-driver", a.driver] if a.driver else [])
            ciid = subprocess.run(cbase + ["load", "-q", "-i", layout], check=True, capture_output=True,
                                  text=True).stdout.split()[0]
            subprocess.run(cbase + ["run", "--rm"] + NONE + [ciid, "true"], check=True, env=ENV)
            # taking turns with this tree's, so a change in the machine's load hits both alike
            mine, theirs = [], []
            for _ in range(a.runs):
                mine.append(median_time(base + ["run", "--rm"] + NONE + [iid, "true"], 1))
                theirs.append(median_time(cbase + ["run", "--rm"] + NONE + [ciid, "true"], 1))
            results["pyrt run --rm"] = statistics.median(mine)
            results["pyrt (before) run --rm"] = statistics.median(theirs)

        # podman + runc
        if shutil.which("podman") and shutil.which("runc"):
            proot = os.path.join(work, "podman-root")
            prun = os.path.join(work, "podman-run")
            pbase = ["podman", "--root", proot, "--runroot", prun, "--runtime", "runc",
                     "--storage-driver", "overlay"]
            subprocess.run(pbase + ["pull", "-q", f"oci:{layout}:latest"], check=True, stdout=subprocess.DEVNULL)
            img = subprocess.run(pbase + ["images", "-q"], check=True, capture_output=True, text=True).stdout.split()[0]
            ulimits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"]
            # the same isolation as pyrt's default (no network), and podman's default (bridge)
            for label, net in (("--network none", ["--network", "none"]), ("default network", [])):
                cmd = pbase + ["run", "--rm"] + net + ulimits + [img, "true"]
                subprocess.run(cmd, check=True)
                results[f"podman+runc run --rm ({label})"] = median_time(cmd, a.runs)
            subprocess.run(pbase + ["system", "reset", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            print("podman or runc missing: skipped (apt-get install podman runc)")

        # runc of a prepared bundle
        if shutil.which("runc") and shutil.which("umoci"):
            bundle = os.path.join(work, "bundle")
            subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", bundle], check=True,
                           stdout=subprocess.DEVNULL)
            cfgp = os.path.join(bundle, "config.json")
            with open(cfgp) as f:
                cfg = json.load(f)
            cfg["process"]["args"] = ["true"]
            cfg["process"]["terminal"] = False
            cfg["process"]["rlimits"] = [r for r in cfg["process"].get("rlimits", []) if r["type"] != "RLIMIT_NOFILE"]
            with open(cfgp, "w") as f:
                json.dump(cfg, f)
            rroot = os.path.join(work, "runc-root")
            cmd = ["runc", "--root", rroot, "run", "-b", bundle, "pyrt-bench-runc"]
            results["runc run (bundle)"] = median_time(cmd, a.runs)
    finally:
        cleanup_work(work)
    p = results["pyrt run --rm"]
    interpreter, start = interpreter_start(a.pyrt)
    results[f"floor: {STARTS} interpreter start (python -c pass)"] = STARTS * start
    print(f"median of {a.runs} runs each:")
    for k, v in results.items():
        print(f"  {k:<46} {v * 1000:8.1f} ms   pyrt/this = {p / v:5.2f}")
    print(f"(floor: `{interpreter} -c pass`, the interpreter of pyrt's #! line)")
    return 0


def interpreter_start(program: str, runs: int = 20) -> tuple[str, float]:
    """The interpreter of ``program``'s ``#!`` line and its median start doing nothing."""
    with open(program, "rb") as f:
        first = f.readline().decode(errors="replace")
    interpreter = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    return interpreter, median_time([interpreter, "-c", "pass"], runs)


if __name__ == "__main__":
    sys.exit(main())
