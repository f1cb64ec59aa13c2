"""``run`` (in the foreground, or ``-d`` under conmon) and ``create``, and their container
flags (docker's names and meanings) with the :class:`~pyrt_core.models.ContainerConfig`
they make, checked before anything exists."""
from __future__ import annotations

import os

from ...errors import NotFoundError, UsageError
from . import engine_for, recover

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    import argparse


def _p_run_create(cmd, name, help, func) -> None:
    # `run -h` means --hostname, as in docker: run's help is --help only
    # and, as in docker and podman, `run --storage-opt` is per container (size=...);
    # driver options go before the command: `pyrt --storage-opt overlay.x=y run ...`
    # (argparse or cli.specparse's recorder: nothing imports argparse here)
    from ..resource_flags import add_resource_flags

    r = cmd(name, help, func, add_help=False, storage_opt=False)
    add_container_flags(r)
    add_label_flags(r)
    add_resource_flags(r)
    r.add_argument("--rm", action="store_true", help="remove the container when it exits")
    if name == "run":
        r.add_argument("--detach", "-d", action="store_true",
                       help="run in the background (under its monitor) and print its id")
        r.add_argument("--attach", "-a", action="append", default=[], metavar="STREAM",
                       help="attach only these streams: stdin, stdout, stderr (default: all)")
        r.add_argument("--sig-proxy", nargs="?", const="true", default="true", metavar="BOOL",
                       help="pass the signals pyrt gets on to the container (default true; "
                            "--sig-proxy=false: SIGINT/SIGTERM end pyrt, not the container)")
        r.add_argument("--detach-keys", default=None, metavar="KEYS",
                       help="keys that detach from the container's terminal (default ctrl-p,ctrl-q)")
    r.add_argument("image", metavar="IMAGE")
    r.add_argument("cmd", nargs="...", metavar="COMMAND [ARG...]")  # argparse.REMAINDER


def _p_run(cmd) -> None:
    _p_run_create(cmd, "run", "Run a command in a new container", cmd_run)


def _p_create(cmd) -> None:
    _p_run_create(cmd, "create", "Create a new container", cmd_create)


PARSERS = {"run": _p_run, "create": _p_create}


def cmd_create(args) -> int:
    config = container_config_from_args(args)
    engine = engine_for(args)
    c = _create_with_cidfile(engine, config, args)
    print(c.id)
    return 0


def _create_with_cidfile(engine, config, args, **kw):
    """``engine.create``, and ``--cidfile`` written (or removed when create fails)."""
    from ..run_flags import CidFile

    cidfile = CidFile(config.cidfile)
    try:
        c = engine.create(config, name=args.name, pull=args.pull, **kw)
    except BaseException:
        cidfile.abandon()
        raise
    cidfile.write(c.id)
    return c


def cmd_run(args) -> int:
    from .terminal import parse_attach, parse_bool, parse_detach_keys

    attach = parse_attach(args.attach)
    sig_proxy = parse_bool(args.sig_proxy, "--sig-proxy")
    keys = parse_detach_keys(args.detach_keys)
    if args.detach:
        if attach is not None:
            raise UsageError("Conflicting options: -a and -d")
        return _run_detached(args)
    config = container_config_from_args(args)
    engine = engine_for(args)
    stdin = config.interactive and (attach is None or "stdin" in attach)
    if config.restart_policy != "no" or config.runtime or not sig_proxy or keys is not None:
        # the restart policy outlives this CLI: run under the monitor and attach to it;
        # so does a container of another OCI runtime (--runtime, monitor.ociruntime), one
        # that must outlive a signal to this CLI (--sig-proxy=false) and one that may be
        # detached from (--detach-keys): the CLI is then only attached to it
        from .lifecycle import start_attached

        c = _create_with_cidfile(engine, config, args)
        return start_attached(engine, c.id, stdin=stdin, streams=attach, sig_proxy=sig_proxy,
                              detach_keys=keys)
    if config.cidfile:
        return _run_foreground_cidfile(engine, config, args, streams=attach)
    return _run_foreground(engine, config, args, streams=attach)


def _run_foreground_cidfile(engine, config, args, streams=None) -> int:
    """A foreground run with ``--cidfile``: the id written once the container exists."""
    from ..run_flags import CidFile

    cidfile = CidFile(config.cidfile)
    try:
        return _run_foreground(engine, config, args, streams=streams,
                               on_record=lambda c: cidfile.write(c.id))
    finally:
        cidfile.abandon()  # (nothing once written)


