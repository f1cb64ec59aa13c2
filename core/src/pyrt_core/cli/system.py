"""System commands: info, version."""
from __future__ import annotations

import json
import sys


def _p_info(cmd) -> None:
    info = cmd("info", "Show the engine's plugins, storage drivers and kernel features", cmd_info)
    info.add_argument("--format", choices=("text", "json"), default="text")


def _p_version(cmd) -> None:
    cmd("version", "Show the pyrt version", cmd_version)


#: one parser builder per command (cli.main builds only the one it runs)
def _p_runtime(cmd) -> None:
    import argparse

    rt = cmd("runtime", "pyrt's OCI runtime with runc's command line (as the pyrt-runtime "
             "program; `pyrt runtime --help`)", cmd_runtime, add_help=False, storage_opt=False)
    rt.add_argument("runtime_args", nargs=argparse.REMAINDER)


PARSERS = {"info": _p_info, "version": _p_version, "runtime": _p_runtime}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


def cmd_version(args) -> int:
    from .. import __version__

    print(f"pyrt version {__version__}")
    return 0


def cmd_info(args) -> int:
    from .common import engine_from_args
    from .info import collect, render

    engine = engine_from_args(args)
    data = collect(engine)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(render(data))
    return 0


def cmd_runtime(args) -> int:
    """``pyrt runtime ARGS``: the same program as ``pyrt-runtime ARGS``."""
    from ..runtime.cli import main as runtime_main

    return runtime_main(list(args.runtime_args))
