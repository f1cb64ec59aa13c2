"""``pyrt network``: create, ls, inspect, rm, prune, connect, disconnect (docker's
flags, columns and exit codes).

Declared as a ``pyrt.commands`` entry point; the builder only uses argparse.  The
commands go through the ``pyrt_network_*`` hooks of the engine's plugin manager (connect
and disconnect through the engine's methods, which hold the container's lock and keep
its record and config), so they act on whichever network backend the host chose, not
only this one.
"""
from __future__ import annotations

import sys


def add_network(cmd) -> None:
    net = cmd("network", "Manage networks (create, ls, inspect, rm, prune, connect, disconnect)", None)
    sub = net.add_subparsers(dest="network_command", metavar="COMMAND", parser_class=type(net))

    def sp(name, help, func, aliases=()):
        p = sub.add_parser(name, help=help, description=help, aliases=list(aliases))
        p.set_defaults(func=func)
        return p

    c = sp("create", "Create a network", cmd_create)
    c.add_argument("--driver", "-d", default="bridge", help="driver (bridge)")
    c.add_argument("--subnet", help="subnet in CIDR form (default: a free one of the pool)")
    c.add_argument("--gateway", help="the gateway's address (default: the subnet's first)")
    c.add_argument("--ip-range", help="hand out addresses from this sub-range only")
    c.add_argument("--internal", action="store_true", help="no access to or from outside")
    c.add_argument("--ipv6", action="store_true", help="an IPv6 subnet too (a ULA /64)")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--opt", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="driver options (mtu=N)")
    c.add_argument("name", metavar="NETWORK")

    ls = sp("ls", "List networks", cmd_ls, aliases=("list",))
    ls.add_argument("--quiet", "-q", action="store_true", help="only the ids")
    ls.add_argument("--filter", "-f", action="append", default=[], metavar="KEY=VALUE",
                    help="name=, id=, driver=, label=KEY[=VALUE]")
    ls.add_argument("--no-trunc", action="store_true", help="full ids")
    ls.add_argument("--format", help="a template of {{.ID}} {{.Name}} {{.Driver}} {{.Scope}} "
                                     "{{.Internal}} {{.IPv6}} {{.CreatedAt}} {{.Labels}}, or json")

    i = sp("inspect", "Show networks in detail (JSON)", cmd_inspect)
    i.add_argument("--format", "-f", help="a Go template over each network ({{.Id}}, "
                                          "{{json .IPAM}}); default: the JSON array")
    i.add_argument("names", nargs="+", metavar="NETWORK")

    r = sp("rm", "Remove networks", cmd_rm, aliases=("remove",))
    r.add_argument("--force", "-f", action="store_true", help="no error for missing networks")
    r.add_argument("names", nargs="+", metavar="NETWORK")

    p = sp("prune", "Remove the networks no container uses", cmd_prune)
    p.add_argument("--force", "-f", action="store_true", help="do not ask (pyrt never asks)")
    p.add_argument("--all", "-a", action="store_true",
                   help="the default network too when unused (its bridge and firewall table: "
                        "before a store is deleted; pyrt's own flag)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="label=KEY[=VALUE]")

    co = sp("connect", "Connect a running container to a network", cmd_connect)
    co.add_argument("--alias", action="append", default=[], help="another name on this network")
    co.add_argument("--ip", help="IPv4 address")
    co.add_argument("--ip6", help="IPv6 address")
    co.add_argument("network", metavar="NETWORK")
    co.add_argument("container", metavar="CONTAINER")

    d = sp("disconnect", "Disconnect a container from a network", cmd_disconnect)
    d.add_argument("--force", "-f", action="store_true")
    d.add_argument("network", metavar="NETWORK")
    d.add_argument("container", metavar="CONTAINER")
    net.set_defaults(func=lambda a: (net.print_help(), 0)[1])


# -- helpers ---------------------------------------------------------------------------

def _engine(args):
    from pyrt_core.api import engine_from_args

    return engine_from_args(args)


def _hook(engine, hook: str, /, **kw):
    """Call the hook ``pyrt_network_<hook>`` (positional-only: ``name`` is a hook's
    argument)."""
    from pyrt_core.api import UsageError

    out = getattr(engine.pm.hook, f"pyrt_network_{hook}")(
        root=engine.settings.root, runroot=engine.settings.runroot, **kw)
    if out is None:
        raise UsageError("no network backend is active (install pyrt-network or pyrt-network-cni, "
                         "or check [network] backend / PYRT_NETWORK_BACKEND)")
    return out


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from pyrt_core.api import UsageError

    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        out[k] = v
    return out


def _find(networks: list[dict], ref: str) -> dict | None:
    for n in networks:
        if n["Name"] == ref or n["Id"] == ref:
            return n
    found = [n for n in networks if n["Id"].startswith(ref)]
    return found[0] if len(found) == 1 else None


def _matches(n: dict, filters: list[str]) -> bool:
    from pyrt_core.api import UsageError

    by: dict[str, list[str]] = {}
    for f in filters:
        k, sep, v = f.partition("=")
        if not sep or k not in ("name", "id", "driver", "label", "scope", "type"):
            raise UsageError(f"invalid filter {f!r} (name=, id=, driver=, label=, scope=, type=)")
        by.setdefault(k, []).append(v)

    def label_ok(v: str) -> bool:
        lk, sep, lv = v.partition("=")
        return lk in n.get("Labels", {}) and (not sep or n["Labels"][lk] == lv)

    checks = {
        "name": lambda v: v in n["Name"],
        "id": lambda v: n["Id"].startswith(v),
        "driver": lambda v: n["Driver"] == v,
        "scope": lambda v: n.get("Scope") == v,
        "type": lambda v: (v == "builtin") == (n["Name"] == "bridge"),
        "label": label_ok,
    }
    return all(any(checks[k](v) for v in vs) if k != "label" else all(checks[k](v) for v in vs)
               for k, vs in by.items())


#: ``network ls``'s fields and their column names (docker's networkContext)
LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
              "Internal": "INTERNAL", "IPv6": "IPV6", "CreatedAt": "CREATED AT",
              "Labels": "LABELS"}


