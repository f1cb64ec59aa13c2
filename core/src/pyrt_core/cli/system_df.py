"""``pyrt system df`` and ``pyrt system prune``: docker's columns, prompt and report
(the measures and the removal are engine.usage's)."""
from __future__ import annotations

import sys

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
           "Reclaimable": "RECLAIMABLE"}


def add_parsers(ssub) -> None:
    """``system df`` and ``system prune`` (under cli.containers.inventory's ``system``)."""
    from .formatting import add_format_flag

    df = ssub.add_parser("df", help="Show the disk space used by images, containers and volumes")
    add_format_flag(df, "rows (.Type, .TotalCount, .Active, .Size, .Reclaimable)")
    df.set_defaults(func=cmd_system_df)
    pr = ssub.add_parser("prune", help="Remove stopped containers, unused networks, dangling "
                                       "images (and unused volumes with --volumes)")
    pr.add_argument("--all", "-a", action="store_true",
                    help="remove every image no container uses, not only dangling ones")
    pr.add_argument("--volumes", action="store_true", help="prune anonymous volumes too")
    pr.add_argument("--force", "-f", action="store_true", help="do not prompt for confirmation")
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


def render_table(rows: list[dict]) -> str:
    """docker's table (its tabwriter: columns at least 10 wide, 3 spaces apart)."""
    keys = list(HEADERS)
    lines = [[HEADERS[k] for k in keys]] + [[r[k] for k in keys] for r in rows]
    widths = [max(10, max(len(x[i]) for x in lines) + 3) for i in range(len(keys) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(x, widths)) + x[-1] + "\n"
                   for x in lines)


def cmd_system_df(args) -> int:
    from ..engine.usage import disk_usage
    from . import formatting
    from .common import engine_from_args

    formatting.check(args.format)
    rows = rows_text(disk_usage(engine_from_args(args)))
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
    from ..engine.usage import networks_supported, prune
    from .common import engine_from_args

    engine = engine_from_args(args)
    if not args.force and not confirmed(prompt_text(args.all, args.volumes,
                                                    networks_supported(engine))):
        return 0
    got = prune(engine, all_images=args.all, volumes=args.volumes)
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
