"""``State.Health``: a container's health status, failing streak and last results.

Kept in ``<root>/containers/<id>/health.json`` (docker's ``Health`` object, plus the run
it belongs to), not in the record: the checks update it every interval, and the record's
lock belongs to the lifecycle commands (a check must never wait for a ``stop``, nor a
``stop`` for a check).  Each update takes ``health.lock`` (flock), reads, changes and
replaces the file atomically (temp file + rename), so readers (``inspect``, ``ps``) see
either state, never a torn one.

The rules are moby's (``daemon/health.go``): a result with exit code 0 sets ``healthy``
and clears the streak; another counts into the streak (not during the start period while
still ``starting``) and ``unhealthy`` follows ``Retries`` failures in a row; the log keeps
the last 5 results, each output cut at 4096 bytes.  A new run starts as ``starting``
with a clear streak (the log is kept); the end of a run makes it ``unhealthy`` (moby:
"unhealthy when the monitor has stopped").

Imports: os and time only (``ps`` reads it).
"""
from __future__ import annotations

import os

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
MAX_LOG = 5  # moby's maxLogEntries
MAX_OUTPUT = 4096  # moby's maxOutputLen
FILE = "health.json"
LOCK = "health.lock"


def path(root: str, cid: str) -> str:
    return os.path.join(root, "containers", cid, FILE)


def read(root: str, cid: str) -> dict | None:
    """The stored health (``Status``, ``FailingStreak``, ``Log``, ``Run``), or None."""
    from ..fsutil import read_json

    try:
        data = read_json(path(root, cid), None)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def docker_shape(data: dict | None) -> dict | None:
    """docker's ``State.Health`` of stored health (None when there is none)."""
    if not data:
        return None
    return {"Status": data.get("Status", STARTING),
            "FailingStreak": int(data.get("FailingStreak", 0) or 0),
            "Log": list(data.get("Log") or [])}


def status(root: str, cid: str) -> str | None:
    data = read(root, cid)
    return data.get("Status") if data else None


class _Locked:
    """``health.lock`` held (flock), for one read-change-write."""

    def __init__(self, root: str, cid: str):
        self.dir = os.path.join(root, "containers", cid)
        self.fd = -1

    def __enter__(self):
        import fcntl

        self.fd = os.open(os.path.join(self.dir, LOCK),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # releases the flock


def _write(root: str, cid: str, data: dict) -> None:
    from ..fsutil import atomic_write
    from ..jsonlean import dumps_indented

    atomic_write(path(root, cid), dumps_indented(data, 1) + "\n", 0o600, durable=False)


def begin_run(root: str, cid: str, run: int) -> None:
    """A new run of the container: ``starting``, no failing streak, the log kept."""
    if not os.path.isdir(os.path.join(root, "containers", cid)):
        return
    with _Locked(root, cid):
        data = read(root, cid) or {}
        data.update(Status=STARTING, FailingStreak=0, Run=run)
        data.setdefault("Log", [])
        _write(root, cid, data)


def end_run(root: str, cid: str, run: int | None = None) -> None:
    """The run is over (moby: the monitor stopped -> ``unhealthy``)."""
    try:
        with _Locked(root, cid):
            data = read(root, cid)
            if not data or (run is not None and data.get("Run") != run):
                return
            if data.get("Status") != UNHEALTHY:
                data["Status"] = UNHEALTHY
                _write(root, cid, data)
    except FileNotFoundError:
        return


def truncate_output(raw: bytes) -> str:
    """moby's limitedBuffer: the first 4096 bytes, and "..." when there was more."""
    text = raw[:MAX_OUTPUT].decode("utf-8", errors="replace")
    return text + "..." if len(raw) > MAX_OUTPUT else text


def record_result(root: str, cid: str, run: int, result: dict, retries: int,
                  in_start_period: bool) -> dict | None:
    """Add one result (``Start``, ``End``, ``ExitCode``, ``Output``) to run ``run``'s health
    and apply moby's rules; returns the new health, or None when the run is not current
    (a result that arrives after the container stopped or restarted is dropped)."""
    with _Locked(root, cid):
        data = read(root, cid)
        if not data or data.get("Run") != run:
            return None
        log = list(data.get("Log") or [])
        log.append(result)
        data["Log"] = log[-MAX_LOG:]
        streak = int(data.get("FailingStreak", 0) or 0)
        if result["ExitCode"] == 0:
            data["FailingStreak"] = 0
            data["Status"] = HEALTHY
        elif not (in_start_period and data.get("Status") == STARTING):
            streak += 1
            data["FailingStreak"] = streak
            if streak >= retries:
                data["Status"] = UNHEALTHY
        _write(root, cid, data)
        return data


def timestamp(t: float) -> str:
    """docker's time of a health result (RFC 3339 with nanoseconds, UTC)."""
    import time

    ns = int(t * 1e9) % 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ns:09d}Z"


def epoch(text: str) -> float | None:
    """Seconds since the epoch of a record's RFC 3339 UTC time (``2026-12-07T06:30:25.123456Z``)."""
    import calendar
    import time

    if not text:
        return None
    try:
        head, _, frac = text.rstrip("Z").partition(".")
        t = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        return t + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return None
