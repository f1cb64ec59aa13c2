"""``ps`` and ``list``: the processes of one container, the containers under the root."""
from __future__ import annotations

import json
import os

from .common import RuntimeFailure, load, oci_state
from .lifecycle import container_pids
from .state import RuntimeState, list_ids


def ps(root: str, cid: str, fmt: str = "table", ps_args=()) -> str:
    """``json``: the host pids as a JSON array; ``table``: ``ps``'s lines for them."""
    _, data = load(root, cid)
    pids = container_pids(data)
    if fmt == "json":
        return json.dumps(pids)
    if fmt != "table":
        raise RuntimeFailure(f"invalid format option {fmt!r}: table or json")
    import subprocess

    argv = ["ps"] + (list(ps_args) or ["-ef"])
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    lines = out.splitlines()
    if not lines or "PID" not in lines[0].split():
        # no ps (or one without a PID column): pid and command line from /proc
        from .. import procutil

        rows = ["PID CMD"] + [f"{p} {procutil.cmdline(p)}" for p in pids]
        return "\n".join(rows)
    col = lines[0].split().index("PID")
    wanted = set(pids)
    rows = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        try:
            if int(fields[col]) in wanted:
                rows.append(line)
        except (IndexError, ValueError):
            continue
    return "\n".join(rows)


def list_(root: str, fmt: str = "table", quiet: bool = False) -> str:
    states = []
    for cid in list_ids(root):
        data = RuntimeState(root, cid).load()
        if data is not None:
            states.append(oci_state(cid, data))
    if quiet:
        return "\n".join(s["id"] for s in states)
    if fmt == "json":
        return json.dumps(states)
    if fmt != "table":
        raise RuntimeFailure(f"invalid format option {fmt!r}: table or json")
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for s in states:
        rows.append((s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                     s["owner"] or ("root" if os.geteuid() == 0 else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)

