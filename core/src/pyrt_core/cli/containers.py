"""Container commands: the lifecycle (create, start, run, stop, kill, restart, rm, wait),
reading (ps, inspect, logs, top), joining (exec, attach) and maintenance
(container prune, system recover/boot).  See docs/lifecycle.md.

Commands that take several containers go on after a failure and exit 1, as
docker does; single-container commands exit with pyrt's codes (125).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from ..errors import NotFoundError, UsageError
from .common import engine_from_args, ago, table


# Each command's parser is built by its own function, so the CLI builds only the
# parser of the command it runs (see cli.main); PARSERS maps a name to its builder.


def _p_run_create(cmd, name, help, func) -> None:
    # `run -h` means --hostname, as in docker: run's help is --help only
    # and, as in docker and podman, `run --storage-opt` is per container (size=...);
    # driver options go before the command: `pyrt --storage-opt overlay.x=y run ...`
    from .resource_flags import add_resource_flags

    r = cmd(name, help, func, add_help=False, storage_opt=False)
    add_container_flags(r)
    add_resource_flags(r)
    r.add_argument("--rm", action="store_true", help="remove the container when it exits")
    if name == "run":
        r.add_argument("--detach", "-d", action="store_true",
                       help="run in the background (under its monitor) and print its id")
    r.add_argument("image", metavar="IMAGE")
    r.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def _p_run(cmd) -> None:
    _p_run_create(cmd, "run", "Run a command in a new container", cmd_run)


def _p_create(cmd) -> None:
    _p_run_create(cmd, "create", "Create a new container", cmd_create)


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


def _p_start(cmd) -> None:
    st = cmd("start", "Start created or stopped containers", cmd_start)
    st.add_argument("--attach", "-a", action="store_true", help="attach stdout/stderr and wait for the exit")
    st.add_argument("--interactive", "-i", action="store_true", help="attach stdin")
    st.add_argument("--all", action="store_true", help="start every container that is not running")
    st.add_argument("containers", nargs="*", metavar="CONTAINER")


def _p_stop(cmd) -> None:
    sp = cmd("stop", "Stop running containers (stop signal, then SIGKILL)", cmd_stop)
    sp.add_argument("--time", "-t", type=int, default=None, metavar="N",
                    help="seconds to wait before SIGKILL (default: --stop-timeout or 10)")
    sp.add_argument("--all", "-a", action="store_true", help="stop every running container")
    sp.add_argument("containers", nargs="*", metavar="CONTAINER")


def _p_restart(cmd) -> None:
    rs = cmd("restart", "Restart containers", cmd_restart)
    rs.add_argument("--time", "-t", type=int, default=None, metavar="N")
    rs.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_kill(cmd) -> None:
    k = cmd("kill", "Send a signal to running containers", cmd_kill)
    # docker's `kill -s SIG`: -s is the signal here, not the global --storage-driver
    k.conflict_handler = k._optionals.conflict_handler = "resolve"
    k.add_argument("--signal", "-s", default="SIGKILL", metavar="SIG")
    k.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_wait(cmd) -> None:
    w = cmd("wait", "Wait for containers to stop and print their exit codes", cmd_wait)
    w.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_logs(cmd) -> None:
    lg = cmd("logs", "Show a container's output", cmd_logs)
    lg.add_argument("--follow", "-f", action="store_true")
    lg.add_argument("--tail", "-n", default="all", metavar="N")
    lg.add_argument("--timestamps", "-t", action="store_true")
    lg.add_argument("--format", choices=("text", "json"), default="text",
                    help="json: docker json-file lines (log, stream, time)")
    lg.add_argument("container", metavar="CONTAINER")


def _p_exec(cmd) -> None:
    ex = cmd("exec", "Run a command in a running container", cmd_exec, add_help=False)
    ex.add_argument("--help", action="help")
    ex.add_argument("--interactive", "-i", action="store_true")
    ex.add_argument("--tty", "-t", action="store_true")
    ex.add_argument("--detach", "-d", action="store_true")
    ex.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE")
    ex.add_argument("--user", "-u", default=None, metavar="USER[:GROUP]")
    ex.add_argument("--workdir", "-w", default=None, metavar="DIR")
    ex.add_argument("container", metavar="CONTAINER")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def _p_attach(cmd) -> None:
    at = cmd("attach", "Attach to a running container's stdio", cmd_attach)
    at.add_argument("--no-stdin", action="store_true")
    at.add_argument("container", metavar="CONTAINER")


def _p_pause(cmd) -> None:
    pp = cmd("pause", "Pause all processes of containers (cgroup freezer)", cmd_pause)
    pp.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_unpause(cmd) -> None:
    pp = cmd("unpause", "Unpause the processes of paused containers", cmd_unpause)
    pp.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_stats(cmd) -> None:
    stp = cmd("stats", "Show resource usage of running containers", cmd_stats)
    stp.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    stp.add_argument("--format", choices=("table", "json"), default="table")
    stp.add_argument("containers", nargs="*", metavar="CONTAINER", help="default: all running")


def _p_update(cmd) -> None:
    from .resource_flags import add_resource_flags

    up = cmd("update", "Change the resource limits of running containers", cmd_update)
    add_resource_flags(up)
    up.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_top(cmd) -> None:
    tp = cmd("top", "Show the processes of a container", cmd_top)
    tp.add_argument("container", metavar="CONTAINER")


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


PARSERS = {
    "run": _p_run, "create": _p_create, "inspect": _p_inspect, "ps": _p_ps, "rm": _p_rm,
    "start": _p_start, "stop": _p_stop, "restart": _p_restart, "kill": _p_kill, "wait": _p_wait,
    "logs": _p_logs, "exec": _p_exec, "attach": _p_attach, "pause": _p_pause,
    "unpause": _p_unpause, "stats": _p_stats, "update": _p_update, "top": _p_top,
    "container": _p_container, "system": _p_system,
}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


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
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=unconfined | seccomp=PROFILE.json (Docker's format; "
                        "default: a profile like Docker's) | no-new-privileges=false "
                        "(default: true, unlike Docker)")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="add a Linux capability (NET_ADMIN, CAP_SYS_TIME, ALL)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a Linux capability (CHOWN, ALL)")
    p.add_argument("--privileged", action="store_true",
                   help="every capability, the host's devices, no seccomp filter, no masked "
                        "or read-only /proc paths, a writable /sys")
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
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no (default), on-failure[:N], always, unless-stopped")
    p.add_argument("--stop-signal", default=None, metavar="SIG",
                   help="signal `pyrt stop` sends first (default: the image's StopSignal, else SIGTERM)")
    p.add_argument("--stop-timeout", type=int, default=None, metavar="N",
                   help="seconds `pyrt stop` waits before SIGKILL (default 10)")
    p.add_argument("--log-opt", action="append", default=[], metavar="max-size=SIZE",
                   help="log options: max-size (default 10m; the log restarts when full)")
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
    policy, restart_max = parse_restart(getattr(args, "restart", "no") or "no")
    if policy != "no" and getattr(args, "rm", False):
        raise UsageError("conflicting options: --restart and --rm")
    log_size_max = _log_size_max(args)
    stop_signal = getattr(args, "stop_signal", None)
    if stop_signal:
        from ..runtime.cli import RuntimeFailure, parse_signal

        try:
            parse_signal(stop_signal)
        except RuntimeFailure as e:
            raise UsageError(f"invalid --stop-signal: {e}") from None
    hostname = args.hostname
    if hostname is not None and (not hostname or len(hostname) > 64 or "/" in hostname):
        raise UsageError(f"invalid hostname {hostname!r}")
    from ..capabilities import parse_flag

    cap_add = parse_flag(getattr(args, "cap_add", None), "--cap-add")
    cap_drop = parse_flag(getattr(args, "cap_drop", None), "--cap-drop")
    privileged = bool(getattr(args, "privileged", False))
    if privileged and (userns or uidmaps):
        raise UsageError("--privileged cannot be used with a user namespace "
                         "(--userns private, --uidmap, --gidmap)")
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
        restart_policy=policy,
        restart_max=restart_max,
        stop_signal=stop_signal,
        stop_timeout=getattr(args, "stop_timeout", None),
        log_size_max=log_size_max,
        security_opt=list(getattr(args, "security_opt", []) or []),
        seccomp=_seccomp_setting(getattr(args, "security_opt", []) or []),
        detach=bool(getattr(args, "detach", False)),
        cap_add=cap_add,
        cap_drop=cap_drop,
        privileged=privileged,
        no_new_privileges=_no_new_privileges(getattr(args, "security_opt", []) or []),
    )


def _no_new_privileges(opts: list[str]) -> bool:
    if not opts:
        return True
    from ..containers.seccomp_default import no_new_privileges

    return no_new_privileges(opts)


def _seccomp_setting(opts: list[str]) -> str | None:
    if not opts:
        return None
    from ..containers.defaults import DEFAULT_CAPS
    from ..containers.seccomp_default import parse_security_opts

    return parse_security_opts(opts, DEFAULT_CAPS)


def _log_size_max(args) -> int | None:
    log_size_max = None
    for opt in getattr(args, "log_opt", []) or []:
        k, sep, v = opt.partition("=")
        if k != "max-size" or not sep:
            raise UsageError(f"invalid --log-opt {opt!r}: only max-size=SIZE is supported")
        from .resource_flags import parse_size

        log_size_max = parse_size(v, "--log-opt max-size")
    return log_size_max


def parse_restart(text: str) -> tuple[str, int]:
    name, _, n = text.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise UsageError(f"invalid restart policy {text!r}: no, on-failure[:N], always or unless-stopped")
    if n and name != "on-failure":
        raise UsageError(f"invalid restart policy {text!r}: only on-failure takes a count")
    if n and (not n.isdigit() or int(n) < 0):
        raise UsageError(f"invalid restart policy {text!r}: the count must be a number >= 0")
    return name, int(n) if n else 0


def cmd_inspect(args) -> int:
    from .images import image_inspect

    engine = _engine(args)
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




# -- helpers ---------------------------------------------------------------------------------


def _engine(args, recover: bool = True):
    """An engine, after the cheap recovery pass every container command starts with."""
    engine = engine_from_args(args)
    if recover:
        _recover(engine)
    return engine


def _recover(engine) -> None:
    try:
        for line in engine.recover():
            sys.stderr.write(f"pyrt: recovery: {line}\n")
    except Exception as e:  # noqa: BLE001 - recovery must never block a command
        sys.stderr.write(f"pyrt: recovery failed: {e}\n")


def _each(args, refs, fn) -> int:
    """Run ``fn(ref)`` for each container; report errors docker's way (exit 1)."""
    from ..errors import PyrtError

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
                       "PidsLimit": _pids_limit(c.config)},
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


