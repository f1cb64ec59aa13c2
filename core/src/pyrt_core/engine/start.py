"""Start a container under conmon (detached; ``run -d``, ``start``, a restart): conmon
and pyrt-runtime start, the bundle is written while they do, then the runtime's
``start`` lets the process run.  ``run -d`` may have started the monitor before the
engine existed (``prelaunch``)."""
from __future__ import annotations

from ..models import Container
from .common import fault, log_container_event, now
from .teardown import cleanup_locked


def start(engine, ref: str | Container, before_start=None, launched=None) -> Container:
    """Start a created or exited container under conmon; returns once it runs.
    Starting a running container does nothing (as docker).  ``before_start(c)``
    runs once conmon holds the created container, before its process runs
    (``start -a`` attaches there).  ``launched``: a monitor from :func:`prelaunch`
    (used for the container's first run, else stopped)."""
    try:
        cid = engine.find(ref).id if isinstance(ref, str) else ref.id
        with engine.lock(cid):
            c = engine.reload(cid)
            if c.state.status in ("running", "starting") and engine.is_running(c):
                return c
            if c.state.status in ("creating", "removing"):
                from ..errors import ConflictError

                raise ConflictError(f"container {c.short_id} is {c.state.status}")
            if c.state.status in ("running", "starting"):
                cleanup_locked(engine, c, remove=False)  # a dead run recovery has not seen yet
            mine, launched = launched, None  # start_locked owns it from here
            if mine is not None:
                mine.release_dir_lock()  # the record exists: its own lock is what counts
            start_locked(engine, c, before_start, mine)
            return c
    finally:
        if launched is not None:
            abandon(engine, launched)


def prelaunch(engine, cid: str, **kw):
    """See :func:`pyrt_core.monitor.conmon.prelaunch` (``run -d`` calls that before it
    has an engine)."""
    from ..monitor import conmon

    return conmon.prelaunch(engine.settings, engine.containers, cid, **kw)


def abandon(engine, launched) -> None:
    """Stop a prelaunched monitor no container uses (see monitor.conmon.abandon)."""
    from ..monitor import conmon

    conmon.abandon(launched, engine.containers)


def exit_command(engine, c: Container) -> list[str]:
    """The command conmon runs when the container exits (``pyrt container cleanup``)."""
    from ..monitor.conmon import exit_command

    return exit_command(engine.settings, engine.driver_name, c.id, c.state.run)


def log_args(c: Container) -> dict:
    """conmon's log driver and tag for ``c`` (--log-driver, --log-opt tag; monitor.logdrivers)."""
    from ..monitor.logdrivers import check_usable, tag_for

    check_usable(c.config.log_driver)
    return {"log_driver": c.config.log_driver or None,
            "log_tag": tag_for(c) if c.config.log_driver == "journald" or c.config.log_tag else None}