def _run_detached(args) -> int:
    """``run -d``.  The container's monitor starts first of all, right after the settings
    are known (conmon.prelaunch: no attrs, no engine yet): its runtime is a second
    Python process whose start-up then overlaps this one's loading of the models,
    the flag checks, the recovery pass, create, mount and bundle.  A bad flag or a
    failed create stops that monitor again (conmon.abandon)."""
    from ...containers.store import ContainerStore
    from ...monitor import conmon
    from ..common import settings_from_args

    settings = settings_from_args(args)
    if args.name:  # before the monitor starts: a bad name leaves nothing behind
        from ...containers.store import check_name

        args.name = check_name(args.name)
    store = ContainerStore(settings.root, settings.runroot)
    cid = store.new_id()
    launched = None
    try:
        if _name_free(store, args.name) and getattr(args, "runtime", None) is None \
                and getattr(args, "log_driver", None) in (None, "k8s-file", "json-file") \
                and not any(o.startswith("tag=") for o in args.log_opt):
            # (a taken name fails the create anyway; another runtime reads the bundle at once)
            launched = conmon.prelaunch(settings, store, cid, name=args.name,
                                        stdin=args.interactive, tty=args.tty,
                                        log_size_max=log_size_max_from_args(args))
        from ...engine import Engine
        from ...engine.common import fault

        fault("run:launched")
        config = container_config_from_args(args)
        engine = Engine(settings)
        recover(engine)
        c = _create_with_cidfile(engine, config, args, cid=cid)
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


def _run_foreground(engine, config, args, streams: set[str] | None = None, on_record=None) -> int:
    """The CLI is the container's monitor: fastest path, stdio passed straight through
    (or a pty pyrt owns for -t).  ``streams``: ``-a``'s (None: all).  ``on_record(container)``:
    once it exists."""
    from .terminal import terminal_stdio

    # logged as docker logs it, unless --rm removes the log with the container anyway
    # (the journal keeps it), or the driver is none
    logged = config.log_driver != "none" and (not config.auto_remove or config.log_driver == "journald")
    with terminal_stdio(config.tty, config.interactive and (streams is None or "stdin" in streams),
                        logged=logged, streams=streams) as (stdio, proxy):
        on_created = _open_log(engine, proxy, config) if logged and proxy else None
        if on_record is not None:
            on_created = _both(on_record, on_created)
        return engine.run(config, name=args.name, stdio=stdio, pull=args.pull,
                          on_started=(lambda pid: proxy.start()) if proxy else None,
                          on_exited=(lambda code: proxy.finish()) if proxy else None,
                          on_console=getattr(proxy, "adopt", None),
                          on_created=on_created)


def _both(first, second):
    def both(container):
        first(container)
        if second is not None:
            second(container)
    return both


def _open_log(engine, proxy, config):
    """``on_created`` of a foreground run: open the container's log for the proxy."""
    def opened(container):
        from ...monitor.logfile import LogFile

        try:
            if config.log_driver == "journald":
                from ...monitor.logdrivers import JournalWriter

                proxy.log = JournalWriter(container)
            else:
                proxy.log = LogFile(engine.containers.log_path(container.id), config.log_size_max)
        except OSError as e:  # the output still reaches the terminal
            import sys

            sys.stderr.write(f"pyrt: warning: cannot open the container's log: {e.strerror}\n")
    return opened


# -- the container flags -------------------------------------------------------------


def add_container_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE",
                   help="set an environment variable (KEY alone passes the host's value)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE", help="read variables from a file")
    p.add_argument("--workdir", "-w", metavar="DIR", help="working directory inside the container")
    p.add_argument("--user", "-u", metavar="USER[:GROUP]", help="user name or uid, and group")
    p.add_argument("--hostname", "-h", metavar="NAME", help="container host name")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's entrypoint")
    from ..mount_flags import add_mount_flags

    add_mount_flags(p)  # -v, --mount, --tmpfs, --volumes-from
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
    p.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                   help="the image's platform: pulled for it from a multi-platform image; a "
                        "local image of another platform is pulled again (refused with --pull never)")
    p.add_argument("--runtime", default=None, metavar="NAME|PATH",
                   help="the OCI runtime: runc, crun, a name from the config file's [runtimes], "
                        "or an absolute path (default: pyrt-runtime)")
    p.add_argument("--log-driver", default=None, metavar="DRIVER",
                   help="k8s-file (default), json-file (written as k8s-file, as podman), "
                        "journald, none")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="log options: max-size (default 10m; the log restarts when full), "
                        "max-file (1), tag (a template: {{.ID}}, {{.Name}}, ...)")
    from .network_flags import add_network_flags

    add_network_flags(p)
    from ..health_flags import add_health_flags

    add_health_flags(p)
    from ..run_flags import add_run_flags

    add_run_flags(p)  # --init, --ulimit, --sysctl, --shm-size, namespaces...
    p.add_argument("--help", action="help", help="show this help message and exit")


def add_label_flags(p: argparse.ArgumentParser) -> None:
    """``-l/--label`` and ``--label-file`` (docker's): the container's labels, shown by
    ``inspect`` (Config.Labels, over the image's) and matched by ``ps --filter label=``."""
    p.add_argument("--label", "-l", action="append", default=[], metavar="KEY=VALUE",
                   help="set a label on the container (KEY alone: an empty value)")
    p.add_argument("--label-file", action="append", default=[], metavar="FILE",
                   help="read labels from a file (KEY=VALUE lines; # comments)")


