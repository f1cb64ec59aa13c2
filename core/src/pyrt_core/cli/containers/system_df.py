"""``pyrt system df`` and ``pyrt system prune``: docker's columns, prompt and report
(the measures and the removal are engine.usage's)."""
from __future__ import annotations

import sys

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
           "Reclaimable": "RECLAIMABLE"}


def add_parsers(ssub) -> None:
    """``system df`` and ``system prune`` (under cli.containers.inventory's ``system``)."""
    from ..formatting import add_format_flag

    df = ssub.add_parser("df", help="Show the disk space used by images, containers and volumes")
    add_format_flag(df, "rows (.Type, .TotalCount, .Active, .Size, .Reclaimable); with -v "
                        "the whole (.Images, .Containers, .Volumes, .BuildCache)")
    df.add_argument("-v", "--verbose", action="store_true",
                    help="Show detailed information on space usage")
    df.set_defaults(func=cmd_system_df)
    pr = ssub.add_parser("prune", help="Remove stopped containers, unused networks, dangling "
                                       "images (and unused volumes with --volumes)")
    pr.add_argument("--all", "-a", action="store_true",
                    help="remove every image no container uses, not only dangling ones")
    pr.add_argument("--volumes", action="store_true", help="prune anonymous volumes too")
    pr.add_argument("--force", "-f", action="store_true", help="do not prompt for confirmation")
    pr.add_argument("--filter", action="append", default=[], metavar="FILTER",
                    help="only what matches: until=TIMESTAMP (created before it), "
                         "label=KEY[=VALUE] or label!=KEY[=VALUE]")
    pr.set_defaults(func=cmd_system_prune)


def human_size(n: float) -> str:
    """docker's ``units.HumanSize``: decimal units, four significant digits (``16.43MB``)."""
    i = 0
    while n >= 1000 and i < len(_UNITS) - 1:
        n /= 1000
        i += 1
    return "%.4g%s" % (n, _UNITS[i])


def _reclaimable(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def rows_text(rows: list[dict]) -> list[dict]:
    """The rows as docker prints them (strings), which ``--format`` templates see."""
    return [{"Type": r["Type"], "TotalCount": str(r["TotalCount"]), "Active": str(r["Active"]),
             "Size": human_size(r["Size"]),
             "Reclaimable": (human_size(r["Reclaimable"]) if r["Type"] == "Build Cache"
                             else _reclaimable(r["Reclaimable"], r["Size"]))} for r in rows]


def render_table(rows: list[dict], headers: dict = HEADERS) -> str:
    """docker's table (its tabwriter: columns at least 10 wide, 3 spaces apart; the last
    column as it is)."""
    keys = list(headers)
    lines = [[headers[k] for k in keys]] + [[r[k] for k in keys] for r in rows]
    widths = [max(10, max(len(x[i]) for x in lines) + 3) for i in range(len(keys) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(x, widths)) + x[-1] + "\n"
                   for x in lines)


#: the verbose tables' columns (docker's defaultDiskUsage*TableFormat)
IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                 "CreatedSince": "CREATED", "Size": "SIZE", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}
CONTAINER_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                     "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED",
                     "Status": "STATUS", "Names": "NAMES"}
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
CACHE_HEADERS = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
                 "CreatedSince": "CREATED", "LastUsedSince": "LAST USED",
                 "UsageCount": "USAGE", "Shared": "SHARED"}