# -- create / run / start ---------------------------------------------------------------------


def cmd_create(args) -> int:
    config = container_config_from_args(args)
    engine = _engine(args)
    c = engine.create(config, name=args.name, pull=args.pull)
    print(c.id)
    return 0


def cmd_run(args) -> int:
    if args.detach:
        return _run_detached(args)
    config = container_config_from_args(args)
    engine = _engine(args)
    if config.restart_policy != "no":
        # the restart policy outlives this CLI: run under the monitor and attach to it
        c = engine.create(config, name=args.name, pull=args.pull)
        return _start_attached(engine, c.id, stdin=config.interactive)
    return _run_foreground(engine, config, args)


def _run_detached(args) -> int:
    """``run -d``.  The container's monitor starts first of all, right after the settings
    are known (conmon.prelaunch: no attrs, no engine yet): its runtime is a second
    Python process whose start-up then overlaps this one's loading of the models,
    the flag checks, the recovery pass, create, mount and bundle.  A bad flag or a
    failed create stops that monitor again (conmon.abandon)."""
    from ..containers.store import ContainerStore
    from ..monitor import conmon
    from .common import settings_from_args

    settings = settings_from_args(args)
    if args.name:  # before the monitor starts: a bad name leaves nothing behind
        from ..containers.store import check_name

        args.name = check_name(args.name)
    store = ContainerStore(settings.root, settings.runroot)
    cid = store.new_id()
    launched = None
    try:
        if _name_free(store, args.name):  # a taken name fails the create anyway
            launched = conmon.prelaunch(settings, store, cid, name=args.name,
                                        stdin=args.interactive, tty=args.tty,
                                        log_size_max=_log_size_max(args))
        from ..engine import Engine
        from ..engine.common import fault

        fault("run:launched")
        config = container_config_from_args(args)
        engine = Engine(settings)
        _recover(engine)
        c = engine.create(config, name=args.name, pull=args.pull, cid=cid)
    except BaseException:
        if launched is not None:
            conmon.abandon(launched, store)
        raise
    try:
        engine.start(c, launched=launched)
    except Exception:
        if config.auto_remove:
            try:
                engine.remove(c.id, force=True)
            except NotFoundError:
                pass
        raise
    print(c.id)
    return 0


