"""docker's health check flags of ``run`` and ``create`` (``--health-cmd``,
``--health-interval`` ... ``--no-healthcheck``); checked by pyrt_core.health.config."""
from __future__ import annotations


def add_health_flags(p) -> None:
    p.add_argument("--health-cmd", default=None, metavar="CMD",
                   help="command to run to check health (run by /bin/sh -c in the container)")
    p.add_argument("--health-interval", default=None, metavar="DURATION",
                   help="time between running the check (ms|s|m|h) (default 30s)")
    p.add_argument("--health-timeout", default=None, metavar="DURATION",
                   help="maximum time to allow one check to run (ms|s|m|h) (default 30s)")
    p.add_argument("--health-retries", default=None, metavar="N",
                   help="consecutive failures needed to report unhealthy (default 3)")
    p.add_argument("--health-start-period", default=None, metavar="DURATION",
                   help="start period for the container to initialize before counting "
                        "retries towards unstable (ms|s|m|h) (default 0s)")
    p.add_argument("--health-start-interval", default=None, metavar="DURATION",
                   help="time between running the check during the start period "
                        "(ms|s|m|h) (default 5s)")
    p.add_argument("--no-healthcheck", action="store_true",
                   help="disable any container-specified HEALTHCHECK")


def healthcheck_from_args(args) -> dict | None:
    from ..health.config import from_flags

    return from_flags(args)
