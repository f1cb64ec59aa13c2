"""The CLI's commands.  Each takes the parsed arguments and returns an exit code."""
from __future__ import annotations

import json
import os
import sys

from ..config import load_settings
from ..errors import NotFoundError, UsageError


def _engine(args, pm=None):
    from ..engine import Engine

    settings = load_settings(
        root=getattr(args, "root", None), runroot=getattr(args, "runroot", None),
        storage_driver=getattr(args, "storage_driver", None),
        storage_opts=getattr(args, "storage_opt", None), config=getattr(args, "config", None),
    )
    return Engine(settings, pm)


# -- run ---------------------------------------------------------------------------------


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
    engine = _engine(args)
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


# -- images -----------------------------------------------------------------------------


def _human_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return str(n)


def _ago(ts: str) -> str:
    import datetime

    if not ts:
        return "N/A"
    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    secs = (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()
    for n, unit in ((31536000, "year"), (2592000, "month"), (604800, "week"), (86400, "day"),
                    (3600, "hour"), (60, "minute")):
        if secs >= n:
            k = int(secs // n)
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a minute ago" if secs >= 0 else "N/A"


def _split_name(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:
        return name, "<none>"
    return repo, tag


def cmd_load(args) -> int:
    from ..images.load import load_archive

    engine = _engine(args)
    path = args.input
    tmp = None
    try:
        if path is None:
            if sys.stdin.isatty():
                raise UsageError("no input: use --input FILE or pipe an archive into stdin")
            import tempfile

            os.makedirs(engine.settings.root, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-load-", dir=engine.settings.root)
            with os.fdopen(fd, "wb") as f:
                import shutil

                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
            path = tmp
        elif not os.path.exists(path):
            raise NotFoundError(f"cannot load {path}: no such file or directory")
        images = load_archive(path, engine.images)
    finally:
        if tmp:
            os.unlink(tmp)
    for img in images:
        if args.quiet:
            print(img.id)
        elif img.names:
            for n in img.names:
                print(f"Loaded image: {n}")
        else:
            print(f"Loaded image ID: {img.id}")
    return 0


def cmd_images(args) -> int:
    engine = _engine(args)
    images = engine.images.list()
    if args.reference:
        want = args.reference
        images = [i for i in images if any(n == want or _split_name(n)[0] == want or n == want + ":latest"
                                           for n in i.names)]
    if args.format == "json":
        print(json.dumps([i.to_dict() for i in images], indent=2))
        return 0
    if args.quiet:
        seen = []
        for i in images:
            iid = i.id if args.no_trunc else i.short_id
            if iid not in seen:
                seen.append(iid)
                print(iid)
        return 0
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for i in images:
        iid = i.id if args.no_trunc else i.short_id
        for n in i.names or ["<none>:<none>"]:
            repo, tag = _split_name(n) if n != "<none>:<none>" else ("<none>", "<none>")
            rows.append((repo, tag, iid, _ago(i.created), _human_size(i.size)))
    _table(rows)
    return 0


def _table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def cmd_inspect(args) -> int:
    engine = _engine(args)
    out, missing = [], []
    for name in args.names:
        obj = None
        if args.type in (None, "container"):
            try:
                obj = _container_inspect(engine, engine.containers.get(name))
            except NotFoundError:
                obj = None
        if obj is None and args.type in (None, "image"):
            try:
                obj = _image_inspect(engine, engine.images.get(name))
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


def _image_inspect(engine, img) -> dict:
    repo_digests = [f"{_split_name(n)[0]}@{img.digest}" for n in img.names] if img.digest else []
    return {
        "Id": img.id, "Digest": img.digest, "RepoTags": img.names, "RepoDigests": repo_digests,
        "Created": img.created, "Architecture": img.architecture, "Os": img.os,
        "Size": img.size, "Config": img.config.to_oci(),
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "GraphDriver": {"Name": engine.driver_name, "Data": {"TopLayer": img.top_layer}},
    }


def _container_inspect(engine, c) -> dict:
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


def cmd_tag(args) -> int:
    from ..models import ImageReference

    engine = _engine(args)
    img = engine.images.get(args.source)
    ref = ImageReference.parse(args.target)
    if ref.transport != "registry" or ref.digest:
        raise UsageError(f"invalid tag {args.target!r}")
    engine.images.tag(img, f"{ref.name}:{ref.tag}")
    return 0


def cmd_rmi(args) -> int:
    engine = _engine(args)
    code = 0
    for ref in args.images:
        try:
            for line in engine.images.remove(ref, force=args.force) or []:
                print(line)
        except (NotFoundError, UsageError) as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    return code


# -- containers ---------------------------------------------------------------------------


def cmd_ps(args) -> int:
    engine = _engine(args)
    cs = [c for c in engine.containers.list() if args.all or c.state.status == "running"]
    if args.format == "json":
        print(json.dumps([_container_inspect(engine, c) for c in cs], indent=2))
        return 0
    if args.quiet:
        for c in cs:
            print(c.id if args.no_trunc else c.short_id)
        return 0
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for c in cs:
        cmdline = " ".join(c.config.command or [])[:20]
        status = {"running": "Up", "created": "Created"}.get(
            c.state.status, f"Exited ({c.state.exit_code}) {_ago(c.state.finished_at)}")
        rows.append((c.id if args.no_trunc else c.short_id, c.image_name, f'"{cmdline}"',
                     _ago(c.created), status, c.name))
    _table(rows)
    return 0


def cmd_rm(args) -> int:
    engine = _engine(args)
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


# -- info --------------------------------------------------------------------------------


def cmd_info(args) -> int:
    from .info import collect, render

    engine = _engine(args)
    data = collect(engine)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(render(data))
    return 0


COMMANDS = {
    "run": cmd_run, "load": cmd_load, "images": cmd_images, "inspect": cmd_inspect,
    "tag": cmd_tag, "rmi": cmd_rmi, "ps": cmd_ps, "rm": cmd_rm, "info": cmd_info,
}