def _name_free(store, name: str | None) -> bool:
    return name is None or not os.path.lexists(os.path.join(store.names, name))


@contextlib.contextmanager
def _terminal_stdio(tty: bool, interactive: bool, detach: bool = False):
    """The stdio of a process the CLI runs in the foreground: a pty pyrt owns for
    ``-t``, else pipes pyrt copies to and from ours (never our own terminal or files:
    monitor/pipes.py says why), the container's /dev/null as stdin without ``-i``.
    A detached process (``exec -d``) gets the container's /dev/null for all three.
    Yields ``(stdio, proxy)``; ``proxy`` (PtyProxy, PipeProxy or None) is started
    with the container and finished after it."""
    proxy = None
    try:
        if detach:
            from ..runtime.config import NULL_STDIO

            stdio = (NULL_STDIO,) * 3
        elif tty:
            from ..monitor.attach import PtyProxy

            proxy = PtyProxy(stdin_fd=0 if interactive else None, stdout_fd=1)
            stdio = proxy.stdio
        else:
            from ..monitor.pipes import PipeProxy

            proxy = PipeProxy(interactive)
            stdio = proxy.stdio
        sys.stdout.flush()
        yield stdio, proxy
    finally:
        if proxy is not None:
            proxy.finish()


def _run_foreground(engine, config, args) -> int:
    """The CLI is the container's monitor: fastest path, stdio passed straight through
    (or a pty pyrt owns for -t)."""
    with _terminal_stdio(config.tty, config.interactive) as (stdio, proxy):
        return engine.run(config, name=args.name, stdio=stdio, pull=args.pull,
                          on_started=(lambda pid: proxy.start()) if proxy else None,
                          on_exited=(lambda code: proxy.finish()) if proxy else None,
                          on_console=getattr(proxy, "adopt", None))


