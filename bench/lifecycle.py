#!/usr/bin/env python3
"""Detached container lifecycle beside podman: latency and the monitor's memory.

Run as root from the repository (after scripts/quickstart or a dev install):

    .venv/bin/python bench/lifecycle.py [--runs 10] [--containers 50] [--skip-podman]

1. Latency: ``run -d`` + ``stop`` + ``rm`` of the same busybox image (built offline by
   scripts/build-demo-image), pyrt vs podman 4 + runc, both with ``--network none``
   (like with like), or with ``--network default`` each engine's default network (pyrt's
   bridge with pyrt-network installed, podman's netavark bridge).  The container exits
   on SIGTERM, so ``stop`` measures the engine, not a stop timeout.  Medians of each
   step and of the total.
2. Memory: N idle containers (``sleep``) under each engine; the proportional set
   size (PSS, /proc/PID/smaps_rollup) of the monitors, per container.  Both engines
   use conmon as the monitor; pyrt's conmon drives ``pyrt-runtime``, podman's runc.

``--compare PYTHONPATH`` adds the same pyrt run with another source tree first on the
path, for before/after figures from one run::

    git archive HEAD~3 | tar -x -C /tmp/old
    bench/lifecycle.py --compare /tmp/old/core/src:/tmp/old/plugins/namespaces/src:...

``--compare-pyrt PROGRAM`` adds another installed ``pyrt`` (e.g. the ``.venv/bin/pyrt`` of
a ``git worktree`` of the old tree with its own venv): its own scripts and wrappers count.

The floor: each step's interpreter starts (``STARTS``, docs/lifecycle.md) times the start of
pyrt's interpreter doing nothing (``python -c pass``, the interpreter of its ``#!`` line),
printed beside the steps, as are the ratios to podman.

Both stores are private temporary directories, removed at the end; podman's exit
commands (``podman container cleanup``) are waited for first, as they mount the store's
``overlay`` directory again after ``system reset``; with ``leakcheck`` (the shared tool,
``--leakcheck``) a snapshot before and a comparison after check that nothing is left.
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

from benchlib import ENGINE_ENV as ENV  # bench/ is on sys.path when run as a script
from benchlib import cleanup_work, interpreter_start, settle
from benchlib import timed_output as timed

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TRAP = ["sh", "-c", 'trap "exit 0" TERM; sleep 100000 & wait']
#: interpreter starts of each step of this tree's pyrt (docs/lifecycle.md): run -d = the
#: CLI + pyrt-runtime create under conmon; stop = the CLI (conmon's exit command is
#: skipped: stop cleans up); rm = the CLI
STARTS = {"run -d": 2, "stop": 1, "rm": 1}
LEAKCHECK = "/work/shared/tools/leakcheck"


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def monitors(marker: str) -> list[int]:
    """conmon processes whose command line mentions ``marker`` (a store's run root)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"conmon" and marker.encode() in b" ".join(argv):
            out.append(int(pid))
    return out





#: what the engines' default networks leave on the host after their last container: the
#: bridges and the nftables tables of pyrt-network (per store: ``pyrt0-<tag>``, ``inet
#: pyrt-<tag>``; an older pyrt's ``pyrt0``, ``inet pyrt``) and of podman's netavark
DEFAULT_BRIDGES = ("pyrt0", "podman0")
DEFAULT_TABLES = (("inet", "pyrt"), ("inet", "netavark"))


def _ours(name: str, names) -> bool:
    return name in names or any(name.startswith(n + "-") for n in names if n.startswith("pyrt"))


def host_network_objects() -> set[tuple[str, str]]:
    """The engines' default bridges and nftables tables present now."""
    have = {("link", n) for n in os.listdir("/sys/class/net") if _ours(n, DEFAULT_BRIDGES)}
    if shutil.which("nft"):
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "table" and _ours(parts[2], [t for f, t in DEFAULT_TABLES
                                                                             if f == parts[1]]):
                have.add((parts[1], parts[2]))
    return have


def remove_default_networks(before: set[tuple[str, str]]) -> None:
    """Remove the bridges and tables the default networks made during the bench (the
    engines keep them for their next container): only those that were not there before."""
    for kind, name in host_network_objects() - before:
        argv = ["ip", "link", "del", name] if kind == "link" else ["nft", "delete", "table", kind, name]
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def lifecycle(engines: dict, runs: int) -> dict:
    """``engines``: name -> (run_d, stop, rm) argv makers.  The engines take turns run by
    run, so a change in the machine's load hits both alike."""
    steps = {name: {"run -d": [], "stop": [], "rm": [], "total": []} for name in engines}
    for i in range(runs):
        for name, (run_d, stop, rm) in engines.items():
            t1, cid = timed(run_d(f"bench{i}"))
            t2, _ = timed(stop(cid))
            t3, _ = timed(rm(cid))
            for k, v in (("run -d", t1), ("stop", t2), ("rm", t3), ("total", t1 + t2 + t3)):
                steps[name][k].append(v)
    return {name: {k: statistics.median(v) for k, v in st.items()} for name, st in steps.items()}


def idle_memory(run_d, rm_all, marker, n):
    for i in range(n):
        timed(run_d(f"idle{i}"))
    time.sleep(2)
    mons = monitors(marker)
    total = sum(pss_kib(p) for p in mons)
    rm_all()
    return len(mons), total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--network", default="none",
                    help="the network of every container of both engines (default: none, like "
                         "with like); `default`: each engine's default network")
    ap.add_argument("--pyrt", default=os.path.join(REPO, ".venv/bin/pyrt"))
    ap.add_argument("--compare", metavar="PYTHONPATH", default=None,
                    help="also time the same pyrt with this PYTHONPATH (e.g. the src dirs of an "
                         "older tree from `git archive`): before/after in one run")
    ap.add_argument("--compare-pyrt", metavar="PROGRAM", default=None,
                    help="also time this other pyrt program (an older tree's venv): before/after "
                         "in one run, with its own start-up")
    ap.add_argument("--leakcheck", default=LEAKCHECK if os.access(LEAKCHECK, os.X_OK) else
                    shutil.which("leakcheck"),
                    help="the leakcheck tool (snapshot before, compare after); default: "
                         f"{LEAKCHECK} or leakcheck on PATH")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    snap = None
    if a.leakcheck:
        fd, snap = tempfile.mkstemp(prefix="pyrt-bench-lc-leaks-")
        os.close(fd)
        subprocess.run([a.leakcheck, "snapshot", snap], check=True, stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="pyrt-bench-lc-")
    net_before = host_network_objects()
    layout = os.path.join(work, "layout")
    net = [] if a.network == "default" else ["--network", a.network]
    engines: dict[str, tuple] = {}
    memory: dict[str, tuple] = {}
    mem: dict[str, tuple[int, int]] = {}
    res: dict[str, dict] = {}
    try:
        subprocess.run([os.path.join(REPO, "scripts/build-demo-image"), layout, "latest"], check=True,
                       stdout=subprocess.DEVNULL)
        # -- pyrt (and the tree to compare with)
        variants = [("pyrt", [], a.pyrt)]
        if a.compare:
            variants.append(("pyrt (compare)", ["env", f"PYTHONPATH={a.compare}"], a.pyrt))
        if a.compare_pyrt:
            variants.append(("pyrt (before)", [], a.compare_pyrt))
        for n, (label, prefix, program) in enumerate(variants):
            tag = "pyrt" if label == "pyrt" else f"cmp{n}"
            prun = os.path.join(work, f"{tag}-run")
            base = prefix + [program, "--root", os.path.join(work, f"{tag}-root"), "--runroot", prun]
            iid = timed(base + ["load", "-q", "-i", layout])[1].split()[0]
            _, warm = timed(base + ["run", "-d"] + net + [iid] + TRAP)
            timed(base + ["rm", "-f", warm])
            engines[label] = (lambda n, base=base, iid=iid: base + ["run", "-d", "--name", n] + net + [iid] + TRAP,
                              lambda c, base=base: base + ["stop", c],
                              lambda c, base=base: base + ["rm", c])

            def pyrt_rm_all(base=base):
                ids = subprocess.run(base + ["ps", "-aq"], capture_output=True, text=True,
                                     env=ENV).stdout.split()
                if ids:
                    subprocess.run(base + ["rm", "-f"] + ids, capture_output=True, env=ENV)

            if label == "pyrt":
                memory["pyrt (conmon + pyrt-runtime)"] = (
                    lambda n, base=base, iid=iid: base + ["run", "-d", "--name", n] + net + [iid, "sleep", "100000"],
                    pyrt_rm_all, prun)
        # -- podman + runc
        pbase = None
        if not a.skip_podman and shutil.which("podman") and shutil.which("runc"):
            qrun = os.path.join(work, "podman-run")
            pbase = ["podman", "--root", os.path.join(work, "podman-root"), "--runroot", qrun,
                     "--runtime", "runc", "--storage-driver", "overlay"]
            subprocess.run(pbase + ["pull", "-q", f"oci:{layout}:latest"], check=True,
                           stdout=subprocess.DEVNULL)
            img = subprocess.run(pbase + ["images", "-q"], check=True, capture_output=True,
                                 text=True).stdout.split()[0]
            opts = net + ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"]
            warm = subprocess.run(pbase + ["run", "-d"] + opts + [img] + TRAP, check=True,
                                  capture_output=True, text=True).stdout.strip()
            subprocess.run(pbase + ["rm", "-f", warm], check=True, capture_output=True)
            engines["podman+runc"] = (lambda n: pbase + ["run", "-d", "--name", n] + opts + [img] + TRAP,
                                      lambda c: pbase + ["stop", c], lambda c: pbase + ["rm", c])

            def podman_rm_all():
                subprocess.run(pbase + ["rm", "-af", "-t", "0"], capture_output=True)

            memory["podman (conmon + runc)"] = (
                lambda n: pbase + ["run", "-d", "--name", n] + opts + [img, "sleep", "100000"],
                podman_rm_all, qrun)
        else:
            print("podman skipped (apt-get install podman runc)")
        res = lifecycle(engines, a.runs)
        for label, (run_d, rm_all, marker) in memory.items():
            mem[label] = idle_memory(run_d, rm_all, marker, a.containers)
        if pbase:
            settle(work)
            subprocess.run(pbase + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    finally:
        settle(work)
        cleanup_work(work)
        remove_default_networks(net_before)
    interpreter, start = interpreter_start(a.pyrt)
    leaks = None
    if snap:
        r = subprocess.run([a.leakcheck, "compare", snap], capture_output=True, text=True)
        os.unlink(snap)
        leaks = r.stdout.strip() if r.returncode else ""
    steps = ("run -d", "stop", "rm", "total")
    starts = dict(STARTS, total=sum(STARTS.values()))
    print(f"latency, median of {a.runs} runs (ms), engines taking turns, network {a.network}:")
    print(f"  {'':<20}" + "".join(f"{s:>9}" for s in steps))
    for k, v in res.items():
        print(f"  {k:<20}" + "".join(f"{v[s] * 1000:9.0f}" for s in steps))
    print(f"  {'floor':<20}" + "".join(f"{starts[s] * start * 1000:9.0f}" for s in steps)
          + f"   (interpreter starts {'/'.join(str(starts[s]) for s in steps)} x "
            f"{start * 1000:.1f} ms, `{interpreter} -c pass`)")
    peer = res.get("podman+runc")
    for k, v in res.items():
        if k == "podman+runc":
            continue
        if peer:
            print(f"  {k + ' / podman':<20}" + "".join(f"{v[s] / peer[s]:9.2f}" for s in steps))
        if k == "pyrt":  # STARTS are this tree's
            print(f"  {k + ' / floor':<20}" + "".join(f"{v[s] / (starts[s] * start):9.2f}" for s in steps))
    print(f"monitor memory with {a.containers} idle containers (PSS):")
    for k, (n, kib) in mem.items():
        per = kib / max(n, 1)
        print(f"  {k:<30} {n:3d} monitors, {kib / 1024:7.1f} MiB in all, {per / 1024:5.2f} MiB per container")
    if leaks is None:
        print("leakcheck: not run (no leakcheck tool; --leakcheck PATH)")
    elif leaks:
        print("leakcheck: the bench left these behind:\n" + leaks)
        return 1
    else:
        print("leakcheck: nothing left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