# -- the commands ----------------------------------------------------------------------

def cmd_create(args) -> int:
    from pyrt_core.api import NetworkCreate

    engine = _engine(args)
    req = NetworkCreate(name=args.name, driver=args.driver, subnet=args.subnet,
                        gateway=args.gateway, ip_range=args.ip_range, internal=args.internal,
                        ipv6=args.ipv6, labels=_pairs(args.label, "label"),
                        options=_pairs(args.opt, "option"))
    net = _hook(engine, "create", request=req)
    print(net["Id"])
    return 0


def cmd_ls(args) -> int:
    from pyrt_core.api import check_format, print_rows

    if args.format and args.format.strip() != "table":
        check_format(args.format)  # a bad template: one line, exit 125
    engine = _engine(args)
    nets = [n for n in _hook(engine, "list") if _matches(n, args.filter)]
    rows = [{"ID": n["Id"] if args.no_trunc else n["Id"][:12], "Name": n["Name"],
             "Driver": n["Driver"], "Scope": n.get("Scope", "local"),
             "Internal": str(n.get("Internal", False)).lower(),
             "IPv6": str(n.get("EnableIPv6", False)).lower(), "CreatedAt": n.get("Created", ""),
             "Labels": ",".join(f"{k}={v}" for k, v in n.get("Labels", {}).items())} for n in nets]
    if args.quiet:
        for r in rows:
            print(r["ID"])
        return 0
    if args.format and args.format.strip() != "table":
        print_rows(args.format, rows, LS_HEADERS)  # docker's: json lines, a template, a table
        return 0
    w = max([len(r["Name"]) for r in rows] + [4]) + 3
    idw = (64 if args.no_trunc else 12) + 3
    print(f"{'NETWORK ID':<{idw}}{'NAME':<{w}}{'DRIVER':<10}SCOPE")
    for r in rows:
        print(f"{r['ID']:<{idw}}{r['Name']:<{w}}{r['Driver']:<10}{r['Scope']}")
    return 0


def cmd_inspect(args) -> int:
    from pyrt_core.api import check_format, print_objects

    if args.format and args.format != "json":
        check_format(args.format)  # a bad template: one line, exit 125
    engine = _engine(args)
    nets = _hook(engine, "list")
    out, rc = [], 0
    for ref in args.names:
        n = _find(nets, ref)
        if n is None:
            print(f"Error: No such network: {ref}", file=sys.stderr)
            rc = 1
        else:
            out.append(n)
    # docker's: an indented JSON array, or -f's template once per network
    print_objects(None if args.format in (None, "", "json") else args.format, out)
    return rc


#: docker's pre-defined networks: never removed by `network rm` (docker: "bridge is a
#: pre-defined network and cannot be removed", exit 1)
PREDEFINED = ("bridge", "host", "none")


def cmd_rm(args) -> int:
    from pyrt_core.api import NotFoundError, PyrtError

    engine = _engine(args)
    nets = _hook(engine, "list")
    rc = 0
    for ref in args.names:
        n = _find(nets, ref)
        name = n["Name"] if n is not None else ref
        if name in PREDEFINED:  # even with -f, as docker
            print(f"Error response from daemon: {name} is a pre-defined network and cannot be "
                  "removed", file=sys.stderr)
            rc = 1
            continue
        try:
            if n is None:
                raise NotFoundError(f"network {ref} not found")
            _hook(engine, "remove", name=n["Name"])
            print(ref)
        except NotFoundError as e:
            if not args.force:
                print(f"Error response from daemon: {e}", file=sys.stderr)
                rc = 1
        except PyrtError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            rc = 1
    return rc


def cmd_prune(args) -> int:
    from pyrt_core.api import ConflictError

    engine = _engine(args)
    gone = []
    nets = _hook(engine, "list")
    # the default network last: a store's table goes with its last network
    for n in sorted(nets, key=lambda n: n["Name"] == "bridge"):
        if n.get("Containers") or (n["Name"] in PREDEFINED and not args.all):
            continue
        if args.filter and not _matches(n, args.filter):
            continue
        try:
            _hook(engine, "remove", name=n["Name"])
            gone.append(n["Name"])
        except ConflictError:
            pass
    if gone:
        print("Deleted Networks:")
        print("\n".join(gone))
    return 0


def cmd_connect(args) -> int:
    _engine(args).network_connect(args.container, args.network, aliases=tuple(args.alias),
                                  ipv4=args.ip, ipv6=args.ip6)
    return 0


def cmd_disconnect(args) -> int:
    _engine(args).network_disconnect(args.container, args.network, force=args.force)
    return 0
