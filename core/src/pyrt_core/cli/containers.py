"""Container commands: run, ps, rm, inspect."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import NotFoundError, UsageError
from .common import engine_from_args, ago, table


def add_parsers(cmd) -> None:
    # `run -h` means --hostname, as in docker: run's help is --help only
    # and, as in docker and podman, `run --storage-opt` is per container (size=...);
    # driver options go before the command: `pyrt --storage-opt overlay.x=y run ...`
    r = cmd("run", "Run a command in a new container", cmd_run, add_help=False, storage_opt=False)
    add_container_flags(r)
    from .resource_flags import add_resource_flags

    add_resource_flags(r)
    r.add_argument("--rm", action="store_true", help="remove the container when it exits")
    r.add_argument("image", metavar="IMAGE")
    r.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")

    ins = cmd("inspect", "Show low-level information on images or containers", cmd_inspect)
    ins.add_argument("--type", choices=("image", "container"), default=None)
    ins.add_argument("names", nargs="+", metavar="NAME")

    ps = cmd("ps", "List containers", cmd_ps)
    ps.add_argument("--all", "-a", action="store_true", help="show all containers (default: running)")
    ps.add_argument("--quiet", "-q", action="store_true", help="only show ids")
    ps.add_argument("--no-trunc", action="store_true")
    ps.add_argument("--format", choices=("table", "json"), default="table")

    rm = cmd("rm", "Remove containers", cmd_rm)
    rm.add_argument("--force", "-f", action="store_true", help="(running containers need `pyrt stop` first)")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")


def add_container_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE",
                   help="set an environment variable (KEY alone passes the host's value)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE", help="read variables from a file")
    p.add_argument("--workdir", "-w", metavar="DIR", help="working directory inside the container")
    p.add_argument("--user", "-u", metavar="USER[:GROUP]", help="user name or uid, and group")
    p.add_argument("--hostname", "-h", metavar="NAME", help="container host name")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's entrypoint")
    p.add_argument("--network", "--net", default="none", metavar="MODE",
                   help="network mode: none (loopback only, default) or host")
    p.add_argument("--volume", "-v", action="append", default=[], metavar="SRC:DST[:ro]",
                   help="bind-mount a host path")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--userns", metavar="MODE", choices=("host", "private"), default=None,
                   help="user namespace: host (default) or private (maps root to 100000:65536 unless --uidmap)")
    p.add_argument("--uidmap", action="append", default=[], metavar="CTR:HOST:SIZE", help="uid mapping (implies a user namespace)")
    p.add_argument("--gidmap", action="append", default=[], metavar="CTR:HOST:SIZE", help="gid mapping (implies a user namespace)")
    p.add_argument("--interactive", "-i", action="store_true", help="keep stdin open")
    p.add_argument("--tty", "-t", action="store_true", help="allocate a pseudo-terminal (set TERM)")
    p.add_argument("--storage-opt", action="append", default=[], dest="container_storage_opt",
                   metavar="KEY=VALUE", help="storage option for this container's layer (e.g. size=1G)")
    p.add_argument("--pull", choices=("missing", "always", "never"), default="missing",
                   help="pull the image: missing (default), always, never")
    p.add_argument("--help", action="help", help="show this help message and exit")


def _parse_env(items: list[str], files: list[str]) -> list[str]:
    out = []
    lines = []
    for path in files:
        try:
            with open(path) as f:
                lines += [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as e:
            raise UsageError(f"cannot read env file {path}: {e.strerror}") from None
    for item in lines + items:
        key, sep, _ = item.partition("=")
        if not key or any(c.isspace() for c in key):
            raise UsageError(f"invalid environment variable {item!r}")
        if sep:
            out.append(item)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


def container_config_from_args(args):
    from ..models import ContainerConfig, IdMap, VolumeSpec

    if args.network not in ("none", "host"):
        raise UsageError(
            f"network mode {args.network!r} is not supported: use --network none or --network host")
    uidmaps = [IdMap.parse(m) for m in args.uidmap]
    gidmaps = [IdMap.parse(m) for m in args.gidmap]
    userns = args.userns == "private" or bool(uidmaps or gidmaps)
    if args.userns == "host" and (uidmaps or gidmaps):
        raise UsageError("--uidmap/--gidmap need a user namespace; they conflict with --userns host")
    if gidmaps and not uidmaps:
        raise UsageError("--gidmap needs --uidmap too")
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else []
    storage_opts = {}
    for opt in args.container_storage_opt:
        k, sep, v = opt.partition("=")
        if not sep or not k or not v:
            raise UsageError(f"invalid --storage-opt {opt!r}: expected KEY=VALUE")
        storage_opts[k] = v
    from .resource_flags import resources_from_args

    rf = resources_from_args(args)
    hostname = args.hostname
    if hostname is not None and (not hostname or len(hostname) > 64 or "/" in hostname):
        raise UsageError(f"invalid hostname {hostname!r}")
    return ContainerConfig(
        image=args.image,
        command=list(args.cmd) or None,
        entrypoint=entrypoint,
        env=_parse_env(args.env, args.env_file),
        workdir=args.workdir,
        user=args.user,
        hostname=hostname,
        network=args.network,
        volumes=[VolumeSpec.parse(v) for v in args.volume],
        read_only=args.read_only,
        userns=userns,
        uidmaps=uidmaps,
        gidmaps=gidmaps,
        tty=args.tty,
        interactive=args.interactive,
        auto_remove=getattr(args, "rm", False),
        storage_opts=storage_opts,
        resources=rf.resources,
        devices=rf.devices,
        cgroup_parent=rf.cgroup_parent,
    )


def cmd_run(args) -> int:
    config = container_config_from_args(args)
    engine = engine_from_args(args)
    devnull = None
    try:
        if config.interactive:
            stdin = 0
        else:
            devnull = os.open(os.devnull, os.O_RDONLY)
            stdin = devnull
        sys.stdout.flush()
        return engine.run(config, name=args.name, stdio=(stdin, 1, 2), pull=args.pull)
    finally:
        if devnull is not None:
            os.close(devnull)


def cmd_inspect(args) -> int:
    from .images import image_inspect

    engine = engine_from_args(args)
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


def container_inspect(engine, c) -> dict:
    s = c.state
    return {
        "Id": c.id, "Name": c.name, "Created": c.created, "Image": c.image_id,
        "ImageName": c.image_name,
        "State": {"Status": s.status, "Running": s.status == "running", "Pid": s.pid,
                  "ExitCode": s.exit_code, "OOMKilled": s.oom_killed,
                  "StartedAt": s.started_at, "FinishedAt": s.finished_at},
        "Config": c.config.to_dict(),
        "GraphDriver": {"Name": c.storage_driver},
        "CgroupManager": c.cgroup_manager,
    }


def cmd_ps(args) -> int:
    engine = engine_from_args(args)
    cs = [c for c in engine.containers.list() if args.all or c.state.status == "running"]
    if args.format == "json":
        print(json.dumps([container_inspect(engine, c) for c in cs], indent=2))
        return 0
    if args.quiet:
        for c in cs:
            print(c.id if args.no_trunc else c.short_id)
        return 0
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for c in cs:
        cmdline = " ".join(c.config.command or [])[:20]
        status = {"running": "Up", "created": "Created"}.get(
            c.state.status, f"Exited ({c.state.exit_code}) {ago(c.state.finished_at)}")
        rows.append((c.id if args.no_trunc else c.short_id, c.image_name, f'"{cmdline}"',
                     ago(c.created), status, c.name))
    table(rows)
    return 0


def cmd_rm(args) -> int:
    engine = engine_from_args(args)
    code = 0
    for ref in args.containers:
        try:
            c = engine.containers.get(ref)
            engine.remove(c)
            print(ref)
        except (NotFoundError, UsageError) as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    return code