def _start_attached(engine, ref, stdin: bool) -> int:
    """start -a: start under conmon, copy its output (and our stdin) until it exits."""
    from ..monitor import attach as att
    from ..monitor import conmon

    c = engine.get(ref)
    paths = engine.paths(c.id)
    held = {}

    def connect(_c):
        try:
            held["sock"] = att.connect(paths.attach)
        except Exception:  # noqa: BLE001 - the output is in the log anyway
            pass

    if not (c.state.status in ("running", "starting") and engine.is_running(c)):
        engine.start(c, before_start=connect)
    else:
        connect(c)
    c = engine.reload(c.id)
    result = "exited"
    if "sock" in held:
        result = att.attach_conmon(held["sock"], stdin_fd=0 if stdin else None, tty=c.config.tty,
                                   on_resize=lambda r, col: conmon.resize(paths, r, col))
    if result == "detached":
        return 0
    return engine.wait(c.id)


def cmd_start(args) -> int:
    engine = _engine(args)
    refs = list(args.containers)
    if args.all:
        refs += [c.id for c in engine.containers.list()
                 if c.state.status not in ("running", "starting")]
    if not refs:
        raise UsageError("start needs at least one container (or --all)")
    if args.attach or args.interactive:
        if len(refs) != 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        return _start_attached(engine, refs[0], stdin=args.interactive)
    return _each(args, refs, lambda ref: (engine.start(ref), ref)[1])


# -- stop / kill / restart / rm / wait -----------------------------------------------------------


def cmd_stop(args) -> int:
    engine = _engine(args)
    refs = list(args.containers)
    if args.all:
        refs = [c.id for c in engine.containers.list() if c.state.status in ("running", "starting")]
        if not refs:
            return 0
        # in parallel, as a daemon stopping its containers would
        from concurrent.futures import ThreadPoolExecutor

        from ..errors import PyrtError

        def one(cid):
            try:
                engine.stop(cid, args.time)
                return cid, None
            except PyrtError as e:
                return cid, e

        code = 0
        with ThreadPoolExecutor(max_workers=min(32, len(refs))) as pool:
            for cid, err in pool.map(one, refs):
                if err is None:
                    print(cid)
                else:
                    sys.stderr.write(f"Error: {err}\n")
                    code = 1
        return code
    if not refs:
        raise UsageError("stop needs at least one container (or --all)")
    return _each(args, refs, lambda ref: (engine.stop(ref, args.time), ref)[1])


