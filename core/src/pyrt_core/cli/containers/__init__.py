"""Container commands: the lifecycle (create, start, run, stop, kill, restart, rm, wait),
reading (ps, inspect, logs, top), joining (exec, attach), resource control (pause,
unpause, stats, update) and maintenance (container prune, system recover/boot).
See docs/lifecycle.md.

One module per concern holds its commands' parser builders (its ``PARSERS``) and
the commands themselves:

===============  ======================================================================
``run``          run (foreground, ``-d``), create, and their container flags
``lifecycle``    start, stop, restart, kill, wait
``inventory``    ps, inspect, rm; container prune/cleanup, system recover/boot
``interact``     exec, attach, logs, top
``resources``    pause, unpause, stats, update
``ports``        port; the networking that inspect and ps show
``health``       healthcheck run
``terminal``     the stdio of a process the CLI runs in the foreground (run, exec)
===============  ======================================================================

This package is the command table cli.main reads (``PARSERS``, in the order ``pyrt
--help`` lists the commands): building a command's parser imports that command's
module alone.  It also holds what every container command shares: the engine after
the recovery pass, the loop over several containers.

Commands that take several containers go on after a failure and exit 1, as
docker does; single-container commands exit with pyrt's codes (125).
"""
from __future__ import annotations

import sys

from ..common import engine_from_args

#: the module of each command, in the order ``pyrt --help`` lists them
MODULE_OF = {
    "run": "run", "create": "run", "inspect": "inventory", "ps": "inventory",
    "rm": "inventory", "rename": "inventory", "start": "lifecycle", "stop": "lifecycle", "restart": "lifecycle",
    "kill": "lifecycle", "wait": "lifecycle", "logs": "interact", "exec": "interact",
    "attach": "interact", "pause": "resources", "unpause": "resources",
    "stats": "resources", "update": "resources", "top": "interact", "port": "ports",
    "system": "inventory", "healthcheck": "health",
}


def _builder(name: str):
    def build(cmd) -> None:
        import importlib

        importlib.import_module(f"{__name__}.{MODULE_OF[name]}").PARSERS[name](cmd)

    return build


PARSERS = {name: _builder(name) for name in MODULE_OF}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


def engine_for(args):
    """An engine, after the cheap recovery pass every container command starts with."""
    engine = engine_from_args(args)
    recover(engine)
    return engine


def recover(engine) -> None:
    """The recovery pass (engine.recover), its actions reported on stderr; a failure is
    reported and never blocks the command."""
    try:
        for line in engine.recover():
            sys.stderr.write(f"pyrt: recovery: {line}\n")
    except Exception as e:  # noqa: BLE001 - recovery must never block a command
        sys.stderr.write(f"pyrt: recovery failed: {e}\n")


def each(refs, fn) -> int:
    """Run ``fn(ref)`` for each container; report errors docker's way (exit 1)."""
    from ...errors import PyrtError

    code = 0
    for ref in refs:
        try:
            out = fn(ref)
            if out is not None:
                print(out, flush=True)
        except PyrtError as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    return code
