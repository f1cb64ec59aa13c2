"""Recovery: make the records match reality after a pyrt process or a monitor died.

Runs at the start of every container command (cheap: it only acts on records
in a transitional state whose lock is free) and, with ``full=True``, as
``pyrt system recover`` / ``pyrt system boot``, which also sweeps what no
record points at any more.

Rules (a free per-container lock on a record means its last writer is gone):

* ``creating``: the creator died -> remove the writable layer and the record;
  a ``.tmp-create-*`` directory (died before publishing) is removed.
* ``removing``: the remover died -> finish the removal.
* ``starting`` / ``running`` whose monitor (conmon, or the foreground CLI) is
  gone -> kill the container's init if it still runs (pid + start time + boot
  id, never a reused pid), release its cgroup, unmount its root, record the
  exit (conmon's exit file, else 137 if pyrt killed it, else 255).  After a
  reboot every such record is in this case (the boot id differs).  A restart
  policy is not applied here (as podman: it acts on the exit the monitor
  reports); ``pyrt start`` or ``pyrt system boot`` starts such a container.
* names pointing at no container are released.
* network namespaces (``<runroot>/netns/<id>``) of containers that do not run are torn
  down (``pyrt_network_teardown``) and removed; those of removed containers are
  removed; then the plugin reconciles its own state (``pyrt_network_recover``), when
  anything was found and always in full mode (engine.network).

Full mode also: unmounts the root of every container that is not running
(a failed unmount never blocks the next start: the driver's ``get`` is
idempotent), deletes runtime state, bundles and exit files no running
container owns, removes record-less container directories and bundles older
than a minute (a ``run -d`` killed before its create, see Engine.prelaunch),
and removes ``pyrt-<id>`` cgroups of containers that are not running.

What it finishes or undoes uses the operations' own steps (engine.teardown's
``cleanup_locked`` and ``remove_locked``), never the engine's internals.  It reads and
writes the records through their lean view (containers.record): every container command
runs it, and none should pay for the models on its account.
"""
from __future__ import annotations

import os
from ..fsutil import remove_tree_quietly
import time

TRANSITIONAL = ("creating", "starting", "running", "removing")
MONITOR_LOST = "the monitor (conmon) died; restart policies wait for `pyrt start` or `pyrt system boot`"


def reconcile(engine, full: bool = False) -> list[str]:
    from ..containers.store import ContainerLock
    from ..errors import NotFoundError

    store = engine.containers
    actions: list[str] = []
    try:
        entries = os.listdir(store.dir)
    except FileNotFoundError:
        return actions
    for name in entries:
        if name.startswith(".tmp-create-"):
            path = os.path.join(store.dir, name)
            lk = ContainerLock(os.path.join(path, "lock"), name[12:])
            try:
                got = lk.try_acquire()
            except NotFoundError:
                continue
            if got:
                remove_tree_quietly(path)
                lk.release()
                actions.append(f"removed an unfinished create {name[12:24]}")
        elif name.startswith(".tmp-delete-"):
            remove_tree_quietly(os.path.join(store.dir, name))
        elif name.startswith(".tmp-prep-"):
            path = os.path.join(store.dir, name)
            if time.time() - _mtime(path) > 60:  # a creator killed within microseconds
                remove_tree_quietly(path)
        elif len(name) == 64 and not os.path.exists(os.path.join(store.dir, name, "container.json")):
            # a `run -d` killed after starting its monitor, before its record (Engine.prelaunch)
            lk = ContainerLock(os.path.join(store.dir, name, "lock"), name)
            try:
                got = lk.try_acquire()
            except NotFoundError:
                continue
            if got:
                try:
                    if not os.path.exists(os.path.join(store.dir, name, "container.json")):
                        _remove_unfinished_run(engine, name)
                        actions.append(f"removed the directories of an unfinished run {name[:12]}")
                finally:
                    lk.release()
    for c in store.records(statuses=TRANSITIONAL):
        if c.state.status not in TRANSITIONAL:
            continue
        if c.state.status == "running" and engine.monitor_alive(c):
            _ensure_health_runner(engine, c, actions)
            continue
        if c.state.status == "starting" and engine.monitor_alive(c) and c.monitor != "conmon":
            continue  # a foreground run between create and exec
        try:
            _reconcile_one(engine, store, c, actions)
        except Exception as e:  # noqa: BLE001 - one bad record must not stop every command
            actions.append(f"skipped container {c.short_id} ({c.name!r}): {_one_line(e)}")
    _release_dangling_names(store, actions)
    _expire_exit_files(engine, full)
    from .network import recover as recover_networks

    recover_networks(engine, full, actions)
    if full:
        _sweep(engine, actions)
    return actions


