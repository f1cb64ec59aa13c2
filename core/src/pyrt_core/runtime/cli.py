"""``pyrt-runtime``: pyrt's OCI runtime behind runc's command line.

::

    pyrt-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug]
                 [--systemd-cgroup] [--rootless BOOL] [--disable-plugins A,B] [--version]
      create --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot]
             [--no-new-keyring] [--preserve-fds N] ID
      start ID | state ID | pause ID | resume ID | features
      kill [--all] ID [SIGNAL]            (9, KILL, SIGKILL; default SIGTERM)
      delete [--force] ID
      exec [--process F | -t --cwd D -e K=V -u UID[:GID] --cap C --no-new-privs]
           [--detach] [--pid-file F] [--console-socket S] [--preserve-fds N] ID [ARGS...]
      ps [--format table|json] ID [PS ARGS...]
      list [--format table|json] [-q]
      update [--resources F|-] [--memory M --cpu-quota Q --pids-limit N ...] ID
      events [--stats] [--interval 5s] ID

``create`` leaves the container's init alive and waiting before the user's
process (the caller, a child subreaper such as conmon or containerd's shim,
becomes its reaper), writes the pid file and exits; ``start`` lets it exec
(exit 127/126 for a failed exec, as docker).  Errors are one line on stderr,
and with ``--log`` a line in the log (``--log-format json``: runc's
``{"level","msg","time"}``); runc's wording ("does not exist",
"container not running") lets engines map them.  Exit code 1, as runc.

The commands live in small modules (:mod:`.lifecycle`, :mod:`.commands_exec`,
:mod:`.commands_resources`, :mod:`.commands_query`, :mod:`.features`),
imported only by the command that needs them; state is kept by
:mod:`.state` under ``--root``.
"""
from __future__ import annotations

import os
import sys

from .common import RuntimeFailure, parse_signal  # noqa: F401 - the engine imports them here
from .state import DEFAULT_ROOT, RuntimeState  # noqa: F401 - RuntimeState: the engine

_LIFECYCLE = ("create", "delete", "kill", "start", "state", "warm_up")