def verbose_rows(engine, items: dict) -> dict:
    """``-v``'s four lists of rows, docker's fields as it prints them: images (the first
    name; sizes with three digits, as ``images``), containers (``ps``'s fields, the size
    of the writable layer), volumes (links and size, N/A for another driver's) and the
    build cache (pyrt has none)."""
    from ..common import ago, split_name
    from ..common import human_size as size3
    from .listing import row as ps_row

    images = []
    for it in items["images"]:
        img = it["image"]
        repo, tag = split_name(img.names[0]) if img.names else ("<none>", "<none>")
        images.append({"Repository": repo, "Tag": tag, "ID": img.short_id,
                       "CreatedSince": ago(img.created), "Size": size3(it["size"]),
                       "SharedSize": size3(it["shared"]),
                       "UniqueSize": size3(it["size"] - it["shared"]),
                       "Containers": str(it["containers"])})
    containers = []
    for it in items["containers"]:
        r = ps_row(engine, engine.full(it["container"]))
        r.update(LocalVolumes=str(it["local_volumes"]), Size=size3(it["size"]))
        containers.append({k: r[k] for k in CONTAINER_HEADERS})
    volumes = [{"Name": it["volume"]["Name"], "Links": str(it["links"]),
                "Size": "N/A" if it["size"] is None else human_size(it["size"])}
               for it in items["volumes"]]
    return {"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []}


def render_verbose(rows: dict) -> str:
    """docker's ``system df -v`` text: the four tables under their titles."""
    return ("Images space usage:\n\n" + render_table(rows["Images"], IMAGE_HEADERS)
            + "\nContainers space usage:\n\n"
            + render_table(rows["Containers"], CONTAINER_HEADERS)
            + "\nLocal Volumes space usage:\n\n" + render_table(rows["Volumes"], VOLUME_HEADERS)
            + f"\nBuild cache usage: {human_size(0)}\n\n" + render_table([], CACHE_HEADERS))


def cmd_system_df(args) -> int:
    from .. import formatting
    from ..common import engine_from_args

    formatting.check(args.format)
    engine = engine_from_args(args)
    if args.verbose:
        from ...engine.usage import disk_usage_items

        rows = verbose_rows(engine, disk_usage_items(engine))
        if formatting.is_default(args.format):
            sys.stdout.write(render_verbose(rows))
        elif args.format == "json":
            from ...jsonlean import dumps_text

            sys.stdout.write(dumps_text(rows) + "\n")
        else:  # one template over the whole, as docker's
            from ..gotemplate import render_rows

            for line in render_rows(args.format, [rows], None):
                sys.stdout.write(line + "\n")
        return 0
    from ...engine.usage import disk_usage

    rows = rows_text(disk_usage(engine))
    if formatting.is_default(args.format):
        sys.stdout.write(render_table(rows))
    else:
        formatting.print_rows(args.format, rows, HEADERS)
    return 0


def prompt_text(all_images: bool, volumes: bool, networks: bool) -> str:
    items = ["all stopped containers"]
    if networks:
        items.append("all networks not used by at least one container")
    if volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if all_images
                 else "all dangling images")
    return ("WARNING! This will remove:\n" + "".join(f"  - {x}\n" for x in items)
            + "\nAre you sure you want to continue? [y/N] ")


def confirmed(text: str) -> bool:
    """docker's PromptForConfirmation: the question on stdout, a line from stdin (its end
    is a no)."""
    sys.stdout.write(text)
    sys.stdout.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stdout.write("\n")
    return answer.strip().lower() in ("y", "yes")


def cmd_system_prune(args) -> int:
    from ...engine.usage import networks_supported, prune
    from ..common import engine_from_args
    from ..prune_filter import PruneFilter

    match = PruneFilter.parse(args.filter, volumes=args.volumes)  # one line, before anything
    engine = engine_from_args(args)
    if not args.force and not confirmed(prompt_text(args.all, args.volumes,
                                                    networks_supported(engine))):
        return 0
    got = prune(engine, all_images=args.all, volumes=args.volumes,
                match=match.matches if match else None)
    out = sys.stdout
    for key, title in (("containers", "Containers"), ("networks", "Networks"),
                       ("volumes", "Volumes")):
        if got[key]:
            out.write(f"Deleted {title}:\n" + "".join(f"{x}\n" for x in got[key]) + "\n")
    if got["images"]:  # docker's prune report spells them in lower case
        out.write("Deleted Images:\n" + "".join(x[:1].lower() + x[1:] + "\n"
                                               for x in got["images"]) + "\n")
    out.write(f"Total reclaimed space: {human_size(got['reclaimed'])}\n")
    for e in got["errors"]:
        sys.stderr.write(f"Error: {e}\n")
    return 1 if got["errors"] else 0
