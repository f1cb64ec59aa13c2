"""``start``, ``stop``, ``restart``, ``kill``, ``wait``: a container's runs."""
from __future__ import annotations

import sys

from ...errors import UsageError
from . import each, engine_for


def _p_start(cmd) -> None:
    st = cmd("start", "Start created or stopped containers", cmd_start)
    st.add_argument("--attach", "-a", action="store_true", help="attach stdout/stderr and wait for the exit")
    st.add_argument("--interactive", "-i", action="store_true", help="attach stdin")
    st.add_argument("--all", action="store_true", help="start every container that is not running")
    st.add_argument("--detach-keys", default=None, metavar="KEYS",
                    help="keys that detach from the container's terminal (default ctrl-p,ctrl-q)")
    st.add_argument("containers", nargs="*", metavar="CONTAINER")


def _p_stop(cmd) -> None:
    sp = cmd("stop", "Stop running containers (stop signal, then SIGKILL)", cmd_stop)
    sp.add_argument("--time", "-t", type=int, default=None, metavar="N",
                    help="seconds to wait before SIGKILL (default: --stop-timeout or 10)")
    sp.add_argument("--all", "-a", action="store_true", help="stop every running container")
    sp.add_argument("containers", nargs="*", metavar="CONTAINER")


def _p_restart(cmd) -> None:
    rs = cmd("restart", "Restart containers", cmd_restart)
    rs.add_argument("--time", "-t", type=int, default=None, metavar="N")
    rs.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_kill(cmd) -> None:
    k = cmd("kill", "Send a signal to running containers", cmd_kill)
    # docker's `kill -s SIG`: -s is the signal here, not the global --storage-driver
    k.conflict_handler = k._optionals.conflict_handler = "resolve"
    k.add_argument("--signal", "-s", default="SIGKILL", metavar="SIG")
    k.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_wait(cmd) -> None:
    w = cmd("wait", "Wait for containers to stop and print their exit codes", cmd_wait)
    w.add_argument("containers", nargs="+", metavar="CONTAINER")


PARSERS = {"start": _p_start, "stop": _p_stop, "restart": _p_restart, "kill": _p_kill,
           "wait": _p_wait}


def start_attached(engine, ref, stdin: bool, streams: set[str] | None = None,
                   sig_proxy: bool = False, detach_keys: bytes | None = None) -> int:
    """start -a: start under conmon, copy its output (and our stdin) until it exits.

    ``streams``: the output streams shown (``run -a``; None: both).  ``sig_proxy``
    (``run``'s default, without a tty as docker): the signals this CLI gets go to the
    container (engine.kill); without it SIGINT/SIGTERM end this CLI and the container runs
    on under conmon.  ``detach_keys``: docker's ``--detach-keys`` (default ctrl-p ctrl-q)."""
    import os

    from ...engine.common import log_container_event
    from ...monitor import attach as att
    from ...monitor import conmon

    c = engine.get(ref)
    paths = engine.paths(c.id)
    held = {}

    def connect(_c):
        try:
            held["sock"] = att.connect(paths.attach)
        except Exception:  # noqa: BLE001 - the output is in the log anyway
            return
        log_container_event(engine, c, "attach")  # docker's, before the start's

    if not (c.state.status in ("running", "starting") and engine.is_running(c)):
        engine.start(c, before_start=connect)
    else:
        connect(c)
    c = engine.reload(c.id)
    result = "exited"
    null = -1
    out_fd, err_fd = 1, 2
    if streams is not None and not ("stdout" in streams and "stderr" in streams):
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        out_fd = 1 if "stdout" in streams else null
        err_fd = 2 if "stderr" in streams else null
    proxy = _signal_proxy(engine, c.id) if sig_proxy and not c.config.tty else None
    try:
        if "sock" in held:
            result = att.attach_conmon(held["sock"], stdin_fd=0 if stdin else None,
                                       stdout_fd=out_fd, stderr_fd=err_fd, tty=c.config.tty,
                                       on_resize=lambda r, col: conmon.resize(paths, r, col),
                                       detach_keys=att.DETACH_KEYS if detach_keys is None
                                       else detach_keys)
        if result == "detached":
            log_container_event(engine, c, "detach")
            return 0
        return engine.wait(c.id)
    finally:
        if proxy is not None:
            proxy.__exit__(None, None, None)
        if null >= 0:
            os.close(null)


def _signal_proxy(engine, cid: str):
    """While attached: the signals ``pyrt run`` forwards (executor.FORWARDED_SIGNALS) go to
    the container through the engine (its runtime's kill for another runtime)."""
    from ...runtime.executor import forward_signals

    class _Container:
        @staticmethod
        def kill(sig: int) -> None:
            try:
                engine.kill(cid, sig)
            except Exception:  # noqa: BLE001 - it exited meanwhile
                pass

    proxy = forward_signals(_Container())
    proxy.__enter__()
    return proxy


def cmd_start(args) -> int:
    keys = None
    if getattr(args, "detach_keys", None) is not None:  # (the quick parser has no such flag)
        from .terminal import parse_detach_keys

        keys = parse_detach_keys(args.detach_keys)
    engine = engine_for(args)
    refs = list(args.containers)
    if args.all:
        refs += [c.id for c in engine.containers.records()
                 if c.state.status not in ("running", "starting")]
    if not refs:
        raise UsageError("start needs at least one container (or --all)")
    if args.attach or args.interactive:
        if len(refs) != 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        return start_attached(engine, refs[0], stdin=args.interactive, detach_keys=keys)
    return each(refs, lambda ref: (engine.start(ref), ref)[1])


def cmd_stop(args) -> int:
    engine = engine_for(args)
    refs = list(args.containers)
    if args.all:
        refs = [c.id for c in engine.containers.records() if c.state.status in ("running", "starting")]
        if not refs:
            return 0
        # in parallel, as a daemon stopping its containers would
        from concurrent.futures import ThreadPoolExecutor

        from ...errors import PyrtError

        def one(cid):
            try:
                engine.stop(cid, args.time)
                return cid, None
            except PyrtError as e:
                return cid, e

        code = 0
        with ThreadPoolExecutor(max_workers=min(32, len(refs))) as pool:
            for cid, err in pool.map(one, refs):
                if err is None:
                    print(cid)
                else:
                    sys.stderr.write(f"Error: {err}\n")
                    code = 1
        return code
    if not refs:
        raise UsageError("stop needs at least one container (or --all)")
    return each(refs, lambda ref: (engine.stop(ref, args.time), ref)[1])


def cmd_kill(args) -> int:
    from ...runtime.cli import RuntimeFailure, parse_signal

    try:
        sig = parse_signal(args.signal)
    except RuntimeFailure as e:
        raise UsageError(str(e)) from None
    engine = engine_for(args)
    return each(args.containers, lambda ref: (engine.kill(ref, sig), ref)[1])


def cmd_restart(args) -> int:
    engine = engine_for(args)

    def one(ref):
        engine.restart(ref, args.time)
        return ref

    return each(args.containers, one)


def cmd_wait(args) -> int:
    engine = engine_for(args)
    return each(args.containers, lambda ref: engine.wait(ref))