def __getattr__(name):
    """``create``, ``start``, ``state``, ``kill``, ``delete``, ``warm_up`` (the engine and
    recovery use them from here): imported on first use, so that a command pays only for
    its own."""
    if name in _LIFECYCLE:
        from . import lifecycle

        return getattr(lifecycle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _bool_text(text: str) -> str:
    import argparse

    t = str(text).lower()
    if t not in ("true", "false", "auto", "1", "0"):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: true, false or auto")
    return t


# -- the hot commands' parser ------------------------------------------------------------
# An engine runs create, start, state, kill and delete for every container: importing
# argparse and building the full parser costs each of them ~10 ms.  Their plain forms
# are parsed here; anything else (--help, an unknown or malformed option, a missing or
# extra argument, another command) goes to argparse, which parses it or prints its
# usual message.

class _Args:
    """What :func:`build_parser`'s ``parse_args`` gives, for the hot commands."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


_GLOBAL_VALUE = {"--root": "root", "--log": "log", "--log-format": "log_format",
                 "--disable-plugins": "disable_plugins", "--criu": "criu"}
_GLOBAL_FLAG = {"--debug": "debug", "--systemd-cgroup": "systemd_cgroup"}
#: command -> (options taking a value, flag options, positional names, optional positionals)
_HOT = {
    "create": ({"--bundle": "bundle", "-b": "bundle", "--pid-file": "pid_file",
                "--console-socket": "console_socket", "--preserve-fds": "preserve_fds"},
               {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}, ("id",), ()),
    "start": ({}, {}, ("id",), ()),
    "state": ({}, {}, ("id",), ()),
    "delete": ({}, {"--force": "force", "-f": "force"}, ("id",), ()),
    "kill": ({}, {"--all": "all", "-a": "all"}, ("id",), ("signal",)),
}
_HOT_DEFAULTS = {"create": {"bundle": ".", "pid_file": None, "console_socket": None,
                            "preserve_fds": 0, "no_pivot": False, "no_new_keyring": False},
                 "delete": {"force": False}, "kill": {"all": False, "signal": "SIGTERM"}}


def _fast_parse(argv):
    """``argv`` of a hot command as :class:`_Args`, or None (then argparse decides)."""
    a = {"root": os.environ.get("PYRT_RUNTIME_ROOT", DEFAULT_ROOT), "log": None,
         "log_format": "text", "disable_plugins": None, "criu": None, "debug": False,
         "systemd_cgroup": False, "rootless": None, "version": False, "command": None}
    i, n = 0, len(argv)
    while i < n:  # global options, up to the command
        arg = argv[i]
        if arg in _HOT:
            break
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_VALUE:
            if not eq:
                i += 1
                if i >= n:
                    return None
                value = argv[i]
            a[_GLOBAL_VALUE[name]] = value
        elif arg in _GLOBAL_FLAG:
            a[_GLOBAL_FLAG[arg]] = True
        else:
            return None
        i += 1
    if i >= n or a["log_format"] not in ("text", "json"):
        return None
    cmd = argv[i]
    values, flags, positional, optional = _HOT[cmd]
    a["command"] = cmd
    a.update(_HOT_DEFAULTS.get(cmd, {}))
    pos = []
    i += 1
    while i < n:
        arg = argv[i]
        i += 1
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in values and not (eq and not name.startswith("--")):
                if not eq:
                    if i >= n:
                        return None
                    value = argv[i]
                    i += 1
                a[values[name]] = value
            elif arg in flags:
                a[flags[arg]] = True
            else:
                return None
        else:
            pos.append(arg)
    if not len(positional) <= len(pos) <= len(positional) + len(optional):
        return None
    for k, v in zip(positional + optional, pos):
        a[k] = v
    if cmd == "create":
        if not str(a["preserve_fds"]).isdigit():
            return None
        a["preserve_fds"] = int(a["preserve_fds"])
    return _Args(**a)


def _exit_now(code) -> None:
    """End the process without the interpreter's finalisation (as ``pyrt``'s
    :func:`pyrt_core.cli.main.exit_now`, without importing that CLI's argparse):
    conmon and the engines wait for our exit."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 0  # a closed pipe: nothing more to say
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def build_parser():
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message):
            sys.stderr.write(f"pyrt-runtime: {message}\n")
            sys.exit(2)

    p = _Parser(prog="pyrt-runtime", description="pyrt's OCI runtime (runc's command line)")
    p.add_argument("--root", default=os.environ.get("PYRT_RUNTIME_ROOT", DEFAULT_ROOT),
                   help=f"directory of the containers' state (default {DEFAULT_ROOT})")
    p.add_argument("--log", default=None, metavar="FILE", help="append log lines to FILE")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--disable-plugins", default=None, metavar="A,B")
    p.add_argument("--debug", action="store_true", help="write debug lines to the log")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="not supported: pyrt manages cgroupfs cgroups (refused by create)")
    p.add_argument("--rootless", nargs="?", const="true", default=None, type=_bool_text)
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("--version", "-v", action="store_true")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("create", help="create a container from a bundle")
    c.add_argument("--bundle", "-b", default=".")
    c.add_argument("--pid-file", default=None)
    c.add_argument("--console-socket", default=None)
    c.add_argument("--no-pivot", action="store_true")
    c.add_argument("--no-new-keyring", action="store_true")
    c.add_argument("--preserve-fds", type=int, default=0)
    c.add_argument("id")

    for name, what in (("start", "start a created container"),
                       ("state", "print a container's state (JSON)"),
                       ("pause", "freeze every process of a container"),
                       ("resume", "thaw a paused container")):
        sub.add_parser(name, help=what).add_argument("id")

    k = sub.add_parser("kill", help="send a signal to a container's init (or all processes)")
    k.add_argument("--all", "-a", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")

    d = sub.add_parser("delete", help="remove a stopped container (--force: kill it first)")
    d.add_argument("--force", "-f", action="store_true")
    d.add_argument("id")

    e = sub.add_parser("exec", help="run a process in a running container")
    e.add_argument("--process", "-p", default=None, metavar="FILE")
    e.add_argument("--detach", "-d", action="store_true")
    e.add_argument("--pid-file", default=None)
    e.add_argument("--console-socket", default=None)
    e.add_argument("--tty", "-t", action="store_true")
    e.add_argument("--cwd", default=None)
    e.add_argument("--env", "-e", action="append", default=[])
    e.add_argument("--user", "-u", default=None)
    e.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    e.add_argument("--cap", "-c", action="append", default=[])
    e.add_argument("--no-new-privs", action="store_true")
    e.add_argument("--preserve-fds", type=int, default=0)
    e.add_argument("id")
    e.add_argument("args", nargs=argparse.REMAINDER)

    ps = sub.add_parser("ps", help="list a container's processes")
    ps.add_argument("--format", "-f", default="table")
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)

    ls = sub.add_parser("list", help="list the containers")
    ls.add_argument("--format", "-f", default="table")
    ls.add_argument("--quiet", "-q", action="store_true")

    sub.add_parser("features", help="print what this runtime implements (JSON)")

    u = sub.add_parser("update", help="change a running container's resource limits")
    u.add_argument("--resources", "-r", default=None, metavar="FILE|-")
    from .commands_resources import UPDATE_FLAGS

    for flag in UPDATE_FLAGS:
        u.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None)
    u.add_argument("id")

    ev = sub.add_parser("events", help="print a container's resource usage (JSON)")
    ev.add_argument("--stats", action="store_true")
    ev.add_argument("--interval", default="5s")
    ev.add_argument("id")
    return p


# -- commands ----------------------------------------------------------------------------

