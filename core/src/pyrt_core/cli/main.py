"""``pyrt`` command line: parsing and dispatch.

Only argparse and the standard library are imported before a command is
chosen; each command's module is imported when it runs.  Errors print one
line, ``Error: <message>``, and exit with docker's codes (125 for pyrt's
own errors, 126/127 when the container's command cannot run / is not
found).
"""
from __future__ import annotations

import os
import sys

from .. import __version__

# argparse (~10-15 ms: re, gettext, enum) is imported only when a command line is not
# one of the plain forms cli.quick reads (``ps``, ``rm``, ``stop``, ``--version``...)


_PARSER = None


def _parser_class():
    """The ``Parser`` class (argparse's, made when first needed)."""
    global _PARSER
    if _PARSER is not None:
        return _PARSER
    import argparse

    class Parser(argparse.ArgumentParser):
        """argparse, but usage errors are one line and exit 125 like docker's, and long
        options are never abbreviated (docker has no abbreviations: ``--priv`` is an
        error, not ``--privileged``).  Every parser of the command line is one of these:
        the commands' (``cmd``), their subcommands (``add_subparsers`` makes parsers of
        its parent's class) and the plugins' commands."""

        def __init__(self, *args, **kwargs):
            kwargs["allow_abbrev"] = False
            super().__init__(*args, **kwargs)

        def error(self, message):  # noqa: D401
            sys.stderr.write(f"Error: {self.prog}: {message}\nSee '{self.prog} --help'.\n")
            sys.exit(125)

    _PARSER = Parser
    return Parser


def __getattr__(name):  # ``main.Parser`` for callers that subclass or check it
    if name == "Parser":
        return _parser_class()
    raise AttributeError(name)


#: which module builds each command's parser (its ``PARSERS[name]``); a unit test
#: checks this against the modules
AREAS = {
    "containers": ("run", "create", "inspect", "ps", "rm", "rename", "start", "stop", "restart", "kill",
                   "wait", "logs", "exec", "attach", "pause", "unpause", "stats", "update", "top",
                   "port", "system", "healthcheck"),
    "images": ("load", "images", "tag", "rmi", "save"),
    "management": ("container", "image"),
    "system": ("info", "version", "runtime"),
    "completion": ("completion",),
    "volumes": ("volume",),
    "events": ("events",),
}
_AREA_OF = {name: area for area, names in AREAS.items() for name in names}
#: global options that take a value (``--root DIR``); the others are --help and --version
_GLOBAL_VALUE = ("--root", "--runroot", "--storage-driver", "-s", "--storage-opt", "--config")


def command_word(argv) -> str | None:
    """The command ``argv`` names, when that is certain without argparse: the first word
    after the global options, spelt out in full (a core command's, or another word: a
    plugin's command, looked up in :func:`build_parser`).  None for anything else (no
    command, --help, --version, an unknown option), where the whole parser is built."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_VALUE:
            i += 2
        elif a.startswith("--") and "=" in a and a.split("=", 1)[0] in _GLOBAL_VALUE:
            i += 1
        elif a.startswith("-"):
            return None
        else:
            return a
    return None


def build_parser(only: str | None = None):
    """The parser of every command, or with ``only`` of that command alone (what
    ``main`` uses: building ~40 parsers costs more than most commands' work)."""
    import importlib

    from .quick import add_global_options

    Parser = _parser_class()
    p = Parser(prog="pyrt", description="pyrt: a pluggable container engine.")
    p.add_argument("--version", "-v", action="version", version=f"pyrt version {__version__}")
    add_global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    made = {}

    def cmd(name, help, func, aliases=(), add_help=True, storage_opt=True):
        sp = sub.add_parser(name, help=help, description=help, aliases=list(aliases),
                            add_help=add_help)
        add_global_options(sp, suppress=True, storage_opt=storage_opt)
        sp.set_defaults(func=func)
        made[name] = sp
        return sp

    # one module per area; each command's builder adds its flags (argparse only: heavy
    # imports happen inside the command functions); plugins add commands and flags
    # (cli/extensions.py)
    from . import extensions

    if only is not None:
        if only in _AREA_OF:
            area = importlib.import_module(f"{__package__}.{_AREA_OF[only]}")
            area.PARSERS[only](cmd)
            extensions.add_plugin_flags(only, made[only])
            return p
        ep = extensions.plugin_commands(_AREA_OF.keys()).get(only)
        if ep is not None:
            extensions.add_plugin_command(ep, cmd)
            return p
        missing = extensions.missing_command(only)
        if missing is not None:
            raise missing
        only = None  # not a command: the whole parser says so, and what there is
    for area_name in AREAS:
        importlib.import_module(f"{__package__}.{area_name}").add_parsers(cmd)
    for ep in extensions.plugin_commands(_AREA_OF.keys()).values():
        extensions.add_plugin_command(ep, cmd)
    for name in extensions.EXTENSIBLE:
        extensions.add_plugin_flags(name, made[name])
    return p


def main(argv=None) -> int:
    """Run the command line ``argv`` and return its exit code.  Called as the program
    (``argv`` None: the ``pyrt`` console script), it ends the process itself once the
    command is done (see :func:`exit_now`)."""
    if argv is None:
        code = _main(sys.argv[1:])
        exit_now(code)
        return code
    return _main(argv)


def exit_now(code) -> None:
    """Skip the interpreter's finalisation (tearing down every module and object: 10-30 ms,
    paid by every command and on the critical path of conmon's exit command): flush
    stdout/stderr and end the process, unless another thread still runs (then Python's
    normal exit waits for it)."""
    threading = sys.modules.get("threading")  # not imported: no other thread
    if threading is not None and threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 0  # a closed pipe: as before, nothing more to say
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _main(argv) -> int:
    from . import quick

    if quick.is_version(argv):
        sys.stdout.write(f"pyrt version {__version__}\n")
        return 0
    args = quick.parse(argv)
    if args is not None:
        args.plugin_options = {}
        return _run(args)
    word = command_word(argv)
    if word in ("run", "create"):  # their plain forms without argparse (cli.specparse)
        from .specparse import parse as parse_run

        args = parse_run(argv)
        if args is not None:
            from .extensions import collect_plugin_options

            collect_plugin_options(args)
            return _run(args)
    if word == "runtime":  # everything after it is the runtime's (its own --root, --log...)
        from .system import cmd_runtime

        class _Args:
            runtime_args = argv[argv.index("runtime") + 1:]

        return cmd_runtime(_Args)
    from ..errors import PyrtError

    try:
        parser = build_parser(only=word)
    except PyrtError as e:  # a plugin's command that cannot be had
        sys.stderr.write(f"Error: {str(e).splitlines()[0]}\n")
        return e.exit_code
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .extensions import collect_plugin_options

    collect_plugin_options(args)
    return _run(args)


def _run(args) -> int:
    from ..errors import PyrtError

    try:
        return _dispatch(args) or 0
    except PyrtError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(f"Error: {msg}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _dispatch(args) -> int:
    if getattr(args, "_plugin_distribution", None):
        from .common import settings_from_args
        from .extensions import check_enabled

        check_enabled(args, settings_from_args(args))
    return args.func(args)


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
