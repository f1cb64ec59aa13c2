"""``pause``, ``unpause``, ``stats``, ``update``: resource control of running containers
(the resource plugin's freezer, statistics and limits)."""
from __future__ import annotations

import sys

from ...errors import UsageError
from ..common import table
from . import each, engine_for


def _p_pause(cmd) -> None:
    pp = cmd("pause", "Pause all processes of containers (cgroup freezer)", cmd_pause)
    pp.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_unpause(cmd) -> None:
    pp = cmd("unpause", "Unpause the processes of paused containers", cmd_unpause)
    pp.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_stats(cmd) -> None:
    stp = cmd("stats", "Show resource usage of running containers", cmd_stats)
    stp.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    stp.add_argument("--format", choices=("table", "json"), default="table")
    stp.add_argument("containers", nargs="*", metavar="CONTAINER", help="default: all running")


def _p_update(cmd) -> None:
    from ..resource_flags import add_resource_flags

    up = cmd("update", "Change the resource limits of running containers", cmd_update)
    add_resource_flags(up)
    up.add_argument("containers", nargs="+", metavar="CONTAINER")


PARSERS = {"pause": _p_pause, "unpause": _p_unpause, "stats": _p_stats, "update": _p_update}


def cmd_pause(args) -> int:
    engine = engine_for(args)
    return each(args.containers, lambda ref: (engine.pause(ref, True), ref)[1])


def cmd_unpause(args) -> int:
    engine = engine_for(args)
    return each(args.containers, lambda ref: (engine.pause(ref, False), ref)[1])


def cmd_update(args) -> int:
    from ..resource_flags import resources_from_args

    rf = resources_from_args(args)
    if rf.devices or rf.cgroup_parent or "devices" in rf.resources:
        raise UsageError("update cannot change --device or --cgroup-parent of a running container")
    if not rf.resources:
        raise UsageError("update needs at least one resource flag (--memory, --cpus, --pids-limit, ...)")
    engine = engine_for(args)
    return each(args.containers, lambda ref: (engine.update(ref, rf.resources), ref)[1])


def _stats_row(c, s: dict, prev_cpu: tuple | None, now_t: float) -> dict:
    cpu_ns = (s.get("cpu") or {}).get("usage_ns") or 0
    cpu_pct = 0.0
    if prev_cpu is not None and now_t > prev_cpu[1]:
        cpu_pct = 100.0 * (cpu_ns - prev_cpu[0]) / ((now_t - prev_cpu[1]) * 1e9)
    mem = s.get("memory") or {}
    pids = s.get("pids") or {}
    blk = s.get("blkio") or {}
    return {"ID": c.short_id, "Name": c.name, "CPUPerc": round(cpu_pct, 2),
            "MemUsage": mem.get("usage", 0), "MemLimit": mem.get("limit"),
            "PIDs": pids.get("current", 0), "BlockRead": blk.get("read_bytes", 0),
            "BlockWrite": blk.get("write_bytes", 0), "_cpu_ns": cpu_ns}


def cmd_stats(args) -> int:
    """docker stats: CPU % is measured over an interval (about 1 s per refresh)."""
    import time

    from ..common import human_size

    engine = engine_for(args)
    if args.containers:
        cs = [engine.containers.get(r) for r in args.containers]
    else:
        cs = [c for c in engine.containers.list() if c.state.status == "running" and engine.is_running(c)]
    prev: dict = {}
    for c in cs:
        s = engine.stats(c)
        prev[c.id] = (((s.get("cpu") or {}).get("usage_ns") or 0), time.monotonic())
    while True:
        time.sleep(1.0)
        rows = []
        for c in cs:
            s = engine.stats(c)
            t = time.monotonic()
            row = _stats_row(c, s, prev.get(c.id), t)
            prev[c.id] = (row.pop("_cpu_ns"), t)
            rows.append(row)
        if args.format == "json":
            import json

            print(json.dumps(rows), flush=True)
        else:
            def lim(v):  # v1 reports "no limit" as a huge number
                return human_size(v) if v and v < 1 << 60 else "--"
            out = [("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "BLOCK I/O")]
            for r in rows:
                out.append((r["ID"], r["Name"], f"{r['CPUPerc']:.2f}%",
                            f"{human_size(r['MemUsage'])} / {lim(r['MemLimit'])}", str(r["PIDs"]),
                            f"{human_size(r['BlockRead'])} / {human_size(r['BlockWrite'])}"))
            if not args.no_stream:
                sys.stdout.write("\x1b[2J\x1b[H" if sys.stdout.isatty() else "")
            table(out)
            sys.stdout.flush()
        if args.no_stream:
            return 0
