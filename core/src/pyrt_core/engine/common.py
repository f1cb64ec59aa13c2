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


def event(engine, type_: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
    """Append an event to the store's journal (pyrt_core.events; ``pyrt events``)."""
    from ..events import emit

    emit(engine.settings.root, type_, action, actor_id, attributes)


def log_container_event(engine, c, action: str, **extra) -> None:
    """A container's event, with docker's attributes: its labels, ``image`` (as the user
    named it), ``name``, and ``extra`` (``exitCode``, ``signal``...).  ``c``: the model
    ``Container`` or the lean record (the same attribute names)."""
    attrs = dict(c.config.labels or {})
    attrs["image"] = c.image_name
    attrs["name"] = c.name
    attrs.update(extra)
    event(engine, "container", action, c.id, attrs)