def _ensure_health_runner(engine, c, actions: list[str]) -> None:
    """A running container with a health check whose runner died (killed, OOM) gets a new
    one: without it its health would never change again (docker's daemon always runs
    the checks).  Cheap: one flock try per running container with a check."""
    from .healthrunner import ensure

    try:
        if ensure(engine, c):
            actions.append(f"restarted the health check runner of {c.short_id} ({c.name!r})")
    except OSError as e:
        actions.append(f"cannot restart the health check runner of {c.short_id}: {e}")


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _reconcile_one(engine, store, c, actions: list[str]) -> None:
    """Finish or undo the step a dead writer left ``c`` in (the module's rules)."""
    from .. import procutil
    from ..errors import NotFoundError
    from .common import now
    from .teardown import cleanup_locked, remove_locked

    try:
        lk = store.container_lock(c.id, blocking=False)
    except NotFoundError:
        return
    if lk is None:
        return  # someone is working on it
    with lk:
        c = store.load_record(c.id)
        if c is None:
            return
        status = c.state.status
        if status == "creating":
            with engine.storage_lock():
                engine.driver.remove(c.layer_id)
            store.delete(c)
            actions.append(f"removed half-created container {c.short_id}")
        elif status == "removing":
            remove_locked(engine, c)
            actions.append(f"finished removing container {c.short_id}")
        elif status == "starting" and c.monitor == "conmon" and engine.monitor_alive(c):
            # the starter died while holding the lock: finish or undo its start
            if engine.process_alive(c) and _started(engine, c):
                c.state.status = "running"
                c.state.started_at = c.state.started_at or now()
                store.save(c, durable=False)
                actions.append(f"container {c.short_id} ({c.name}) had started: marked running")
            else:
                cleanup_locked(engine, c, error="start interrupted")
                actions.append(f"container {c.short_id} ({c.name}): start interrupted, "
                               "cleaned up")
        elif status in ("starting", "running") and not engine.monitor_alive(c):
            # never restarted here (podman's rule): restart policies act on the exit
            # the monitor reports; without it `pyrt start` or `system boot` starts it
            cleanup_locked(engine, c, error=MONITOR_LOST if c.monitor == "conmon" else "")
            actions.append(f"container {c.short_id} ({c.name}) had lost its monitor: "
                           f"marked exited ({c.state.exit_code}) and cleaned up")


def _started(engine, c) -> bool:
    """Whether the init of a container whose starter died has run its user process: it
    no longer runs pyrt-runtime's code; under another runtime (``--runtime``), that
    runtime's ``state`` says "running"."""
    from .. import procutil

    if not c.config.runtime:
        return "pyrt-runtime" not in procutil.cmdline(c.state.pid)
    from .teardown import other_runtime

    other = other_runtime(engine, c)
    state = other.state(c.id) if other is not None else None
    return bool(state) and state.get("status") == "running"


def _remove_unfinished_run(engine, cid: str) -> None:
    """What a `run -d` killed between starting its monitor and writing its record left:
    the container directory (conmon's empty log), the bundle, conmon's socket link.  Its
    runtime never got the go, so it exits (EOF), and conmon with it."""
    from ..monitor.conmon import Paths

    p = Paths(engine.settings.root, engine.settings.runroot, cid)
    remove_tree_quietly(p.bundle)
    _unlink(os.path.join(p.socket_dir, cid))
    _unlink(p.exit_file)
    remove_tree_quietly(engine.containers.path(cid))


def _expire_exit_files(engine, full: bool) -> None:
    """Exit files kept for `pyrt wait` on removed (--rm) containers: a minute is enough."""
    d = os.path.join(engine.settings.runroot, "exits")
    names = _listdir(d)
    if not names:
        return
    now = time.time()
    for cid in names:
        path = os.path.join(d, cid)
        if now - _mtime(path) > 60 and not os.path.isdir(engine.containers.path(cid)):
            _unlink(path)