def labels_from_args(args) -> dict[str, str]:
    """The labels of ``--label-file`` lines, then of ``-l`` flags (a later one wins)."""
    items = []
    for path in getattr(args, "label_file", None) or []:
        try:
            with open(path, encoding="utf-8") as f:
                items += [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read label file {path}: {getattr(e, 'strerror', None) or e}") from None
    labels = {}
    for item in items + list(getattr(args, "label", None) or []):
        key, _, value = item.partition("=")
        if not key or key != key.strip() or "\0" in item:
            raise UsageError(f"invalid label {item!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def parse_env(items: list[str], files: list[str]) -> list[str]:
    """``-e`` values and ``--env-file`` lines as KEY=VALUE (a bare KEY takes the host's
    value, or is dropped when the host has none), as docker does."""
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
    from ...models import ContainerConfig, IdMap
    from ..mount_flags import volumes_from_args

    from .network_flags import networking_json

    network, networking, expose, publish_all = networking_json(args, warn=_warn)
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
    from ..resource_flags import resources_from_args

    rf = resources_from_args(args)
    policy, restart_max = parse_restart(getattr(args, "restart", "no") or "no")
    if policy != "no" and getattr(args, "rm", False):
        raise UsageError("conflicting options: --restart and --rm")
    from ...monitor.logdrivers import parse as parse_log

    log_driver, log_opts, log_size_max, log_tag = parse_log(getattr(args, "log_driver", None),
                                                            getattr(args, "log_opt", []) or [])
    stop_signal = getattr(args, "stop_signal", None)
    if stop_signal:
        from ...runtime.cli import RuntimeFailure, parse_signal

        try:
            parse_signal(stop_signal)
        except RuntimeFailure as e:
            raise UsageError(f"invalid --stop-signal: {e}") from None
    hostname = args.hostname
    if hostname is not None and (not hostname or len(hostname) > 64 or "/" in hostname):
        raise UsageError(f"invalid hostname {hostname!r}")
    from ...capabilities import parse_flag

    cap_add = parse_flag(getattr(args, "cap_add", None), "--cap-add")
    cap_drop = parse_flag(getattr(args, "cap_drop", None), "--cap-drop")
    from ..health_flags import healthcheck_from_args

    healthcheck = healthcheck_from_args(args)
    privileged = bool(getattr(args, "privileged", False))
    if privileged and (userns or uidmaps):
        raise UsageError("--privileged cannot be used with a user namespace "
                         "(--userns private, --uidmap, --gidmap)")
    from ..run_flags import run_flags_from_args

    run_flags = run_flags_from_args(args, network)
    return ContainerConfig(
        image=args.image,
        command=list(args.cmd) or None,
        entrypoint=entrypoint,
        env=parse_env(args.env, args.env_file),
        workdir=args.workdir,
        user=args.user,
        hostname=hostname,
        network=network,
        networking=networking,
        expose=expose,
        publish_all=publish_all,
        volumes=volumes_from_args(args),
        volumes_from=list(getattr(args, "volumes_from", []) or []),
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
        labels=labels_from_args(args),
        healthcheck=healthcheck,
        **run_flags,
        runtime=_runtime_name(getattr(args, "runtime", None)),
        log_driver="" if getattr(args, "log_driver", None) is None else log_driver,
        log_opts=log_opts,
        log_tag=log_tag,
        platform=_platform(getattr(args, "platform", None)),
    )


def _platform(text: str | None) -> str | None:
    if text is None:
        return None
    from ...engine.create import check_platform

    return check_platform(text)


def _runtime_name(text: str | None) -> str:
    """``--runtime``'s value ("" for pyrt's own); resolved and checked by the engine's create."""
    if text is None:
        return ""
    from ...monitor.ociruntime import is_pyrt

    if not text.strip():
        raise UsageError("invalid --runtime '': a runtime name or an absolute path")
    return "" if is_pyrt(text) else text


def _warn(text: str) -> None:
    import sys

    sys.stderr.write(text + "\n")


def _no_new_privileges(opts: list[str]) -> bool:
    if not opts:
        return True
    from ...containers.seccomp_default import no_new_privileges

    return no_new_privileges(opts)


def _seccomp_setting(opts: list[str]) -> str | None:
    if not opts:
        return None
    from ...containers.defaults import DEFAULT_CAPS
    from ...containers.seccomp_default import parse_security_opts

    return parse_security_opts(opts, DEFAULT_CAPS)


def log_size_max_from_args(args) -> int | None:
    """``--log-opt max-size=SIZE`` in bytes (None: the monitor's default)."""
    from ...monitor.logdrivers import parse as parse_log

    return parse_log(getattr(args, "log_driver", None), getattr(args, "log_opt", []) or [])[2]


def parse_restart(text: str) -> tuple[str, int]:
    name, _, n = text.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise UsageError(f"invalid restart policy {text!r}: no, on-failure[:N], always or unless-stopped")
    if n and name != "on-failure":
        raise UsageError(f"invalid restart policy {text!r}: only on-failure takes a count")
    if n and (not n.isdigit() or int(n) < 0):
        raise UsageError(f"invalid restart policy {text!r}: the count must be a number >= 0")
    return name, int(n) if n else 0
