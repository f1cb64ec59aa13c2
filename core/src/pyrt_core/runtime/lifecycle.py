"""The lifecycle commands: ``create``, ``start``, ``state``, ``kill``, ``delete``.

Each is a function over the runtime root and a container id, used by the
``pyrt-runtime`` command line (:mod:`.cli`) and directly by pyrt's engine
(start, delete) and recovery (delete).  Errors are :class:`.common.RuntimeFailure`
with runc's wording where engines match on it ("does not exist",
"container not running").
"""
from __future__ import annotations

import os
import time

from . import runlog
from .common import (RuntimeFailure, check_preserve_fds, console_socket as check_console,
                     load, not_exist, oci_state, plugin_manager, write_pid_file)
from .state import RuntimeState


#: the hooks each command calls that plugins may declare modules to warm up for
_WARM = {"create": ("pyrt_resources_validate", "pyrt_resources_apply", "pyrt_isolation_create"),
         "start": ("pyrt_isolation_start",)}
#: the hook plans create keeps in the state for the later commands (see start)
_PINNED = ("pyrt_isolation_start",)


def warm_up(command: str, pm) -> None:
    """Import what ``command`` (``create``, ``start``) will need while the caller waits
    anyway: the runtime's create while the engine writes the bundle, the engine while
    create runs.  What is imported is the plugins' to say (``WARM_UP``, see
    pyrt_core.hookcall.warm_up), for the hooks the command calls."""
    from ..hookcall import warm_up as warm

    warm(pm, _WARM[command])


def _wait_ready(path: str) -> None:
    """The engine started us before its bundle was complete (see monitor.conmon.launch):
    wait for its go; EOF means it gave up."""
    import select

    # non-blocking open: a blocking one would wait forever for an engine that died;
    # with no writer left, read() gives EOF
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"cannot open {path}: {e.strerror}") from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            try:
                data = os.read(fd, 1)
                break
            except (BlockingIOError, InterruptedError):
                poller.poll(50)  # POLLHUP is not reported for a writer older than us
    finally:
        os.close(fd)
    if not data:
        raise RuntimeFailure("the engine gave up before the bundle was ready")


