"""``ps``, ``inspect``, ``rm``: the containers there are, what they are, removing them;
and the upkeep of them all: ``container prune``, ``container cleanup`` (conmon's exit
command), ``system recover``, ``system boot``."""
from __future__ import annotations

import sys

from ...errors import NotFoundError, UsageError
from ..common import ago, engine_from_args, table
from . import each, engine_for


def _p_inspect(cmd) -> None:
    ins = cmd("inspect", "Show low-level information on images or containers", cmd_inspect)
    ins.add_argument("--type", choices=("image", "container"), default=None)
    ins.add_argument("names", nargs="+", metavar="NAME")


def _p_ps(cmd) -> None:
    ps = cmd("ps", "List containers", cmd_ps)
    ps.add_argument("--all", "-a", action="store_true", help="show all containers (default: running)")
    ps.add_argument("--quiet", "-q", action="store_true", help="only show ids")
    ps.add_argument("--no-trunc", action="store_true")
    ps.add_argument("--format", choices=("table", "json"), default="table")


def _p_rm(cmd) -> None:
    rm = cmd("rm", "Remove containers", cmd_rm)
    rm.add_argument("--force", "-f", action="store_true", help="kill and remove running containers")
    rm.add_argument("--volumes", "-v", action="store_true",
                    help="remove anonymous volumes too (pyrt creates none: accepted for docker compatibility)")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_container(cmd) -> None:
    ctr = cmd("container", "Manage containers (prune)", None)
    csub = ctr.add_subparsers(dest="container_command", metavar="COMMAND")
    pr = csub.add_parser("prune", help="Remove all stopped containers")
    pr.add_argument("--force", "-f", action="store_true", help="do not ask (pyrt never asks)")
    pr.set_defaults(func=cmd_container_prune)
    cu = csub.add_parser("cleanup", help="(internal) the monitor's exit command")
    cu.add_argument("--run", type=int, default=None)
    cu.add_argument("container")
    cu.set_defaults(func=cmd_container_cleanup)
    ctr.set_defaults(func=lambda a: (ctr.print_help(), 0)[1])


def _p_system(cmd) -> None:
    sy = cmd("system", "Engine-wide maintenance (recover, boot)", None)
    ssub = sy.add_subparsers(dest="system_command", metavar="COMMAND")
    rc = ssub.add_parser("recover", help="Reconcile records with running processes; release stale "
                                         "mounts, cgroups and state")
    rc.set_defaults(func=cmd_system_recover)
    bt = ssub.add_parser("boot", help="At host start-up: recover, then start --restart always "
                                      "(and unless-stopped) containers")
    bt.set_defaults(func=cmd_system_boot)
    sy.set_defaults(func=lambda a: (sy.print_help(), 0)[1])


PARSERS = {"inspect": _p_inspect, "ps": _p_ps, "rm": _p_rm, "container": _p_container,
           "system": _p_system}


def cmd_inspect(args) -> int:
    import json

    from ..images import image_inspect

    engine = engine_for(args)
    out, missing = [], []
    for name in args.names:
        obj = None
        if args.type in (None, "container"):
            try:
                obj = container_inspect(engine, engine.containers.get(name))
            except NotFoundError:
                obj = None
        if obj is None and args.type in (None, "image"):
            try:
                obj = image_inspect(engine, engine.images.get(name))
            except (NotFoundError, UsageError):
                obj = None
        if obj is None:
            missing.append(name)
        else:
            out.append(obj)
    print(json.dumps(out, indent=4))
    if missing:
        raise NotFoundError(f"no such object: {missing[0]}")
    return 0


def cmd_ps(args) -> int:
    engine = engine_for(args)
    cs = [c for c in engine.containers.list() if args.all or c.state.status in ("running", "starting")]
    if args.format == "json":
        import json

        print(json.dumps([container_inspect(engine, c) for c in cs], indent=2))
        return 0
    if args.quiet:
        for c in cs:
            print(c.id if args.no_trunc else c.short_id)
        return 0
    from .ports import ports_column

    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for c in cs:
        cmdline = " ".join(c.config.command or [])
        if not args.no_trunc and len(cmdline) > 20:
            cmdline = cmdline[:19] + "…"
        rows.append((c.id if args.no_trunc else c.short_id, c.image_name, f'"{cmdline}"',
                     ago(c.created), _status_text(c), ports_column(c), c.name))
    table(rows)
    return 0


