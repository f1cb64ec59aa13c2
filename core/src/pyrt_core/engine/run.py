"""``pyrt run`` in the foreground: create, start, wait, clean up, in this process, which
is the container's monitor (no conmon): the fastest path, stdio passed straight
through (or a pty pyrt owns for ``-t``)."""
from __future__ import annotations

import os

from ..errors import NotFoundError, PyrtError
from .common import log_container_event, now
from .teardown import cleanup_locked

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..models import ContainerConfig


def run(engine, config: ContainerConfig, name: str | None = None, stdio=(0, 1, 2),
        pull: str = "missing", on_started=None, on_exited=None, on_console=None,
        on_created=None) -> int:
    """``pyrt run`` in the foreground: create, start, wait, clean up; return the exit code.

    This process is the container's monitor: it reaps the init and records
    the exit.  ``on_created(container)`` runs once the record exists (the CLI opens the
    container's log there), ``on_started(pid)`` once the process runs (the terminal
    proxy starts there)."""
    from .. import procutil
    from ..runtime.executor import Executor
    from .bundle import mount_and_write_bundle

    container = engine.create(config, name, pull)
    cid = container.id
    if on_created is not None:
        on_created(container)
    log_container_event(engine, container, "attach")  # docker's: create, attach, start
    code = 125
    run_no = 0
    try:
        with engine.lock(cid):
            container = engine.reload(cid)
            st = container.state
            st.run += 1
            run_no = st.run
            st.status, st.error, st.stop_requested = "starting", "", False
            me = procutil.identity(os.getpid())
            st.monitor_pid, st.monitor_start, st.boot_id = me["pid"], me["start"], me["boot"]
            st.pid, st.pid_start = 0, None
            container.monitor, container.runtime = "pyrt", "pyrt (in-process)"
            engine.containers.save(container, durable=False)
            try:
                image = engine.images.get(container.image_id)
                rc = mount_and_write_bundle(engine, container, image)
            except BaseException as e:
                cleanup_locked(engine, container, exit_code=getattr(e, "exit_code", 125),
                               error=str(e), remove=False)
                raise

        def started(pid, record):
            ident = procutil.identity(pid)
            with engine.lock(cid):
                c = engine.reload(cid)
                if c.state.run != run_no:
                    return
                c.state.status = "running"
                c.state.pid, c.state.pid_start = pid, ident["start"]
                c.state.started_at = now()
                c.state.resources = dict(record)
                c.cgroup_manager = record.get("manager", "none")
                engine.containers.save(c, durable=False)
                from .healthrunner import start as start_health

                start_health(engine, c)  # checks for a foreground run too (docker's)
                log_container_event(engine, c, "start")
            engine.pm.hook.pyrt_container_started(container=c, pid=pid)
            if on_started is not None:
                on_started(pid)

        oom = {"killed": False}

        def exited(exit_code, oom_killed):
            oom["killed"] = oom_killed
            if on_exited is not None:
                on_exited(exit_code)

        def placed(record):
            with engine.lock(cid):
                c = engine.reload(cid)
                c.state.resources = dict(record)
                engine.containers.save(c, durable=False)

        error = ""
        if on_console is not None and rc.process.terminal:
            rc.on_console = on_console  # -t: the pty is opened inside (its own devpts)
        try:
            code = Executor(engine.pm).run(rc, stdio, on_started=started, on_exited=exited,
                                           on_placed=placed)
        except PyrtError as e:
            code, error = e.exit_code, str(e)
            raise
        finally:
            try:
                with engine.lock(cid):
                    c = engine.reload(cid)
                    if c.state.run == run_no and c.state.status in ("starting", "running"):
                        c.state.oom_killed = oom["killed"]
                        c.state.resources = {}  # the executor released them
                        cleanup_locked(engine, c, exit_code=code, error=error, remove=False)
            except NotFoundError:
                pass  # removed meanwhile (rm -f): nothing left to record
        return code
    finally:
        if config.auto_remove:
            try:
                engine.remove(cid, force=True)
            except NotFoundError:
                pass