def cmd_kill(args) -> int:
    from ..runtime.cli import RuntimeFailure, parse_signal

    try:
        sig = parse_signal(args.signal)
    except RuntimeFailure as e:
        raise UsageError(str(e)) from None
    engine = _engine(args)
    return _each(args, args.containers, lambda ref: (engine.kill(ref, sig), ref)[1])


def cmd_restart(args) -> int:
    engine = _engine(args)

    def one(ref):
        engine.stop(ref, args.time)
        engine.start(ref)
        return ref

    return _each(args, args.containers, one)


def cmd_rm(args) -> int:
    engine = _engine(args)
    return _each(args, args.containers, lambda ref: (engine.remove(ref, force=args.force), ref)[1])


def cmd_wait(args) -> int:
    engine = _engine(args)
    return _each(args, args.containers, lambda ref: engine.wait(ref))


# -- reading -----------------------------------------------------------------------------------------


def cmd_ps(args) -> int:
    engine = _engine(args)
    cs = [c for c in engine.containers.list() if args.all or c.state.status in ("running", "starting")]
    if args.format == "json":
        print(json.dumps([container_inspect(engine, c) for c in cs], indent=2))
        return 0
    if args.quiet:
        for c in cs:
            print(c.id if args.no_trunc else c.short_id)
        return 0
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for c in cs:
        cmdline = " ".join(c.config.command or [])
        if not args.no_trunc and len(cmdline) > 20:
            cmdline = cmdline[:19] + "…"
        rows.append((c.id if args.no_trunc else c.short_id, c.image_name, f'"{cmdline}"',
                     ago(c.created), _status_text(c), c.name))
    table(rows)
    return 0


def cmd_logs(args) -> int:
    from .. import logs

    engine = _engine(args)
    c = engine.get(args.container)
    if c.monitor == "pyrt":
        raise UsageError(f"container {c.name} ran in the foreground: its output went to the terminal, "
                         "not to a log (use `run -d` for a logged container)")
    tail = None
    if args.tail not in ("all", "-1"):
        try:
            tail = int(args.tail)
        except ValueError:
            raise UsageError(f"invalid --tail {args.tail!r}: a number or 'all'") from None

    def running():
        cur = engine.containers.load(c.id)
        return cur is not None and cur.state.status in ("running", "starting")

    logs.show(engine.containers.log_path(c.id), sys.stdout.buffer, sys.stderr.buffer, tail=tail,
              timestamps=args.timestamps, follow=args.follow, running=running, fmt=args.format)
    return 0


def cmd_top(args) -> int:
    from .. import procutil

    engine = _engine(args)
    c = engine.get(args.container)
    if not engine.is_running(c) or not engine.process_alive(c):
        from ..errors import ConflictError

        raise ConflictError(f"container {c.name} is not running")
    rows = [("UID", "PID", "PPID", "CMD")]
    for pid in procutil.pids_in_namespace_of(c.state.pid):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        rows.append((uid, pid, procutil.ppid(pid) or 0, procutil.cmdline(pid)))
    table(rows)
    return 0


# -- exec / attach -----------------------------------------------------------------------------------


def cmd_exec(args) -> int:
    if not args.cmd:
        raise UsageError("exec needs a command to run")
    engine = _engine(args)
    env = _parse_env(args.env, [])
    with _terminal_stdio(args.tty, args.interactive, detach=args.detach) as (stdio, proxy):
        return engine.exec(args.container, list(args.cmd), env=env, user=args.user,
                           workdir=args.workdir, tty=args.tty, stdio=stdio, detach=args.detach,
                           on_started=(lambda pid: proxy.start()) if proxy else None,
                           on_console=getattr(proxy, "adopt", None))


