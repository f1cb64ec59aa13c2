"""``pyrt volume create|ls|inspect|rm|prune`` (docker's flags, messages and JSON shapes;
docs/volumes.md).  ``ls`` and ``inspect`` read the records without the volume lock and
without attrs; the others go through the engine (engine.volumes), which calls the
drivers' hooks."""
from __future__ import annotations

import sys

from ..errors import UsageError


def _p_volume(cmd) -> None:
    vol = cmd("volume", "Manage volumes (create, ls, inspect, rm, prune)", None)
    sub = vol.add_subparsers(dest="volume_command", metavar="COMMAND")
    c = sub.add_parser("create", help="Create a volume")
    c.add_argument("--driver", "-d", default="local", metavar="DRIVER",
                   help="volume driver (default local)")
    c.add_argument("--opt", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="driver option (local: type=tmpfs|none|..., device=..., o=...)")
    c.add_argument("--label", action="append", default=[], metavar="KEY[=VALUE]",
                   help="set metadata on the volume")
    c.add_argument("name", nargs="?", metavar="NAME")
    c.set_defaults(func=cmd_create)
    ls = sub.add_parser("ls", aliases=["list"], help="List volumes")
    ls.add_argument("--quiet", "-q", action="store_true", help="only show names")
    ls.add_argument("--filter", "-f", action="append", default=[], metavar="KEY=VALUE",
                    help="name=, driver=, label=KEY[=VALUE], dangling=true|false")
    ls.add_argument("--format", default=None, metavar="FORMAT",
                    help="json, table, or a template ({{.Name}}, {{.Driver}}, ...)")
    ls.set_defaults(func=cmd_ls)
    ins = sub.add_parser("inspect", help="Show volumes in detail (docker's JSON)")
    ins.add_argument("--format", "-f", default=None, metavar="FORMAT")
    ins.add_argument("names", nargs="+", metavar="VOLUME")
    ins.set_defaults(func=cmd_inspect)
    rm = sub.add_parser("rm", aliases=["remove"], help="Remove volumes")
    rm.add_argument("--force", "-f", action="store_true",
                    help="no error for a volume that does not exist")
    rm.add_argument("names", nargs="+", metavar="VOLUME")
    rm.set_defaults(func=cmd_rm)
    pr = sub.add_parser("prune", help="Remove unused anonymous volumes (all unused with -a)")
    pr.add_argument("--all", "-a", action="store_true", help="named ones too")
    pr.add_argument("--force", "-f", action="store_true", help="do not ask (pyrt never asks)")
    pr.add_argument("--filter", action="append", default=[], metavar="FILTER",
                    help="only what matches: label=KEY[=VALUE] or label!=KEY[=VALUE]")
    pr.set_defaults(func=cmd_prune)
    vol.set_defaults(func=lambda a: (vol.print_help(), 0)[1])


PARSERS = {"volume": _p_volume}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


def _pairs(items: list[str], what: str, need_value: bool) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k or (need_value and not sep):
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        out[k] = v
    return out


def _root(args) -> str:
    from .common import settings_from_args

    return settings_from_args(args).root


def cmd_create(args) -> int:
    from ..engine.volumes import create_volume
    from .common import engine_from_args

    opts = _pairs(args.opt, "option", True)
    labels = _pairs(args.label, "label", False)
    if args.name:
        from ..volumes.names import check_name

        check_name(args.name)
    engine = engine_from_args(args)
    rec, _ = create_volume(engine, args.name or None, args.driver, opts, labels,
                           anonymous=not args.name)
    print(rec["Name"])
    return 0


def _filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or k not in ("name", "driver", "label", "dangling"):
            raise UsageError(f"invalid filter {item!r}: name=, driver=, label= or dangling=")
        if k == "dangling" and v.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter 'dangling={v}': true or false")
        out.setdefault(k, []).append(v)
    return out


def _used_names(args) -> set[str]:
    """Volume names the containers' records mount (for dangling=): read from the records
    without attrs (the JSON's config.volumes)."""
    import os

    from ..jsonlean import loads

    root = _root(args)
    d = os.path.join(root, "containers")
    used = set()
    try:
        ids = os.listdir(d)
    except FileNotFoundError:
        return used
    for cid in ids:
        try:
            with open(os.path.join(d, cid, "container.json"), "rb") as f:
                rec = loads(f.read().decode())
        except (OSError, ValueError):
            continue
        for v in ((rec.get("config") or {}).get("volumes") or []):
            if v.get("type") == "volume":
                used.add(v.get("source"))
    return used


def _match(rec: dict, flt: dict[str, list[str]], used) -> bool:
    for v in flt.get("name", []):
        if v not in rec["Name"]:
            return False
    if flt.get("driver") and rec["Driver"] not in flt["driver"]:
        return False
    labels = rec.get("Labels") or {}
    for v in flt.get("label", []):
        k, sep, val = v.partition("=")
        if k not in labels or (sep and labels[k] != val):
            return False
    for v in flt.get("dangling", []):
        dangling = v.lower() in ("true", "1")
        if (rec["Name"] not in used()) != dangling:
            return False
    return True


