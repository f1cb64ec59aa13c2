"""``ps``, ``inspect``, ``rm``: the containers there are, what they are, removing them;
and the upkeep of them all: ``container prune``, ``container cleanup`` (conmon's exit
command), ``system recover``, ``system boot``."""
from __future__ import annotations

import sys

from ...errors import NotFoundError, UsageError
from ..common import ago, engine_from_args, table
from . import each, engine_for


def _p_inspect(cmd, name="inspect", kind=None) -> None:
    ins = cmd(name, "Show low-level information on images or containers", cmd_inspect)
    if kind is None:
        ins.add_argument("--type", choices=("image", "container"), default=None)
    else:
        ins.set_defaults(type=kind)
    ins.add_argument("--format", "-f", default=None, metavar="TEMPLATE",
                     help="a Go template run over each object (e.g. '{{.State.Pid}}')")
    # docker's `-s` is --size here, not the global --storage-driver (as kill's -s)
    ins.conflict_handler = ins._optionals.conflict_handler = "resolve"
    ins.add_argument("--size", "-s", action="store_true",
                     help="add the sizes of a container's writable layer and root filesystem "
                          "(SizeRw, SizeRootFs)")
    ins.add_argument("names", nargs="+", metavar="NAME")


def _p_ps(cmd, name="ps", aliases=()) -> None:
    from ..formatting import add_format_flag

    ps = cmd(name, "List containers", cmd_ps, aliases=aliases)
    ps.add_argument("--all", "-a", action="store_true", help="show all containers (default: running)")
    ps.add_argument("--quiet", "-q", action="store_true", help="only show ids")
    ps.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    ps.add_argument("--filter", "-f", action="append", default=[], metavar="KEY=VALUE",
                    help="id, name, label, status, ancestor, before, since, exited, volume, network, "
                         "health")
    ps.add_argument("--last", "-n", type=int, default=None, metavar="N",
                    help="show the N last created containers (all states)")
    ps.add_argument("--latest", "-l", action="store_true",
                    help="show the latest created container (all states)")
    ps.conflict_handler = ps._optionals.conflict_handler = "resolve"  # -s: --size, as in docker
    ps.add_argument("--size", "-s", action="store_true", help="show the containers' sizes")
    add_format_flag(ps, "containers (.ID, .Names, .Image, .Status...)")


def _p_rm(cmd) -> None:
    rm = cmd("rm", "Remove containers", cmd_rm)
    rm.add_argument("--force", "-f", action="store_true", help="kill and remove running containers")
    rm.add_argument("--volumes", "-v", action="store_true",
                    help="remove the container's anonymous volumes too")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")


def _p_system(cmd) -> None:
    sy = cmd("system", "Engine-wide maintenance (recover, boot, df, prune)", None)
    ssub = sy.add_subparsers(dest="system_command", metavar="COMMAND")
    rc = ssub.add_parser("recover", help="Reconcile records with running processes; release stale "
                                         "mounts, cgroups and state")
    rc.set_defaults(func=cmd_system_recover)
    bt = ssub.add_parser("boot", help="At host start-up: recover, then start --restart always "
                                      "(and unless-stopped) containers")
    bt.set_defaults(func=cmd_system_boot)
    from .system_df import add_parsers as add_usage_parsers

    add_usage_parsers(ssub)  # df, prune
    sy.set_defaults(func=lambda a: (sy.print_help(), 0)[1])


def _p_rename(cmd) -> None:
    rn = cmd("rename", "Rename a container", cmd_rename)
    rn.add_argument("container", metavar="CONTAINER")
    rn.add_argument("new_name", metavar="NEW_NAME")


PARSERS = {"inspect": _p_inspect, "ps": _p_ps, "rm": _p_rm, "rename": _p_rename,
           "system": _p_system}


def cmd_rename(args) -> int:
    from ...engine.rename import rename

    rename(engine_for(args), args.container, args.new_name)
    return 0


def cmd_inspect(args) -> int:
    from ..formatting import print_objects

    if args.format:
        from ..gotemplate import parse

        parse(args.format)  # a bad template: one line, before any work
    engine = engine_for(args)
    # a container's document from its record's lean view (inspect_view.py): -f builds
    # only the fields the template reads; --size needs the model (listing.sizes)
    lazy = not args.size
    out, missing, image_configs = [], [], {}
    for name in args.names:
        obj = None
        if args.type in (None, "container"):
            try:
                if lazy:
                    from .inspect_view import LazyInspect

                    obj = LazyInspect(engine, engine.containers.find(name), image_configs)
                    if not args.format:
                        obj = obj.template_value()
                else:
                    from .docker_shape import container_inspect

                    c = engine.containers.get(name)
                    obj = container_inspect(engine, c, image_configs)
                if args.size:
                    from .listing import sizes

                    obj["SizeRw"], obj["SizeRootFs"] = sizes(engine, c)
            except NotFoundError:
                obj = None
        if obj is None and args.type in (None, "image"):
            from ..images import image_inspect

            try:
                obj = image_inspect(engine, engine.images.get(name))
            except (NotFoundError, UsageError):
                obj = None
        if obj is None:
            missing.append(name)
        else:
            out.append(obj)
    if out or not args.format:
        print_objects(args.format, out)
    if missing:
        what = {"container": "container", "image": "image"}.get(args.type, "object")
        raise NotFoundError(f"no such {what}: {missing[0]}")
    return 0


def cmd_ps(args) -> int:
    from . import listing
    from ..formatting import check, is_default

    fmt = args.format
    if not is_default(fmt):
        check(fmt)
    engine = engine_for(args)
    # the plain table and -q read the records' lean views (no attrs: docs/architecture.md,
    # "The hot path"); filters, templates and sizes get the models
    lean = is_default(fmt) and not args.filter and not args.size
    cs = listing.select(engine, args, lean=lean)
    trunc = not args.no_trunc
    if args.quiet:
        for c in cs:
            print(c.short_id if trunc else c.id)
        return 0
    if not is_default(fmt):
        from ..formatting import print_rows

        print_rows(fmt, [listing.row(engine, c, trunc, args.size) for c in cs], listing.HEADERS)
        return 0
    from .ports import ports_column

    head = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    rows = [head + (("SIZE",) if args.size else ())]
    for c in cs:
        cmdline = listing.command_text(engine, c)
        if trunc and len(cmdline) > 20:
            cmdline = cmdline[:19] + "…"
        rows.append((c.short_id if trunc else c.id, c.image_name, f'"{cmdline}"', ago(c.created),
                     listing.status_text(c, engine.settings.root), ports_column(c), c.name)
                    + ((listing.size_text(engine, c),) if args.size else ()))
    table(rows)
    return 0


def cmd_rm(args) -> int:
    engine = engine_for(args)
    return each(args.containers, lambda ref: (engine.remove(ref, force=args.force,
                                                            volumes=args.volumes), ref)[1])


# -- upkeep --------------------------------------------------------------------------


def cmd_container_prune(args) -> int:
    from ...engine.usage import prune_containers
    from ..prune_filter import PruneFilter

    match = PruneFilter.parse(getattr(args, "filter", None))  # one line, before anything
    engine = engine_for(args)
    gone, errors, _ = prune_containers(engine, match.matches if match else None)
    for cid in gone:
        print(cid)
    for e in errors:
        sys.stderr.write(f"Error: {e}\n")
    return 1 if errors else 0


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
    for c in engine.containers.records():
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