def _release_dangling_names(store, actions: list[str]) -> None:
    try:
        names = os.listdir(store.names)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(store.names, name)
        try:
            target = os.readlink(path)
        except OSError:
            continue
        if not os.path.isdir(store.path(target)) and \
                not os.path.isdir(os.path.join(store.dir, f".tmp-create-{target}")):
            store.release_name(name, target)
            actions.append(f"released the name {name}")


def _sweep_other_runtimes(engine, running: set, actions: list[str]) -> None:
    """States other OCI runtimes (``--runtime``) keep for runs that are over: deleted with
    the runtime the container's record names (its cgroup goes with it)."""
    from ..errors import PyrtError
    from ..monitor.ociruntime import OCIRuntime, all_roots, resolve

    store = engine.containers
    for root in all_roots(engine.settings.runroot):
        for cid in _listdir(root):
            if cid in running:
                continue
            c = store.load_record(cid)
            try:
                path = c.runtime if c is not None and os.path.isabs(c.runtime or "") else \
                    resolve(os.path.basename(root), engine.settings.runtimes)
                OCIRuntime(path, root).delete(cid)
                actions.append(f"deleted {os.path.basename(root)} state of {cid[:12]}")
            except (PyrtError, OSError) as e:
                actions.append(f"deleting {os.path.basename(root)} state of {cid[:12]} failed: {e}")


def _sweep(engine, actions: list[str]) -> None:
    from ..monitor.conmon import Paths
    from ..runtime import cli as rtcli

    store = engine.containers
    running = set()
    known = set()
    for c in store.records():
        known.add(c.id)
        if c.state.status in ("starting", "running", "creating", "removing"):
            running.add(c.id)
            continue
        lk = store.container_lock(c.id, blocking=False)
        if lk is None:
            running.add(c.id)
            continue
        with lk:
            try:
                with engine.storage_lock():
                    engine.driver.put(c.layer_id)
            except Exception as e:  # noqa: BLE001
                actions.append(f"unmounting {c.short_id} failed: {e}")
    p = Paths(engine.settings.root, engine.settings.runroot, "x")
    # runtime states, bundles, exit files and attach links that no live container owns
    for d in (p.runtime_root,):
        for cid in _listdir(d):
            if cid not in running:
                try:
                    rtcli.delete(p.runtime_root, cid, force=True, pm=engine.pm)
                    actions.append(f"deleted runtime state of {cid[:12]}")
                except Exception as e:  # noqa: BLE001
                    actions.append(f"deleting runtime state of {cid[:12]} failed: {e}")
    _sweep_other_runtimes(engine, running, actions)
    for cid in _listdir(store.rundir):
        # a bundle whose record-less container directory exists: a `run -d` in progress
        # (Engine.prelaunch; the pass above removed those of killed ones)
        if cid not in running and (cid in known or not os.path.isdir(store.path(cid))):
            remove_tree_quietly(os.path.join(store.rundir, cid))
    now = time.time()
    for cid in _listdir(p.exit_dir):
        path = os.path.join(p.exit_dir, cid)
        if cid not in known or (cid not in running and now - _mtime(path) > 60):
            if cid not in known:
                _unlink(path)
    for cid in _listdir(p.socket_dir):
        if cid not in running:
            _unlink(os.path.join(p.socket_dir, cid))
    # volumes still mounted for runs that are over (engine.volumes)
    from .volumes import release_stale

    actions += release_stale(engine, running)
    # cgroups named after containers that do not run
    for base in _cgroup_dirs():
        for name in _listdir(base):
            if name.startswith("pyrt-") and len(name) == 69 and name[5:] not in running:
                if _remove_cgroup(os.path.join(base, name)):
                    actions.append(f"removed stale cgroup {os.path.join(base, name)}")


def _cgroup_dirs() -> list[str]:
    out = []
    for ctrl in _listdir("/sys/fs/cgroup"):
        d = os.path.join("/sys/fs/cgroup", ctrl, "pyrt")
        if os.path.isdir(d):
            out.append(d)
    if os.path.isdir("/sys/fs/cgroup/pyrt"):
        out.append("/sys/fs/cgroup/pyrt")
    return out


def _remove_cgroup(path: str) -> bool:
    import signal

    for _ in range(50):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            for sub in sorted((os.path.join(dp, d) for dp, dns, _ in os.walk(path) for d in dns),
                              key=len, reverse=True):
                os.rmdir(sub)
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.02)
    return False


def _listdir(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except OSError:
        return []


def _mtime(p: str) -> float:
    try:
        return os.stat(p).st_mtime
    except OSError:
        return 0.0


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
