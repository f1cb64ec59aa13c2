"""Tearing a container down, the caller holding its lock (``Engine.lock``):

* :func:`cleanup_locked`: its run is over (or must end): kill what is left of it,
  release its cgroup and runtime state, its network and network namespace, unmount
  its root, record the exit;
* :func:`remove_locked`: remove it: writable layer, exit file, record.

Every operation that ends a run uses them (a foreground run, a failed start, ``stop``,
``wait``, ``rm``, conmon's exit command), and so does recovery when it finishes the step a
dead pyrt process left a container in (engine.recover)."""
from __future__ import annotations

import os

from .common import fault, log_container_event, now, rfc3339

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..containers.record import ContainerRecord
    from ..models import Container


def cleanup_locked(engine, c: Container | ContainerRecord, exit_code: int | None = None, error: str = "",
                   remove: bool = True, wait_exit: float = 0.0) -> None:
    """The container's process is gone (or must go): kill what is left, release its
    cgroup, unmount its root, record the exit.  Idempotent; the caller holds the lock.

    ``exit_code`` None reads conmon's exit file (waiting up to ``wait_exit``
    seconds for it), else 137 when pyrt had to kill the process, else 255
    (unknown, as docker after a crash).  With ``remove`` a ``--rm``
    container is removed."""
    import time
    from _signal import SIGKILL  # not signal: it imports enum

    from .. import procutil
    from ..monitor import conmon
    from ..runtime import cli as rtcli

    st = c.state
    paths = engine.paths(c.id)
    killed = False
    # 1. no process of this run may survive: the init (verified identity), then conmon
    if procutil.alive(st.pid, st.pid_start, st.boot_id) and not engine.monitor_alive(c):
        killed = procutil.signal_verified(st.pid, st.pid_start, st.boot_id, SIGKILL)
        procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
    mon = conmon.read_pid(paths.conmon_pidfile) if c.monitor == "conmon" else 0
    if mon and not (procutil.alive(mon) and c.id in procutil.cmdline(mon)):
        mon = 0
    if mon and procutil.alive(st.pid, st.pid_start, st.boot_id):
        # conmon runs but the container must go (failed start, rm -f): kill the init
        killed = procutil.signal_verified(st.pid, st.pid_start, st.boot_id, SIGKILL)
        procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
    exited = None
    if c.monitor == "conmon":
        # conmon writes the exit file as soon as it reaped the init; it may then wait
        # for its exit command (which waits for our lock), so never wait for conmon
        deadline = time.monotonic() + (max(wait_exit, 2.0) if mon else wait_exit)
        while True:
            exited = conmon.read_exit_file(paths.exit_file)
            if exited is not None or time.monotonic() >= deadline:
                break
            if mon and not procutil.alive(mon):
                mon = 0
                deadline = min(deadline, time.monotonic() + 0.05)
            time.sleep(0.003)
        if exited is None and mon:
            try:
                os.kill(mon, SIGKILL)  # a monitor that cannot report is no use
            except ProcessLookupError:
                pass
    from .healthrunner import stop as stop_health

    stop_health(engine, c)  # the run's health check runner (and its check), if any
    if exit_code is None:
        if exited is not None:
            exit_code = exited[0]
        else:
            exit_code = 137 if killed else 255
    # 2. resources: OOM first (the counters go with the cgroup), then the runtime's state
    record = st.resources or {}
    other = other_runtime(engine, c)
    rdata = rtcli.RuntimeState(paths.runtime_root, c.id).load() if other is None else None
    if rdata and rdata.get("resources"):
        record = rdata["resources"]
    if record and record.get("manager", "none") != "none":
        try:
            if engine.pm.hook.pyrt_resources_oom_killed(container_id=c.id, record=record):
                st.oom_killed = True
        except Exception:  # noqa: BLE001 - a report, never a reason to leak
            pass
    errors = []
    try:
        if other is not None:
            other.delete(c.id)  # its cgroup too
        else:
            rtcli.delete(paths.runtime_root, c.id, force=True, pm=engine.pm)
    except Exception as e:  # noqa: BLE001
        errors.append(f"runtime state: {e}")
    if record and not rdata:
        try:
            engine.pm.hook.pyrt_resources_release(container_id=c.id, record=record)
        except Exception as e:  # noqa: BLE001
            errors.append(f"cgroup: {e}")
    fault("cleanup:released")
    # 3. the network: the plugin's teardown, then the namespace (engine.network)
    from .network import release as release_network

    release_network(engine, c, errors)
    # 4. storage: unmount (a failure is recorded; get() at the next start copes)
    try:
        with engine.storage_lock():
            engine.driver.put(c.layer_id)
    except Exception as e:  # noqa: BLE001
        errors.append(f"unmounting the root filesystem: {e}")
    from .volumes import unmount_volumes

    errors += unmount_volumes(engine, with_volumes(engine, c))  # what the start mounted
    from .namespaces import unmount_shm

    unmount_shm(engine, c, errors)  # --ipc shareable's /dev/shm (engine.namespaces)
    from ..fsutil import remove_tree_quietly

    keep_exit = c.config.auto_remove  # `pyrt wait` may still want the code
    remove_tree_quietly(paths.bundle)
    for p in ([] if keep_exit else [paths.exit_file]) + [os.path.join(paths.socket_dir, c.id)]:
        try:
            os.unlink(p)
        except OSError:
            pass
    st.status = "exited"
    st.paused = False
    st.exit_code = exit_code
    st.finished_at = rfc3339(exited[1]) if exited else now()
    st.pid, st.pid_start, st.monitor_pid, st.monitor_start = 0, None, 0, None
    st.resources = {}
    st.error = error or "; ".join(errors)
    engine.containers.save(c)
    if st.oom_killed:
        log_container_event(engine, c, "oom")  # docker's, before the die
    log_container_event(engine, c, "die", exitCode=exit_code)
    container_event(engine, "pyrt_container_exited", c, exit_code=exit_code)
    if remove and c.config.auto_remove:
        remove_locked(engine, c)


