"""Remove a container (``rm``): a running one only with ``force``, killed first; then its
run is cleaned up and it is removed (engine.teardown).  A hot command: the record is
read and written through its lean view (containers.record), no model is built."""
from __future__ import annotations

from .common import fault
from .teardown import cleanup_locked, remove_locked

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..containers.record import ContainerRecord
    from ..models import Container



def remove(engine, ref: str | Container | ContainerRecord, force: bool = False,
           volumes: bool = False) -> None:
    """Remove a container: its writable layer, bundle, log and record (``volumes``: and
    its anonymous volumes).  A running one needs ``force`` (it is killed first)."""
    from ..errors import ConflictError

    cid = engine.find(ref).id if isinstance(ref, str) else ref.id
    with engine.lock(cid):
        c = engine.record(cid)
        if c.state.status in ("running", "starting") and engine.is_running(c):
            if not force:
                raise ConflictError(
                    f"cannot remove container {c.name}: container is running: stop the "
                    "container before removing or force remove (-f)")
            from _signal import SIGKILL  # not signal: it imports enum

            from .. import procutil

            c.state.stop_requested = True
            engine.containers.save(c, durable=False)
            if c.monitor == "conmon":
                from ..monitor.conmon import mark_stopping

                mark_stopping(engine.paths(cid))  # cleaned up below: no exit command
            st = c.state
            procutil.signal_verified(st.pid, st.pid_start, st.boot_id, SIGKILL)
            fault("rm:killed")
            procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
        if c.state.status in ("running", "starting"):
            cleanup_locked(engine, c, remove=False, wait_exit=1.0)
        remove_locked(engine, c, volumes)
