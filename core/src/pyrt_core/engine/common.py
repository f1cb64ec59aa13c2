"""What every engine operation may use: docker's time stamps and the recovery tests'
fault points.  Standard library only (os, and time when called)."""
from __future__ import annotations

import os


def now() -> str:
    """The current UTC time in RFC 3339 with microseconds, as docker prints it."""
    import time

    return rfc3339(time.time())


def rfc3339(t: float) -> str:
    """``t`` (seconds since the epoch) in RFC 3339 with microseconds, UTC."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def fault(point: str) -> None:
    """Fault injection for the recovery tests: ``PYRT_FAULT=point[,point...]`` makes this
    process SIGKILL itself when it reaches ``point`` (a pyrt process killed there)."""
    want = os.environ.get("PYRT_FAULT")
    if want and point in want.split(","):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
