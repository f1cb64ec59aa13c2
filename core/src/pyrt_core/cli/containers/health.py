"""``pyrt healthcheck run CONTAINER`` (podman's): run the container's health check now,
record its result in ``State.Health`` and exit 0 when it passed, 1 when it did not
(docs/lifecycle.md, "Health checks").  The runner of each container run runs it too."""
from __future__ import annotations


def _p_healthcheck(cmd) -> None:
    import argparse

    hc = cmd("healthcheck", "Run a container's health check", None)
    sub = hc.add_subparsers(dest="healthcheck_command", metavar="COMMAND")
    r = sub.add_parser("run", help="Run the health check of a container now (exit 0: healthy, "
                                   "1: unhealthy)", description="Run the health check of a "
                                   "container now (exit 0: healthy, 1: unhealthy)")
    r.add_argument("--run", type=int, default=None, help=argparse.SUPPRESS)  # the runner's
    r.add_argument("container", metavar="CONTAINER")
    r.set_defaults(func=cmd_healthcheck_run)
    hc.set_defaults(func=lambda a: (hc.print_help(), 0)[1])


PARSERS = {"healthcheck": _p_healthcheck}


def cmd_healthcheck_run(args) -> int:
    from ...engine.healthcheck import run_check
    from ..common import engine_from_args

    engine = engine_from_args(args)  # no recovery pass: the runner calls this every interval
    code, health = run_check(engine, args.container, args.run)
    if code != 0 and args.run is None:
        print("unhealthy", flush=True)  # podman's; a check that passed prints nothing
    return code
