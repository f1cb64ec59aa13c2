"""``pyrt-runtime``: pyrt's runtime behind a runc-style command line.

The commands a monitor (conmon) and an engine call::

    pyrt-runtime [--root DIR] [--log FILE] [--log-format text|json] [--disable-plugins A,B]
                 create --bundle DIR --pid-file FILE [--console-socket SOCK] ID
                 start ID
                 state ID
                 kill [--all] ID [SIGNAL]
                 delete [--force] ID

``create`` leaves the container's init alive and waiting before the user's
process (the caller, conmon, becomes its reaper because it is a child
subreaper), writes the pid file and exits.  ``start`` lets it exec and
reports a failed exec (exit 127/126 as docker).  State lives under
``--root`` (see :mod:`pyrt_core.runtime.state`).  Options runc accepts but
pyrt has no use for (``--systemd-cgroup``, ``--no-pivot``,
``--no-new-keyring``, ``--rootless``, ``--debug``) are accepted and ignored.

A later issue extends this to full runc compatibility (``exec``, ``ps``,
``pause``/``resume``, ``update``, ``features``); the structure (one function
per command over :class:`pyrt_core.runtime.executor.Executor`) is meant for it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .state import DEFAULT_ROOT, RuntimeState


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"pyrt-runtime: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pyrt-runtime", description="pyrt's OCI runtime (runc-style command line)")
    p.add_argument("--root", default=os.environ.get("PYRT_RUNTIME_ROOT", DEFAULT_ROOT))
    p.add_argument("--log", default=None)
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--disable-plugins", default=None, metavar="A,B")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument("--rootless", default=None)
    p.add_argument("--version", action="store_true")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("create")
    c.add_argument("--bundle", "-b", default=".")
    c.add_argument("--pid-file", default=None)
    c.add_argument("--console-socket", default=None)
    c.add_argument("--no-pivot", action="store_true")
    c.add_argument("--no-new-keyring", action="store_true")
    c.add_argument("--preserve-fds", type=int, default=0)
    c.add_argument("id")

    s = sub.add_parser("start")
    s.add_argument("id")

    st = sub.add_parser("state")
    st.add_argument("id")

    k = sub.add_parser("kill")
    k.add_argument("--all", "-a", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")

    d = sub.add_parser("delete")
    d.add_argument("--force", "-f", action="store_true")
    d.add_argument("id")
    return p


class RuntimeFailure(Exception):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def parse_signal(text: str) -> int:
    import signal

    t = str(text).strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < 65:
            return n
        raise RuntimeFailure(f"invalid signal {text!r}")
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return int(getattr(signal.Signals, t))
    except AttributeError:
        raise RuntimeFailure(f"invalid signal {text!r}") from None


def _plugin_manager(disabled: str | None):
    from ..plugins import make_plugin_manager

    blocked = [x for x in (disabled or os.environ.get("PYRT_DISABLE_PLUGINS", "")).split(",") if x]
    return make_plugin_manager(blocked=blocked)


def _write_pid_file(path: str, pid: int) -> None:
    from ..fsutil import atomic_write

    atomic_write(os.path.abspath(path), str(pid), durable=False)


def _send_console(sock_path: str, master: int) -> None:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        socket.send_fds(s, [b"/dev/ptmx"], [master])


def _warm_up() -> None:
    """Import what create will need while the engine still writes the bundle."""
    import importlib

    for mod in ("pyrt_namespaces.spawn", "pyrt_cgroups.manager", "pyrt_cgroups.detect"):
        try:
            importlib.import_module(mod)
        except Exception:  # noqa: BLE001 - only a warm-up
            pass


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


# -- commands ---------------------------------------------------------------------------


def create(root: str, cid: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None, disabled: str | None = None, pm=None,
           stdio=(0, 1, 2)) -> dict:
    """Create the container ``cid`` from ``bundle``; return its state record."""
    from .. import procutil
    from ..errors import PyrtError
    from .executor import Executor, load_bundle

    ready = os.environ.get("PYRT_RUNTIME_READY")
    if ready:
        pm = pm or _plugin_manager(disabled)
        _warm_up()
        _wait_ready(ready)
    st = RuntimeState(root, cid)
    old = st.load()
    if old is not None and RuntimeState.status(old) != "stopped":
        raise RuntimeFailure(f"container {cid} already exists")
    st.remove()
    os.makedirs(st.dir, mode=0o700)
    os.mkfifo(st.fifo, 0o600)
    os.mkfifo(st.status_fifo, 0o600)
    bundle = os.path.abspath(bundle)
    master = slave = None
    try:
        config = load_bundle(bundle, cid)
        if console_socket:
            if not config.process.terminal:
                raise RuntimeFailure("--console-socket needs process.terminal to be true")
            master, slave = os.openpty()
            stdio = (slave, slave, slave)
        elif config.process.terminal and not os.isatty(stdio[0]):
            raise RuntimeFailure("process.terminal is true but no --console-socket was given "
                                 "and stdin is not a terminal")
        proc, record = Executor(pm or _plugin_manager(disabled)).create(config, stdio)
        try:
            if master is not None:
                _send_console(console_socket, master)
            proc.detach_start(st.fifo, st.status_fifo)
        except BaseException:
            proc.destroy()
            Executor(pm or _plugin_manager(disabled)).release(cid, record)
            raise
        ident = procutil.identity(proc.pid)
        data = {"id": cid, "pid": proc.pid, "pid_start": ident["start"], "boot": ident["boot"],
                "bundle": bundle, "created": time.time(), "started": False,
                "resources": record, "annotations": config.annotations,
                "terminal": config.process.terminal}
        st.save(data)
        if pid_file:
            _write_pid_file(pid_file, proc.pid)
        return data
    except PyrtError as e:
        st.remove()
        raise RuntimeFailure(str(e), e.exit_code) from None
    except BaseException:
        st.remove()
        raise
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)


def start(root: str, cid: str) -> dict:
    """Let a created container exec its process; raises ExecError (127/126) if it cannot."""
    st = RuntimeState(root, cid)
    data = st.load()
    if data is None:
        raise RuntimeFailure(f"container {cid} does not exist")
    status = RuntimeState.status(data)
    if status != "created":
        raise RuntimeFailure(f"cannot start a container that is {status}")
    from ..errors import PyrtError

    try:
        from pyrt_namespaces.handle import start_fifo
    except ImportError:  # pragma: no cover - the namespaces plugin made the FIFO
        raise RuntimeFailure("pyrt-namespaces is not installed") from None
    data["started"] = True
    st.save(data)
    try:
        start_fifo(st.fifo, st.status_fifo)
    except PyrtError as e:
        raise RuntimeFailure(str(e), e.exit_code) from None
    for p in (st.fifo, st.status_fifo):
        try:
            os.unlink(p)
        except OSError:
            pass
    return data


def state(root: str, cid: str) -> dict:
    st = RuntimeState(root, cid)
    data = st.load()
    if data is None:
        raise RuntimeFailure(f"container {cid} does not exist")
    status = RuntimeState.status(data)
    return {"ociVersion": "1.0.2", "id": cid, "status": status,
            "pid": data["pid"] if status != "stopped" else 0, "bundle": data.get("bundle", ""),
            "annotations": data.get("annotations") or {}}


def kill(root: str, cid: str, sig: int, all_: bool = False) -> None:
    from .. import procutil

    st = RuntimeState(root, cid)
    data = st.load()
    if data is None:
        raise RuntimeFailure(f"container {cid} does not exist")
    pid, start_t, boot = data.get("pid", 0), data.get("pid_start"), data.get("boot")
    if not procutil.alive(pid, start_t, boot):
        raise RuntimeFailure(f"container {cid} is not running")
    if all_:
        for p in procutil.pids_in_namespace_of(pid):
            if p != pid:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
    procutil.signal_verified(pid, start_t, boot, sig)


def delete(root: str, cid: str, force: bool = False, disabled: str | None = None, pm=None) -> None:
    import signal

    from .. import procutil
    from .executor import Executor

    st = RuntimeState(root, cid)
    data = st.load()
    if data is None:
        if force:
            st.remove()
            return
        raise RuntimeFailure(f"container {cid} does not exist")
    status = RuntimeState.status(data)
    pid, start_t, boot = data.get("pid", 0), data.get("pid_start"), data.get("boot")
    if status == "running" and not force:
        raise RuntimeFailure(f"cannot delete container {cid} that is not stopped: {status}")
    if status in ("running", "created"):
        procutil.signal_verified(pid, start_t, boot, signal.SIGKILL)
        procutil.wait_gone(pid, start_t, boot, 10.0)
    record = data.get("resources") or {"manager": "none"}
    Executor(pm or _plugin_manager(disabled)).release(cid, record)
    st.remove()


# -- main -------------------------------------------------------------------------------


def _log(args, level: str, msg: str) -> None:
    if not args.log:
        return
    try:
        with open(args.log, "a") as f:
            if args.log_format == "json":
                f.write(json.dumps({"level": level, "msg": msg,
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
            else:
                f.write(f"{level}: {msg}\n")
    except OSError:
        pass


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        from .. import __version__

        print(f"pyrt-runtime version {__version__}\nspec: 1.0.2")
        return 0
    if args.command is None:
        build_parser().print_help()
        return 2
    from ..errors import PyrtError

    try:
        if args.command == "create":
            create(args.root, args.id, args.bundle, args.pid_file, args.console_socket,
                   args.disable_plugins)
        elif args.command == "start":
            start(args.root, args.id)
        elif args.command == "state":
            print(json.dumps(state(args.root, args.id), indent=2))
        elif args.command == "kill":
            kill(args.root, args.id, parse_signal(args.signal), args.all)
        elif args.command == "delete":
            delete(args.root, args.id, args.force, args.disable_plugins)
        return 0
    except RuntimeFailure as e:
        _log(args, "error", str(e))
        sys.stderr.write(f"pyrt-runtime: {e}\n")
        return e.exit_code
    except PyrtError as e:
        _log(args, "error", str(e))
        sys.stderr.write(f"pyrt-runtime: {e}\n")
        return e.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