def read_spec(bundle: str) -> dict:
    """The bundle's config.json as a JSON object (UsageError when missing or malformed)."""
    from ..errors import UsageError
    from ..jsonlean import loads  # json's own parser, without json's import of re and enum

    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            spec = loads(f.read())
    except FileNotFoundError:
        raise UsageError(f"bundle {bundle} has no config.json") from None
    except IsADirectoryError:
        raise UsageError(f"bundle {bundle}: config.json is not a file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"bundle {bundle}: config.json is not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise UsageError(f"bundle {bundle}: config.json is not a JSON object")
    return spec


# -- hooks kept in the state record -----------------------------------------------------

def _hooks_record(config) -> dict:
    hooks = getattr(config, "hooks", None)
    if hooks is None:
        return {}
    out = {}
    for phase in ("poststart", "poststop"):
        items = getattr(hooks, phase, None) or []
        if items:
            out[phase] = [{"path": h.path, "args": list(h.args), "env": list(h.env),
                           "timeout": h.timeout} for h in items]
    return out


def run_hooks_warn(data: dict, phase: str, state: dict) -> None:
    """Run the stored ``phase`` hooks; a failing one is a warning and the rest still run
    (runtime-spec, poststart and poststop)."""
    items = (data.get("hooks") or {}).get(phase) or []
    if not items:
        return
    from ..errors import PyrtError
    from .config import Hook
    from .hooks import run_hooks

    for item in items:
        hook = Hook(item["path"], tuple(item.get("args") or ()), tuple(item.get("env") or ()),
                    item.get("timeout"))
        runlog.debug(f"running {phase} hook {hook.path}")
        try:
            run_hooks([hook], state, phase)
        except PyrtError as e:
            import sys

            runlog.warning(str(e))
            sys.stderr.write(f"pyrt-runtime: warning: {e}\n")


# -- commands ---------------------------------------------------------------------------

def _code(e) -> int:
    """runc's exit code 1, except a failed exec's 127 (not found) / 126 (cannot run)."""
    from ..errors import ExecError

    return e.exit_code if isinstance(e, ExecError) else 1



def create(root: str, cid: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None, disabled: str | None = None, pm=None,
           stdio=(0, 1, 2), no_pivot: bool = False, preserve_fds: int = 0) -> dict:
    """Create the container ``cid`` from ``bundle``; return its state record."""
    from .. import procutil
    from ..errors import PyrtError
    from .spec import from_spec
    from .executor import Executor

    ready = os.environ.get("PYRT_RUNTIME_READY")
    if ready:
        pm = pm or plugin_manager(disabled)
        warm_up("create", pm)
        _wait_ready(ready)
    check_preserve_fds(preserve_fds)
    st = RuntimeState(root, cid)
    old = st.load()
    if old is not None:
        if RuntimeState.status(old) != "stopped":
            raise RuntimeFailure(f"container {cid} already exists")
        delete(root, cid, force=True, disabled=disabled, pm=pm)  # a stale record: release it
    st.remove()
    os.makedirs(root, mode=0o711, exist_ok=True)
    from .. import trusted

    why = trusted.why_untrusted_dir(root)
    if why:  # the records there tell start and delete what to run and signal
        raise RuntimeFailure(f"refusing the runtime root {root}: {why}")
    try:
        os.mkdir(st.dir, 0o700)
    except FileExistsError:  # a concurrent create of the same id
        raise RuntimeFailure(f"container {cid} already exists") from None
    os.mkfifo(st.fifo, 0o600)
    os.mkfifo(st.status_fifo, 0o600)
    bundle = os.path.abspath(bundle)
    try:
        spec = read_spec(bundle)
        config = from_spec(spec, cid, bundle)
        if no_pivot:
            config.no_pivot = True
        if preserve_fds:
            config.process.preserve_fds = preserve_fds
        # as runc: the init opens a pty in the container's own devpts and the
        # namespaces plugin sends its master to this socket
        config.console_socket = check_console(console_socket, config.process.terminal, stdio)
        runlog.debug(f"creating container {cid} from {bundle}")
        pm = pm or plugin_manager(disabled)
        proc, record = Executor(pm).create(config, stdio)
        try:
            proc.detach_start(st.fifo, st.status_fifo)
            ident = procutil.identity(proc.pid)
            data = {"id": cid, "pid": proc.pid, "pid_start": ident["start"],
                    "boot": ident["boot"], "bundle": bundle, "rootfs": config.root_path,
                    "created": time.time(), "owner": "", "started": False,
                    "resources": record, "annotations": config.annotations,
                    "terminal": config.process.terminal,
                    "namespaces": [ns.type for ns in config.namespaces],
                    "process": spec.get("process"), "hooks": _hooks_record(config),
                    "seccomp": (spec.get("linux") or {}).get("seccomp"),
                    "calls": _pinned_plans(pm)}
            st.save(data)
            if pid_file:
                try:
                    write_pid_file(pid_file, proc.pid)
                except OSError as e:
                    raise RuntimeFailure(f"cannot write the pid file {pid_file}: "
                                         f"{e.strerror or e}") from None
        except BaseException:
            proc.destroy()
            Executor(pm).release(cid, record)
            raise
        runlog.debug(f"container {cid} created: init pid {proc.pid}")
        return data
    except PyrtError as e:
        st.remove()
        raise RuntimeFailure(str(e), _code(e)) from None
    except BaseException:
        st.remove()
        raise


def _pinned_plans(pm) -> dict:
    """The call plans of the hooks later commands call (``pyrt_isolation_start``), kept in
    the state: the isolation plugin that created the container starts it, and ``start``
    calls it without reading the plugin record again (pyrt_core.hookcall.plan_of)."""
    from ..hookcall import plan_of

    out = {}
    for name in _PINNED:
        plan = plan_of(pm, name)
        if plan is not None:
            out[name] = plan
    return out


def _isolation_start(cid: str, data: dict, st: RuntimeState, pm, disabled: str | None):
    """``pyrt_isolation_start`` for the container: from ``pm`` when given, else from the
    plan create kept in the state (a record only root can write, see RuntimeState.load),
    else from the runtime's plugin manager (a record of an older pyrt)."""
    kw = {"container_id": cid, "fifo": st.fifo, "status_fifo": st.status_fifo}
    plan = (data.get("calls") or {}).get("pyrt_isolation_start")
    if pm is None and isinstance(plan, dict):
        from ..hookcall import call_planned

        return call_planned("pyrt_isolation_start", plan, **kw)
    pm = pm or plugin_manager(disabled)
    return pm.hook.pyrt_isolation_start(**kw)


def start(root: str, cid: str, disabled: str | None = None, pm=None) -> dict:
    """Let a created container exec its process; raises RuntimeFailure (127/126 for exec)."""
    st, data = load(root, cid)
    status = RuntimeState.status(data)
    if status != "created":
        if status == "stopped":
            raise RuntimeFailure(f"cannot start container {cid}: container not running "
                                 "(it is stopped)")
        raise RuntimeFailure(f"cannot start a container that is {status}")
    from ..errors import PyrtError

    data["started"] = True
    st.save(data)
    try:
        started = _isolation_start(cid, data, st, pm, disabled)
    except PyrtError as e:
        raise RuntimeFailure(str(e), _code(e)) from None
    if not started:
        raise RuntimeFailure(f"cannot start container {cid}: no isolation plugin starts it "
                             "(install pyrt-namespaces)")
    for p in (st.fifo, st.status_fifo):
        try:
            os.unlink(p)
        except OSError:
            pass
    runlog.debug(f"container {cid} started")
    if (data.get("hooks") or {}).get("poststart"):
        run_hooks_warn(data, "poststart", oci_state(cid, data))
    return data


def state(root: str, cid: str) -> dict:
    _, data = load(root, cid)
    return oci_state(cid, data)


def container_pids(data: dict) -> list[int]:
    """Host pids of the container's processes: its cgroup's, else its pid namespace's."""
    from .. import procutil

    pids: set[int] = set()
    record = data.get("resources") or {}
    paths = record.get("paths") if isinstance(record, dict) else None
    if isinstance(paths, dict):
        for d in set(paths.values()):
            if not isinstance(d, str) or not d.startswith("/sys/fs/cgroup/"):
                continue
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except (OSError, ValueError):
                pass
    if pids:
        return sorted(pids)
    if not RuntimeState.alive(data):
        return []
    pid = data["pid"]
    if "pid" in (data.get("namespaces") or ()):
        return procutil.pids_in_namespace_of(pid)
    return [pid]


def kill(root: str, cid: str, sig: int, all_: bool = False, disabled: str | None = None,
         pm=None) -> None:
    """Signal the init; with ``all_`` every process of the container's cgroup (frozen
    meanwhile when it can be, as runc, so that none forks away from the signal)."""
    from .. import procutil

    _, data = load(root, cid)
    pid, start_t, boot = data.get("pid", 0), data.get("pid_start"), data.get("boot")
    if not procutil.alive(pid, start_t, boot):
        raise RuntimeFailure(f"cannot signal container {cid}: container not running")
    runlog.debug(f"sending signal {sig} to container {cid} (init {pid}{', all' if all_ else ''})")
    if not all_:
        procutil.signal_verified(pid, start_t, boot, sig)
        return
    record = data.get("resources") or {"manager": "none"}
    frozen = False
    if record.get("manager", "none") != "none" and not data.get("paused"):
        pm = pm or plugin_manager(disabled)
        try:
            frozen = bool(pm.hook.pyrt_resources_freeze(container_id=cid, record=record,
                                                        frozen=True))
        except Exception as e:  # noqa: BLE001 - signal them anyway
            runlog.debug(f"kill --all: freezing container {cid} failed: {e}")
    try:
        for p in container_pids(data):
            if p != pid:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        procutil.signal_verified(pid, start_t, boot, sig)
    finally:
        if frozen:
            pm.hook.pyrt_resources_freeze(container_id=cid, record=record, frozen=False)


def release_resources(cid: str, record: dict, pm=None, disabled: str | None = None) -> None:
    """``pyrt_resources_release`` for a container's record (the core's "none" manager
    has nothing to release: no plugin is loaded for it)."""
    if pm is None and record.get("manager", "none") == "none" and not _disabled(disabled):
        return
    pm = pm or plugin_manager(disabled)
    # the hook itself, not Executor.release: importing the executor (and the config
    # classes) would cost delete for nothing
    pm.hook.pyrt_resources_release(container_id=cid, record=record)


def _disabled(disabled: str | None) -> bool:
    return bool(disabled or os.environ.get("PYRT_DISABLE_PLUGINS", "").strip(", "))


def delete(root: str, cid: str, force: bool = False, disabled: str | None = None, pm=None) -> None:
    """Remove a stopped container (``force``: kill it first).  An unknown id is an
    error, except with ``force`` (as runc: a second ``delete --force`` is harmless)."""
    from .. import procutil

    st = RuntimeState(root, cid)
    data = st.load()
    if data is None:
        if force:
            st.remove()
            return
        raise not_exist(cid)
    status = RuntimeState.status(data)
    pid, start_t, boot = data.get("pid", 0), data.get("pid_start"), data.get("boot")
    if status in ("running", "paused") and not force:
        raise RuntimeFailure(f"cannot delete container {cid} that is not stopped: {status}")
    record = data.get("resources") or {"manager": "none"}
    if status in ("running", "created", "paused"):
        import signal

        runlog.debug(f"killing container {cid} (init {pid}) before deleting it")
        procutil.signal_verified(pid, start_t, boot, signal.SIGKILL)
        if status == "paused":  # a frozen process dies once thawed
            pm = pm or plugin_manager(disabled)
            try:
                pm.hook.pyrt_resources_freeze(container_id=cid, record=record, frozen=False)
            except Exception as e:  # noqa: BLE001 - release kills what is left
                runlog.warning(f"thawing container {cid}: {e}")
        procutil.wait_gone(pid, start_t, boot, 10.0)
    release_resources(cid, record, pm, disabled)
    st.remove()
    runlog.debug(f"container {cid} deleted")
    if (data.get("hooks") or {}).get("poststop"):
        run_hooks_warn(data, "poststop", oci_state(cid, data, "stopped"))