def cmd_attach(args) -> int:
    from ..errors import ConflictError
    from ..monitor import attach as att
    from ..monitor import conmon

    engine = _engine(args)
    c = engine.get(args.container)
    if not engine.is_running(c):
        raise ConflictError(f"you cannot attach to a stopped container {c.name}: start it first")
    if c.monitor != "conmon":
        raise ConflictError(f"container {c.name} runs in the foreground of another pyrt: "
                            "only detached containers can be attached to")
    paths = engine.paths(c.id)
    stdin = 0 if (c.config.interactive and not args.no_stdin) else None
    result = att.attach_conmon(paths.attach, stdin_fd=stdin, tty=c.config.tty,
                               on_resize=lambda r, col: conmon.resize(paths, r, col))
    if result == "detached":
        return 0
    return engine.wait(c.id)


# -- maintenance ------------------------------------------------------------------------------------


def cmd_container_prune(args) -> int:
    engine = _engine(args)
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


# -- resource control of running containers ----------------------------------------------------


def cmd_pause(args) -> int:
    engine = _engine(args)
    return _each(args, args.containers, lambda ref: (engine.pause(ref, True), ref)[1])


def cmd_unpause(args) -> int:
    engine = _engine(args)
    return _each(args, args.containers, lambda ref: (engine.pause(ref, False), ref)[1])


def cmd_update(args) -> int:
    from .resource_flags import resources_from_args

    rf = resources_from_args(args)
    if rf.devices or rf.cgroup_parent or "devices" in rf.resources:
        raise UsageError("update cannot change --device or --cgroup-parent of a running container")
    if not rf.resources:
        raise UsageError("update needs at least one resource flag (--memory, --cpus, --pids-limit, ...)")
    engine = _engine(args)
    return _each(args, args.containers, lambda ref: (engine.update(ref, rf.resources), ref)[1])


def _stats_row(c, s: dict, prev_cpu: tuple | None, now_t: float) -> dict:
    cpu_ns = (s.get("cpu") or {}).get("usage_ns") or 0
    cpu_pct = 0.0
    if prev_cpu is not None and now_t > prev_cpu[1]:
        cpu_pct = 100.0 * (cpu_ns - prev_cpu[0]) / ((now_t - prev_cpu[1]) * 1e9)
    mem = s.get("memory") or {}
    pids = s.get("pids") or {}
    blk = s.get("blkio") or {}
    return {"ID": c.short_id, "Name": c.name, "CPUPerc": round(cpu_pct, 2),
            "MemUsage": mem.get("usage", 0), "MemLimit": mem.get("limit"),
            "PIDs": pids.get("current", 0), "BlockRead": blk.get("read_bytes", 0),
            "BlockWrite": blk.get("write_bytes", 0), "_cpu_ns": cpu_ns}


def cmd_stats(args) -> int:
    """docker stats: CPU % is measured over an interval (about 1 s per refresh)."""
    import time

    from .common import human_size

    engine = _engine(args)
    if args.containers:
        cs = [engine.containers.get(r) for r in args.containers]
    else:
        cs = [c for c in engine.containers.list() if c.state.status == "running" and engine.is_running(c)]
    prev: dict = {}
    for c in cs:
        s = engine.stats(c)
        prev[c.id] = (((s.get("cpu") or {}).get("usage_ns") or 0), time.monotonic())
    while True:
        time.sleep(1.0)
        rows = []
        for c in cs:
            s = engine.stats(c)
            t = time.monotonic()
            row = _stats_row(c, s, prev.get(c.id), t)
            prev[c.id] = (row.pop("_cpu_ns"), t)
            rows.append(row)
        if args.format == "json":
            print(json.dumps(rows), flush=True)
        else:
            def lim(v):  # v1 reports "no limit" as a huge number
                return human_size(v) if v and v < 1 << 60 else "--"
            out = [("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "BLOCK I/O")]
            for r in rows:
                out.append((r["ID"], r["Name"], f"{r['CPUPerc']:.2f}%",
                            f"{human_size(r['MemUsage'])} / {lim(r['MemLimit'])}", str(r["PIDs"]),
                            f"{human_size(r['BlockRead'])} / {human_size(r['BlockWrite'])}"))
            if not args.no_stream:
                sys.stdout.write("\x1b[2J\x1b[H" if sys.stdout.isatty() else "")
            table(out)
            sys.stdout.flush()
        if args.no_stream:
            return 0
