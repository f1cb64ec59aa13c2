"""conmon's exit command (``pyrt container cleanup``): once a detached container's process
exited, record the exit and release everything, then honour ``--rm`` and the restart
policy (docker's back-off).  A hot command (after every detached container's exit): the
record is read and written through its lean view (containers.record); the model
``Container`` is built only for a restart."""
from __future__ import annotations

from ..errors import NotFoundError, PyrtError
from .teardown import cleanup_locked

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..containers.record import ContainerRecord
    from ..models import Container


def cleanup(engine, cid: str, run: int | None = None) -> ContainerRecord | None:
    """``pyrt container cleanup``, conmon's exit command: record the exit and
    release everything; then honour ``--rm`` and the restart policy.

    conmon writes the exit file before it runs this.  No exit file means there is
    nothing to report: the runtime's create failed (the starter, or the next
    command's recovery if the starter died, cleans up) or the exit was already
    recorded.  Taking the lock then would only block the starter and hide a dead
    start from recovery (a record left "starting" while we wait)."""
    from ..monitor import conmon

    if conmon.read_exit_file(engine.paths(cid).exit_file) is None:
        return None
    try:
        with engine.lock(cid):
            c = engine.record(cid)
            if run is not None and c.state.run != run:
                return c  # a newer run already
            if c.state.status not in ("running", "starting"):
                return c
            cleanup_locked(engine, c, wait_exit=1.0)
            if engine.containers.load_record(cid) is None:
                return None
    except NotFoundError:
        return None
    maybe_restart(engine, cid)
    return c


def restart_wanted(c: Container | ContainerRecord) -> bool:
    """Whether ``c``'s restart policy asks for a new run after the exit it records."""
    cfg, st = c.config, c.state
    if st.stop_requested or st.status != "exited" or cfg.auto_remove:
        return False
    policy = cfg.restart_policy
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        return st.exit_code != 0 and (not cfg.restart_max or st.restart_count < cfg.restart_max)
    return False


def maybe_restart(engine, cid: str) -> None:
    """Start ``cid`` again after docker's back-off when its policy wants it."""
    import time

    c = engine.containers.load_record(cid)
    if c is None or not restart_wanted(c):
        return
    from .start import start_locked  # the models: only for a restart

    # docker's back-off: 100 ms, doubling per consecutive restart, at most a minute
    delay = min(0.1 * (2 ** min(c.state.restart_count, 10)), 60.0)
    time.sleep(delay)
    try:
        with engine.lock(cid):
            c = engine.reload(cid)
            if not restart_wanted(c):
                return
            c.state.restart_count += 1
            try:
                start_locked(engine, c)
            except PyrtError:
                pass
    except NotFoundError:
        return
