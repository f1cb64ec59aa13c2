"""``exec``, ``attach``, ``logs``, ``top``: a running container's processes and output."""
from __future__ import annotations

import os
import sys

from ...errors import UsageError
from ..common import table
from . import engine_for


def _p_logs(cmd) -> None:
    lg = cmd("logs", "Show a container's output", cmd_logs)
    lg.add_argument("--follow", "-f", action="store_true")
    lg.add_argument("--tail", "-n", default="all", metavar="N")
    lg.add_argument("--timestamps", "-t", action="store_true")
    lg.add_argument("--format", choices=("text", "json"), default="text",
                    help="json: docker json-file lines (log, stream, time)")
    lg.add_argument("container", metavar="CONTAINER")


def _p_exec(cmd) -> None:
    import argparse

    ex = cmd("exec", "Run a command in a running container", cmd_exec, add_help=False)
    ex.add_argument("--help", action="help")
    ex.add_argument("--interactive", "-i", action="store_true")
    ex.add_argument("--tty", "-t", action="store_true")
    ex.add_argument("--detach", "-d", action="store_true")
    ex.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE")
    ex.add_argument("--env-file", action="append", default=[], metavar="FILE",
                    help="read variables from a file (KEY=VALUE lines; # comments)")
    ex.add_argument("--privileged", action="store_true",
                    help="every capability and no seccomp filter for this process")
    ex.add_argument("--user", "-u", default=None, metavar="USER[:GROUP]")
    ex.add_argument("--workdir", "-w", default=None, metavar="DIR")
    ex.add_argument("--detach-keys", default=None, metavar="KEYS", help="checked; see docs/lifecycle.md")
    ex.add_argument("container", metavar="CONTAINER")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def _p_attach(cmd) -> None:
    at = cmd("attach", "Attach to a running container's stdio", cmd_attach)
    at.add_argument("--no-stdin", action="store_true")
    at.add_argument("--detach-keys", default=None, metavar="KEYS",
                    help="keys that detach from the container's terminal (default ctrl-p,ctrl-q)")
    at.add_argument("container", metavar="CONTAINER")


def _p_top(cmd) -> None:
    tp = cmd("top", "Show the processes of a container", cmd_top)
    tp.add_argument("container", metavar="CONTAINER")


PARSERS = {"logs": _p_logs, "exec": _p_exec, "attach": _p_attach, "top": _p_top}


def cmd_exec(args) -> int:
    if not args.cmd:
        raise UsageError("exec needs a command to run")
    if getattr(args, "detach_keys", None) is not None:
        from .terminal import parse_detach_keys

        if parse_detach_keys(args.detach_keys) is not None and args.tty and not args.detach:
            # the exec'd process's terminal is this CLI's: no monitor would keep it open
            raise UsageError("pyrt exec cannot detach from the process it runs: --detach-keys "
                             "works with run, start and attach (exec -d runs it detached)")
    from .run import parse_env
    from .terminal import terminal_stdio

    engine = engine_for(args)
    env = parse_env(args.env, args.env_file)
    with terminal_stdio(args.tty, args.interactive, detach=args.detach) as (stdio, proxy):
        return engine.exec(args.container, list(args.cmd), env=env, user=args.user,
                           workdir=args.workdir, tty=args.tty, stdio=stdio, detach=args.detach,
                           privileged=args.privileged,
                           on_started=(lambda pid: proxy.start()) if proxy else None,
                           on_console=getattr(proxy, "adopt", None))


def cmd_attach(args) -> int:
    from ...errors import ConflictError
    from ...monitor import attach as att
    from ...monitor import conmon

    from .terminal import parse_detach_keys

    keys = parse_detach_keys(args.detach_keys)
    engine = engine_for(args)
    c = engine.get(args.container)
    if not engine.is_running(c):
        raise ConflictError(f"you cannot attach to a stopped container {c.name}: start it first")
    if c.monitor != "conmon":
        raise ConflictError(f"container {c.name} runs in the foreground of another pyrt: "
                            "only detached containers can be attached to")
    from ...engine.common import log_container_event

    paths = engine.paths(c.id)
    stdin = 0 if (c.config.interactive and not args.no_stdin) else None
    sock = att.connect(paths.attach)
    log_container_event(engine, c, "attach")  # docker's attach and detach events
    result = att.attach_conmon(sock, stdin_fd=stdin, tty=c.config.tty,
                               on_resize=lambda r, col: conmon.resize(paths, r, col),
                               detach_keys=att.DETACH_KEYS if keys is None else keys)
    if result == "detached":
        log_container_event(engine, c, "detach")
        return 0
    return engine.wait(c.id)


def cmd_logs(args) -> int:
    from ... import logs

    engine = engine_for(args)
    c = engine.get(args.container)
    tail = None
    if args.tail not in ("all", "-1"):
        try:
            tail = int(args.tail)
        except ValueError:
            raise UsageError(f"invalid --tail {args.tail!r}: a number or 'all'") from None

    def running():
        cur = engine.containers.load(c.id)
        return cur is not None and cur.state.status in ("running", "starting")

    driver = c.config.log_driver
    if driver in ("none", "journald"):
        from ...errors import PyrtError
        from ...monitor.logdrivers import NOT_READABLE, journald_running

        if driver == "none":
            raise PyrtError(NOT_READABLE)
        if not journald_running():
            raise PyrtError(f"{NOT_READABLE}: journald is not running on this host")
        logs.show_journal(c.id, sys.stdout.buffer, sys.stderr.buffer, tail=tail,
                          timestamps=args.timestamps, follow=args.follow, running=running,
                          fmt=args.format)
        return 0
    logs.show(engine.containers.log_path(c.id), sys.stdout.buffer, sys.stderr.buffer, tail=tail,
              timestamps=args.timestamps, follow=args.follow, running=running, fmt=args.format)
    return 0


def cmd_top(args) -> int:
    from ... import procutil

    engine = engine_for(args)
    c = engine.get(args.container)
    if not engine.is_running(c) or not engine.process_alive(c):
        from ...errors import ConflictError

        raise ConflictError(f"container {c.name} is not running")
    rows = [("UID", "PID", "PPID", "CMD")]
    for pid in procutil.pids_in_namespace_of(c.state.pid):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        rows.append((uid, pid, procutil.ppid(pid) or 0, procutil.cmdline(pid)))
    table(rows)
    return 0