def other_runtime(engine, c):
    """The other OCI runtime (``--runtime``) of ``c``'s run, or None for pyrt-runtime."""
    if not getattr(c.config, "runtime", ""):
        return None
    from ..errors import PyrtError
    from ..monitor.ociruntime import OCIRuntime

    try:
        return OCIRuntime.of(engine.settings, c)
    except PyrtError:
        return None  # a run that never started under it: no state to delete


def remove_locked(engine, c: Container | ContainerRecord, volumes: bool = False) -> None:
    """Remove a container whose run is over (:func:`cleanup_locked` done): the ``removing``
    mark first (a crash after it is finished by recovery), then its writable layer, its
    exit file (kept for ``pyrt wait`` on a ``--rm`` one) and its record; with ``volumes``
    (``rm -v``) or for a ``--rm`` container, its anonymous volumes (as docker)."""
    c.state.status = "removing"
    engine.containers.save(c, durable=False)  # lost in a crash: the record is removed again
    fault("rm:removing")
    with engine.storage_lock():
        engine.driver.put(c.layer_id)
        engine.driver.remove(c.layer_id)
    fault("rm:layer")
    if not c.config.auto_remove:  # `pyrt wait` on a --rm container reads it (recovery sweeps it)
        try:
            os.unlink(engine.paths(c.id).exit_file)
        except OSError:
            pass
    engine.containers.delete(c)
    if volumes or c.config.auto_remove:
        from .volumes import remove_anonymous

        remove_anonymous(engine, with_volumes(engine, c))
    log_container_event(engine, c, "destroy")
    container_event(engine, "pyrt_container_removed", c)


def container_event(engine, hook: str, c: Container | ContainerRecord, **kwargs) -> None:
    """Call the event ``hook`` with ``container=``: the model ``Container`` its spec
    promises, built from a lean record (a hot command's) only when a plugin implements
    the event (hookcall.implemented), so an event nobody listens to costs no model."""
    from ..hookcall import implemented

    if implemented(engine.pm, hook):
        getattr(engine.pm.hook, hook)(container=engine.full(c), **kwargs)


def with_volumes(engine, c: Container | ContainerRecord) -> Container | ContainerRecord:
    """``c`` as the volume code reads it: the model ``Container`` (its ``VolumeSpec``s) when
    it has volumes; a lean record without any stays one (no model for a plain container)."""
    return engine.full(c) if c.config.volumes else c
