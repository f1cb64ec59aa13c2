"""``pyrt`` command line: parsing and dispatch.

Only argparse and the standard library are imported before a command is
chosen; each command's module is imported when it runs.  Errors print one
line, ``Error: <message>``, and exit with docker's codes (125 for pyrt's
own errors, 126/127 when the container's command cannot run / is not
found).
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 125 like docker's."""

    def error(self, message):  # noqa: D401
        sys.stderr.write(f"Error: {self.prog}: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(125)


def _global_options(p: argparse.ArgumentParser, suppress: bool, storage_opt: bool = True) -> None:
    d = argparse.SUPPRESS if suppress else None
    p.add_argument("--root", default=d, help="store root (default /var/lib/pyrt)")
    p.add_argument("--runroot", default=d, help="run-state root (default /run/pyrt)")
    p.add_argument("--storage-driver", "-s", default=d, metavar="NAME",
                   help="storage driver (overlay, btrfs, devicemapper, vfs, ...)")
    if storage_opt:
        p.add_argument("--storage-opt", action="append", default=d, metavar="OPT",
                       help="storage driver option DRIVER.KEY=VALUE (repeatable)")
    p.add_argument("--config", default=d, metavar="FILE", help="TOML config file (default /etc/pyrt/pyrt.toml)")


def build_parser() -> Parser:
    p = Parser(prog="pyrt", description="pyrt: a pluggable container engine.")
    p.add_argument("--version", "-v", action="version", version=f"pyrt version {__version__}")
    _global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def cmd(name, help, func, aliases=(), add_help=True, storage_opt=True):
        sp = sub.add_parser(name, help=help, description=help, aliases=list(aliases),
                            add_help=add_help)
        _global_options(sp, suppress=True, storage_opt=storage_opt)
        sp.set_defaults(func=func)
        return sp

    # one module per area; each adds its commands (argparse only: heavy imports
    # happen inside the command functions)
    from . import containers, images, system

    for area in (containers, images, system):
        area.add_parsers(cmd)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
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
    return args.func(args)


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