def start_locked(engine, c: Container, before_start=None, launched=None) -> None:
    """A new run of ``c`` under conmon, the caller holding its lock; a failure cleans the
    run up (the record says ``exited`` with the error) and raises."""
    from .. import procutil
    from ..monitor import conmon
    from ..runtime import cli as rtcli
    from .bundle import mount_and_write_bundle

    st = c.state
    st.run += 1
    st.status, st.error, st.stop_requested, st.oom_killed = "starting", "", False, False
    st.pid, st.pid_start, st.monitor_pid, st.monitor_start = 0, None, 0, None
    st.boot_id = procutil.boot_id()
    c.monitor = "conmon"
    paths = engine.paths(c.id)
    try:
        from ..monitor.ociruntime import OCIRuntime, is_pyrt, resolve, root_for

        other = None
        if is_pyrt(c.config.runtime):
            c.runtime = conmon.find_runtime()
        else:  # --runtime: resolved (and its file checked) again at every start
            c.runtime = resolve(c.config.runtime, engine.settings.runtimes)
            other = OCIRuntime(c.runtime, root_for(engine.settings.runroot, c.config.runtime),
                               c.config.runtime)
        conmon_path = conmon.find_conmon()
        engine.containers.save(c, durable=False)
        image = engine.images.get(c.image_id)
        if other is not None:
            if launched is not None:
                launched.abort()  # (run -d does not prelaunch for another runtime)
                launched = None
            _start_other(engine, c, image, paths, other, conmon_path, before_start)
            engine.pm.hook.pyrt_container_started(container=c, pid=st.pid)
            return
        # conmon and the runtime start now; the runtime waits for the bundle
        if launched is not None and (launched.run != st.run or launched.paths.id != c.id
                                     or launched.exit_command != exit_command(engine, c)
                                     or launched.io != (c.config.interactive, c.config.tty,
                                                        c.config.log_size_max)):
            launched.abort()  # not for this run (never in practice)
            launched = None
        launched = launched or conmon.launch(
            paths, name=c.name, exit_command=exit_command(engine, c),
            stdin=c.config.interactive, tty=c.config.tty, log_size_max=c.config.log_size_max,
            disabled_plugins=engine.settings.disabled_plugins, runtime=c.runtime,
            conmon=conmon_path, **log_args(c))
        try:
            mount_and_write_bundle(engine, c, image, load=False)
            fault("start:mounted")
        except BaseException:
            launched.abort()
            raise
        rtcli.warm_up("start", engine.pm)  # start's code, loaded while the runtime works
        pid, mon = launched.wait()
        ident = procutil.identity(pid)
        st.pid, st.pid_start = pid, ident["start"]
        if mon:
            st.monitor_pid, st.monitor_start = mon, procutil.start_time(mon)
        rstate = rtcli.RuntimeState(paths.runtime_root, c.id).load() or {}
        st.resources = rstate.get("resources") or {}
        c.cgroup_manager = st.resources.get("manager", "none")
        engine.containers.save(c, durable=False)
        fault("start:created")
        if before_start is not None:
            before_start(c)
        try:
            rtcli.start(paths.runtime_root, c.id)
        except rtcli.RuntimeFailure as e:
            from ..errors import ExecError

            raise ExecError(str(e), e.exit_code if e.exit_code in (126, 127) else 125) from None
        fault("start:started")
        st.status = "running"
        st.started_at = now()
        engine.containers.save(c, durable=False)
        from .healthrunner import start as start_health

        start_health(engine, c)  # its runner, when the container has a health check
        log_container_event(engine, c, "start")
    except BaseException as e:
        cleanup_locked(engine, c, exit_code=getattr(e, "exit_code", 125), error=str(e),
                       remove=False, wait_exit=0.5)
        raise
    engine.pm.hook.pyrt_container_started(container=c, pid=st.pid)


def _start_other(engine, c: Container, image, paths, other, conmon_path: str,
                 before_start=None) -> None:
    """A run under another OCI runtime (``--runtime``, monitor.ociruntime): the bundle
    first (that runtime reads it at once), then conmon runs its ``create``, then its
    ``start``.  The caller cleans up on failure."""
    from .. import procutil
    from ..monitor import conmon
    from .bundle import mount_and_write_bundle

    st = c.state
    mount_and_write_bundle(engine, c, image, load=False)
    fault("start:mounted")
    launched = conmon.launch(
        paths, name=c.name, exit_command=exit_command(engine, c),
        stdin=c.config.interactive, tty=c.config.tty, log_size_max=c.config.log_size_max,
        runtime=c.runtime, conmon=conmon_path, early=False, runtime_root=other.root,
        **log_args(c))
    pid, mon = launched.wait()
    st.pid, st.pid_start = pid, procutil.identity(pid)["start"]
    if mon:
        st.monitor_pid, st.monitor_start = mon, procutil.start_time(mon)
    st.resources = {}  # the runtime applied the limits itself (its own cgroup)
    c.cgroup_manager = other.name
    engine.containers.save(c, durable=False)
    fault("start:created")
    if before_start is not None:
        before_start(c)
    try:
        other.start(c.id)
    except Exception as e:  # noqa: BLE001 - one line, exit 125
        from ..errors import ExecError

        raise ExecError(str(e), 125) from None
    fault("start:started")
    st.status = "running"
    st.started_at = now()
    engine.containers.save(c, durable=False)
