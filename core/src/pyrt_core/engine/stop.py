"""Stop, kill and wait: signal a running container's process and wait for its end; the
exit is recorded by its monitor, or here when the monitor is slow or gone.

Hot commands: they read and write the record through its lean view
(``engine.find``/``engine.record``, containers.record), never the models."""
from __future__ import annotations

from .common import fault, log_container_event
from .resources import thaw_if_paused
from .teardown import cleanup_locked

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..containers.record import ContainerRecord
    from ..models import Container


def stop(engine, ref: str | Container | ContainerRecord,
         timeout: int | None = None) -> ContainerRecord:
    """The stop signal (``--stop-signal``, else the image's StopSignal, else SIGTERM),
    then SIGKILL after ``timeout`` seconds; returns once the container is cleaned up.
    Stopping a container that is not running does nothing (as docker)."""
    from _signal import SIGKILL  # not signal: it imports enum

    from .. import procutil

    cid = engine.find(ref).id if isinstance(ref, str) else ref.id
    with engine.lock(cid):
        c = engine.record(cid)
        if c.state.status not in ("running", "starting"):
            return c
        if not engine.is_running(c):
            cleanup_locked(engine, c)
            return c
        c.state.stop_requested = True
        engine.containers.save(c, durable=False)
        if c.monitor == "conmon":
            from ..monitor.conmon import mark_stopping

            mark_stopping(engine.paths(cid))  # finish_exit cleans up: no exit command
        thaw_if_paused(engine, c)
    st = c.state
    sig = stop_signal(engine, c)
    if timeout is None:
        timeout = c.config.stop_timeout if c.config.stop_timeout is not None else 10
    if send_signal(engine, c, sig):
        log_container_event(engine, c, "kill", signal=sig)
    fault("stop:signalled")
    if not procutil.wait_gone(st.pid, st.pid_start, st.boot_id, max(timeout, 0)):
        if send_signal(engine, c, SIGKILL):
            log_container_event(engine, c, "kill", signal=SIGKILL)
        procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
    c = finish_exit(engine, cid, st.run)
    log_container_event(engine, c, "stop")
    return c


def restart(engine, ref: str | Container | ContainerRecord,
            timeout: int | None = None) -> Container:
    """``pyrt restart``: stop (when running), start, and the ``restart`` event docker
    reports after the start's."""
    c = stop(engine, ref, timeout)
    started = engine.start(c.id)
    log_container_event(engine, started, "restart")
    return started


def stop_signal(engine, c: Container | ContainerRecord) -> int:
    """The signal ``stop`` sends first: ``--stop-signal``, else the image's, else SIGTERM."""
    from ..errors import UsageError
    from ..runtime.cli import RuntimeFailure, parse_signal

    text = c.config.stop_signal
    if not text:
        from ..images.configview import image_config  # not the image store: no attrs

        text = image_config(engine.settings.root, c.image_id).stop_signal
        if not isinstance(text, str):  # an image an earlier pyrt stored unchecked
            text = None
    try:
        return parse_signal(text or "SIGTERM")
    except RuntimeFailure as e:
        raise UsageError(str(e)) from None


def finish_exit(engine, cid: str, run: int, timeout: float = 10.0) -> ContainerRecord:
    """After the init died: the monitor records the exit; do it here if the
    monitor is slow or gone."""
    import time

    from ..monitor import conmon

    deadline = time.monotonic() + timeout
    paths = engine.paths(cid)
    # conmon writes its exit file about a millisecond after the init's exit, which
    # stop now sees at once (procutil.wait_gone's pidfd): look often at first
    delay = 0.001
    while True:
        c = engine.record(cid)
        if c.state.run != run or c.state.status not in ("running", "starting"):
            return c
        mon_alive = engine.monitor_alive(c)
        if (c.monitor == "conmon" and conmon.read_exit_file(paths.exit_file) is not None) \
                or not mon_alive or time.monotonic() > deadline:
            with engine.lock(cid):
                c = engine.record(cid)
                if c.state.run == run and c.state.status in ("running", "starting"):
                    if c.monitor == "conmon" or not mon_alive or time.monotonic() > deadline:
                        cleanup_locked(engine, c, wait_exit=1.0)
                        return engine.containers.load_record(cid) or c
        time.sleep(delay)
        delay = min(delay * 1.5, 0.005)


def kill(engine, ref: str | Container | ContainerRecord, sig: int) -> Container | ContainerRecord:
    """Send ``sig`` to the container's init (a paused one is thawed first)."""
    from ..errors import ConflictError

    c = engine.find(ref) if isinstance(ref, str) else ref
    if c.state.paused:
        with engine.lock(c.id):
            thaw_if_paused(engine, c)
    if c.state.status not in ("running", "starting") or not send_signal(engine, c, sig):
        raise ConflictError(f"container {c.name} is not running")
    log_container_event(engine, c, "kill", signal=sig)
    return c


def send_signal(engine, c: Container | ContainerRecord, sig: int) -> bool:
    """``sig`` to the container's init: through its OCI runtime's ``kill`` when it runs
    under another runtime (``--runtime``), else to the verified pid (pid reuse guarded);
    False when it is not running."""
    from .. import procutil

    st = c.state
    if not procutil.alive(st.pid, st.pid_start, st.boot_id):
        return False
    if getattr(c.config, "runtime", ""):
        from .teardown import other_runtime

        other = other_runtime(engine, c)
        if other is not None:
            try:
                other.kill(c.id, sig)
                return True
            except Exception:  # noqa: BLE001 - gone meanwhile: the pid check says
                return procutil.alive(st.pid, st.pid_start, st.boot_id) and \
                    procutil.signal_verified(st.pid, st.pid_start, st.boot_id, sig)
    return procutil.signal_verified(st.pid, st.pid_start, st.boot_id, sig)


def wait(engine, ref: str | Container | ContainerRecord, poll: float = 0.02) -> int:
    """Block until the container is not running; return its exit code."""
    import time

    from ..monitor import conmon

    c = engine.find(ref) if isinstance(ref, str) else ref
    cid = c.id
    exit_file = engine.paths(cid).exit_file
    while True:
        cur = engine.containers.load_record(cid)
        if cur is None:
            got = conmon.read_exit_file(exit_file)
            return got[0] if got else c.state.exit_code
        c = cur
        if c.state.status not in ("running", "starting", "creating"):
            return c.state.exit_code
        elif c.state.status != "creating" and not engine.monitor_alive(c):
            lk = engine.lock(cid, blocking=False)
            if lk is not None:
                with lk:
                    c2 = engine.record(cid)
                    if c2.state.status in ("running", "starting") and not engine.monitor_alive(c2):
                        cleanup_locked(engine, c2)
        time.sleep(poll)
        poll = min(poll * 1.5, 0.1)