def render(fmt: str, obj: dict) -> str:
    """A Go template as docker's ``--format`` uses them: ``{{.Field}}``, ``{{json .}}``,
    ``{{json .Field}}``, ``{{index .Labels "k"}}``, and ``\\t``/``\\n`` escapes."""
    out, i = [], 0
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    while True:
        j = fmt.find("{{", i)
        if j < 0:
            out.append(fmt[i:])
            break
        k = fmt.find("}}", j)
        if k < 0:
            raise UsageError(f"invalid format {fmt!r}: unclosed action")
        out.append(fmt[i:j])
        words = fmt[j + 2:k].strip().split()
        out.append(_action(words, obj))
        i = k + 2
    return "".join(out)


def _field(path: str, obj):
    if path == ".":
        return obj
    cur = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise UsageError(f"template: can't evaluate field {part}")
        cur = cur[part]
    return cur


def _text(v) -> str:
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{x}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _action(words: list[str], obj: dict) -> str:
    if len(words) == 1 and words[0].startswith("."):
        return _text(_field(words[0], obj))
    if len(words) == 2 and words[0] == "json":
        from ..jsonlean import dumps

        return dumps(_field(words[1], obj))
    if len(words) == 3 and words[0] == "index":
        m = _field(words[1], obj)
        key = words[2].strip('"')
        return _text((m or {}).get(key, "")) if isinstance(m, dict) else ""
    if len(words) == 2 and words[0] in ("upper", "lower"):
        v = _text(_field(words[1], obj))
        return v.upper() if words[0] == "upper" else v.lower()
    raise UsageError(f"template: unsupported action {{{{{' '.join(words)}}}}}")


def cmd_ls(args) -> int:
    from ..volumes.store import VolumeStore

    flt = _filters(args.filter)
    cache: list = []

    def used():
        if not cache:
            cache.append(_used_names(args))
        return cache[0]

    root = _root(args)
    recs = [r for r in VolumeStore(root).list() if _match(r, flt, used)]
    if args.quiet:
        sys.stdout.write("".join(r["Name"] + "\n" for r in recs))
        return 0
    fmt = args.format
    if fmt in (None, "", "table"):
        rows = [("DRIVER", "VOLUME NAME")] + [(r["Driver"], r["Name"]) for r in recs]
        w = max(len(r[0]) for r in rows)
        sys.stdout.write("".join(f"{a.ljust(w)}   {b}\n" for a, b in rows))
        return 0
    import os

    def ls_obj(r):
        labels = r.get("Labels") or {}
        return {"Name": r["Name"], "Driver": r["Driver"], "Scope": r.get("Scope", "local"),
                "Mountpoint": os.path.join(root, "volumes", r["Name"], "_data")
                if r["Driver"] == "local" else "",
                "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                "Links": "N/A", "Size": "N/A", "Availability": "N/A", "Group": "N/A"}

    if fmt == "json":
        from ..jsonlean import dumps

        sys.stdout.write("".join(dumps(ls_obj(r)) + "\n" for r in recs))
        return 0
    header = fmt.startswith("table ")
    if header:
        fmt = fmt[6:]
        sys.stdout.write(render(fmt, {k: k.upper() for k in ls_obj(
            {"Name": "", "Driver": ""})}) + "\n")
    sys.stdout.write("".join(render(fmt, ls_obj(r)) + "\n" for r in recs))
    return 0


def cmd_inspect(args) -> int:
    from ..engine.volumes import inspect_volume, store
    from ..jsonlean import dumps_indented
    from .common import engine_from_args

    engine = engine_from_args(args)
    vs = store(engine)
    out, code = [], 0
    for name in args.names:
        rec = vs.load(name) if name else None
        if rec is None:
            sys.stderr.write(f"Error: no such volume: {name}\n")
            code = 1
            continue
        out.append(inspect_volume(engine, rec))
    if args.format:
        for o in out:
            print(render(args.format, o))
    else:
        print(dumps_indented(out, 4))
    return code


def cmd_rm(args) -> int:
    from ..engine.volumes import remove_volume
    from ..errors import PyrtError
    from .common import engine_from_args

    engine = engine_from_args(args)
    code = 0
    for name in args.names:
        try:
            remove_volume(engine, name, force=args.force)
            print(name)
        except PyrtError as e:
            sys.stderr.write(f"Error: {str(e).splitlines()[0]}\n")
            code = 1
    return code


def cmd_prune(args) -> int:
    from ..engine.volumes import prune
    from .common import engine_from_args
    from .prune_filter import PruneFilter

    match = PruneFilter.parse(args.filter, volumes=True)  # label only, as docker's
    engine = engine_from_args(args)
    removed = prune(engine, all_volumes=args.all, match=match.matches if match else None)
    if removed:
        print("Deleted Volumes:")
        for n in removed:
            print(n)
        print()
    print("Total reclaimed space: 0B")
    return 0