def _create(args) -> int:
    if args.systemd_cgroup:
        raise RuntimeFailure("--systemd-cgroup is not supported: pyrt's cgroups plugin manages "
                             "cgroupfs cgroups only (use the cgroupfs cgroup manager)")
    from .lifecycle import create

    create(args.root, args.id, args.bundle, args.pid_file, args.console_socket,
           args.disable_plugins, no_pivot=args.no_pivot, preserve_fds=args.preserve_fds)
    return 0


def _exec(args) -> int:
    from .commands_exec import exec_, process_from_args, read_process_file

    if args.process:
        process = read_process_file(args.process)
    else:
        _, data = _load(args)
        argv = args.args[1:] if args.args[:1] == ["--"] else args.args
        process = process_from_args(data.get("process"), argv, tty=args.tty, cwd=args.cwd,
                                    env=args.env, user=args.user, caps=args.cap,
                                    no_new_privs=args.no_new_privs)
        if args.additional_gids:
            u = process.setdefault("user", {})
            u["additionalGids"] = list(u.get("additionalGids") or []) + args.additional_gids
    return exec_(args.root, args.id, process, detach=args.detach, pid_file=args.pid_file,
                 console_socket=args.console_socket, preserve_fds=args.preserve_fds,
                 disabled=args.disable_plugins)


def _load(args):
    from .common import load

    return load(args.root, args.id)


def _update(args) -> int:
    from .commands_resources import UPDATE_FLAGS, read_resources_file, resources_doc, update

    base = read_resources_file(args.resources) if args.resources else {}
    doc = resources_doc(base, {f: getattr(args, f) for f in UPDATE_FLAGS})
    update(args.root, args.id, doc, args.disable_plugins)
    return 0


def _duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for u in ("ms", "s", "m", "h"):
        if text.endswith(u):
            try:
                return float(text[: -len(u)]) * units[u]
            except ValueError:
                break
    raise RuntimeFailure(f"invalid --interval {text!r} (e.g. 5s, 500ms)")


def _events(args) -> int:
    import time

    from .commands_resources import stats

    if args.stats:
        print(_json().dumps(stats(args.root, args.id, args.disable_plugins)), flush=True)
        return 0
    interval = _duration(args.interval)
    while True:
        try:
            line = stats(args.root, args.id, args.disable_plugins)
        except RuntimeFailure:
            _load(args)  # gone: "does not exist"; stopped: the stream ends
            return 0
        print(_json().dumps(line), flush=True)
        time.sleep(interval)


def _json():
    import json

    return json


def _dispatch(args) -> int:
    cmd = args.command
    if cmd == "create":
        return _create(args)
    if cmd == "start":
        from .lifecycle import start

        start(args.root, args.id, args.disable_plugins)
    elif cmd == "state":
        from .lifecycle import state

        from ..jsonlean import dumps_indented

        print(dumps_indented(state(args.root, args.id), 2))
    elif cmd == "kill":
        from .lifecycle import kill

        kill(args.root, args.id, parse_signal(args.signal), args.all, args.disable_plugins)
    elif cmd == "delete":
        from .lifecycle import delete

        delete(args.root, args.id, args.force, args.disable_plugins)
    elif cmd == "exec":
        return _exec(args)
    elif cmd in ("pause", "resume"):
        from . import commands_resources

        getattr(commands_resources, cmd)(args.root, args.id, args.disable_plugins)
    elif cmd == "update":
        return _update(args)
    elif cmd == "events":
        return _events(args)
    elif cmd == "ps":
        from .commands_query import ps

        args_ps = args.ps_args[1:] if args.ps_args[:1] == ["--"] else args.ps_args
        print(ps(args.root, args.id, args.format, args_ps))
    elif cmd == "list":
        from .commands_query import list_

        out = list_(args.root, args.format, args.quiet)
        if out:
            print(out)
    elif cmd == "features":
        from .features import features

        print(_json().dumps(features(args.disable_plugins), indent=2))
    return 0


def main(argv=None) -> int:
    if argv is None:  # the pyrt-runtime program: end without the interpreter's finalisation
        code = main(sys.argv[1:])  # (conmon waits for our exit: 10-30 ms saved)
        _exit_now(code)
        return code
    args = _fast_parse(argv) or build_parser().parse_args(argv)
    if args.version:
        from .. import __version__
        from .state import OCI_VERSION

        print(f"pyrt-runtime version {__version__}\nspec: {OCI_VERSION}")
        return 0
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return 2
    from . import runlog

    runlog.setup(args.log, args.log_format, args.debug)
    runlog.debug(f"pyrt-runtime {' '.join(sys.argv[1:] if argv is None else argv)}")
    from ..errors import ExecError, PyrtError

    try:
        return _dispatch(args)
    except RuntimeFailure as e:
        msg, code = str(e), e.exit_code
    except ExecError as e:
        msg, code = str(e), e.exit_code
    except PyrtError as e:
        msg, code = str(e), 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:  # events (a stream) or exec, interrupted
        return 130
    runlog.error(msg, code if code in (126, 127) else None)
    sys.stderr.write(f"pyrt-runtime: {msg}\n")
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