def cmd_rm(args) -> int:
    engine = engine_for(args)
    return each(args.containers, lambda ref: (engine.remove(ref, force=args.force), ref)[1])


def _status_text(c) -> str:
    s = c.state
    if s.status == "running":
        return f"Up {ago(s.started_at).replace(' ago', '')}" if s.started_at else "Up"
    if s.status == "starting":
        return "Starting"
    if s.status in ("created", "creating"):
        return "Created"
    if s.status == "removing":
        return "Removing"
    return f"Exited ({s.exit_code}) {ago(s.finished_at)}"


def _docker_status(status: str) -> str:
    return {"creating": "created", "starting": "running"}.get(status, status)


def container_inspect(engine, c) -> dict:
    from .ports import host_config, network_settings

    s = c.state
    return {
        "Id": c.id, "Name": c.name, "Created": c.created, "Image": c.image_id,
        "ImageName": c.image_name,
        "State": {"Status": _docker_status(s.status), "Running": s.status in ("running", "starting"),
                  "Paused": False, "Restarting": False, "Dead": False,
                  "Pid": s.pid, "ExitCode": s.exit_code, "OOMKilled": s.oom_killed,
                  "Error": s.error, "StartedAt": s.started_at, "FinishedAt": s.finished_at},
        "RestartCount": s.restart_count,
        "HostConfig": {"RestartPolicy": {"Name": c.config.restart_policy,
                                         "MaximumRetryCount": c.config.restart_max},
                       "AutoRemove": c.config.auto_remove,
                       "Privileged": c.config.privileged,
                       "CapAdd": c.config.cap_add or None,
                       "CapDrop": c.config.cap_drop or None,
                       "SecurityOpt": c.config.security_opt or None,
                       "PidsLimit": _pids_limit(c.config), **host_config(c)},
        "NetworkSettings": network_settings(engine, c),
        "Config": c.config.to_dict(),
        "GraphDriver": {"Name": c.storage_driver},
        "CgroupManager": c.cgroup_manager,
        # "none": nothing enforced its device rules (the operator chose no cgroups)
        "DeviceCgroup": c.cgroup_manager != "none",
        "Monitor": c.monitor,
        "OCIRuntime": c.runtime,
        "LogPath": engine.containers.log_path(c.id) if c.monitor == "conmon" else "",
    }


def _pids_limit(config):
    """HostConfig.PidsLimit as docker shows it: the limit, or null when there is none
    (unlimited: --pids-limit -1 or 0, or no resource plugin to apply the default)."""
    limit = ((config.resources or {}).get("pids") or {}).get("limit")
    return limit if isinstance(limit, int) and limit > 0 else None


# -- upkeep --------------------------------------------------------------------------


def cmd_container_prune(args) -> int:
    engine = engine_for(args)
    code = 0
    for c in engine.containers.list():
        if c.state.status in ("created", "exited"):
            try:
                engine.remove(c.id)
                print(c.id)
            except Exception as e:  # noqa: BLE001
                sys.stderr.write(f"Error: {e}\n")
                code = 1
    return code


def cmd_container_cleanup(args) -> int:
    engine = engine_from_args(args)
    try:
        engine.cleanup(args.container, args.run)
    except NotFoundError:
        pass
    return 0


def cmd_system_recover(args) -> int:
    engine = engine_from_args(args)
    for line in engine.recover(full=True):
        print(line)
    return 0


def cmd_system_boot(args) -> int:
    engine = engine_from_args(args)
    for line in engine.recover(full=True):
        print(line)
    code = 0
    for c in engine.containers.list():
        policy = c.config.restart_policy
        if c.state.status in ("created", "exited") and (
                policy == "always" or (policy == "unless-stopped" and not c.state.stop_requested)):
            try:
                engine.start(c.id)
                print(f"started {c.name}")
            except Exception as e:  # noqa: BLE001
                sys.stderr.write(f"Error: starting {c.name}: {e}\n")
                code = 1
    return code
