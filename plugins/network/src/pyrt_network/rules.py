"""The nftables commands of pyrt-network, built as libnftables JSON (pure functions).

Everything lives in one table of pyrt's own per store, ``inet pyrt`` for the default
store (``/var/lib/pyrt``) and ``inet pyrt-<6 hex>`` for any other (``Store.table``:
two stores on one host never share a chain, a set or a map); nothing here names
another table and nothing flushes the ruleset, so docker's and podman's tables stay
untouched.  Every function takes that table's name first.
The base chains hold a fixed number of rules whatever the number of containers; what
varies lives in sets and maps, looked up by hash:

- ``bridges`` (set of interface names): pyrt's bridges;
- ``nat4``/``nat6`` (interval sets): subnets of the networks that masquerade outbound;
- ``ports`` (map ``l4proto . port : verdict``): a published host port jumps to the
  chain of the container that owns it, ``c-<id>``, which holds its DNAT rules;
- ``fwd_in``/``fwd_out`` (maps ``ifname : verdict``): traffic from/to a bridge jumps
  to its network's chain, ``n-<id>-i``/``n-<id>-o`` (isolation, ``--internal``).

So adding a container is: one chain, its rules, one map element per port; removing it
the reverse; the 50th container costs what the first did.
"""
from __future__ import annotations

FAMILY = "inet"
#: the default store's table (any other store: ``pyrt-<tag>``, see :mod:`pyrt_network.store`)
TABLE = "pyrt"
#: the base chains and their hooks: (name, type, hook, priority)
BASE_CHAINS = (("prerouting", "nat", "prerouting", -100), ("output", "nat", "output", -100),
               ("postrouting", "nat", "postrouting", 100), ("forward", "filter", "forward", 0),
               ("input", "filter", "input", 0))


#: host addresses of a published port that mean "every address of the family"
ANY_ADDRESS = ("0.0.0.0", "::")


def _tt(table: str) -> dict:
    return {"family": FAMILY, "table": table}


def _m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key):
    return {"meta": {"key": key}}


def _payload(proto, field):
    return {"payload": {"protocol": proto, "field": field}}


def _prefix(cidr: str):
    addr, _, n = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(n)}}


def _rule(table: str, chain: str, *expr) -> dict:
    return {"add": {"rule": dict(_tt(table), chain=chain, expr=list(expr))}}


def table_commands(table: str, fresh: bool = False) -> list[dict]:
    """The table, its sets, maps and base chains with their fixed rules, made or adopted
    in one transaction: ``add`` (not ``create``) of what may exist already, then the
    base chains flushed and written again, so running it on a table that exists (a
    second network, a killed run's leftover, an older pyrt's rules) leaves exactly one
    copy of the current rules and never fails with "File exists".

    ``fresh``: the store holds no network yet, so nothing in a table of its name can be
    its own: the table is deleted first (``add`` then ``delete``, so that a missing
    one is no error) and made anew, dropping what a killed run left in its sets."""
    _T = _tt(table)

    def _rule(chain, *expr):
        return {"add": {"rule": dict(_T, chain=chain, expr=list(expr))}}

    ports_lookup = [_m({"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
                    {"vmap": {"key": {"concat": [_meta("l4proto"), _payload("th", "dport")]},
                              "data": "@ports"}}]
    head: list[dict] = [{"add": {"table": {"family": FAMILY, "name": table}}}]
    if fresh:
        head += [{"delete": {"table": {"family": FAMILY, "name": table}}},
                 {"add": {"table": {"family": FAMILY, "name": table}}}]
    return head + [
        {"add": {"set": dict(_T, name="bridges", type="ifname")}},
        {"add": {"set": dict(_T, name="nat4", type="ipv4_addr", flags=["interval"])}},
        {"add": {"set": dict(_T, name="nat6", type="ipv6_addr", flags=["interval"])}},
        {"add": {"map": dict(_T, name="ports", type=["inet_proto", "inet_service"], map="verdict")}},
        {"add": {"map": dict(_T, name="fwd_in", type="ifname", map="verdict")}},
        {"add": {"map": dict(_T, name="fwd_out", type="ifname", map="verdict")}},
        # the networks' resolvers: each gateway, and which bridge may ask it
        {"add": {"set": dict(_T, name="gw4", type="ipv4_addr")}},
        {"add": {"set": dict(_T, name="gw6", type="ipv6_addr")}},
        {"add": {"set": dict(_T, name="dns4", type=["ifname", "ipv4_addr"])}},
        {"add": {"set": dict(_T, name="dns6", type=["ifname", "ipv6_addr"])}},
    ] + [{"add": {"chain": dict(_T, name=n, type=t, hook=h, prio=p, policy="accept")}}
         for n, t, h, p in BASE_CHAINS] + [
        {"flush": {"chain": dict(_T, name=n)}} for n, _t, _h, _p in BASE_CHAINS] + [
        # published ports: traffic to a host address, from outside and from the host
        _rule("prerouting", *ports_lookup),
        _rule("output", *ports_lookup),
        # outbound NAT of non-internal networks
        _rule("postrouting", _m(_payload("ip", "saddr"), "@nat4"),
              _m(_meta("oifname"), "@bridges", "!="), {"masquerade": None}),
        _rule("postrouting", _m(_payload("ip6", "saddr"), "@nat6"),
              _m(_meta("oifname"), "@bridges", "!="), {"masquerade": None}),
        # 127.0.0.1:PORT from the host (route_localnet on the bridge)
        _rule("postrouting", _m(_payload("ip", "saddr"), _prefix("127.0.0.0/8")),
              _m(_meta("oifname"), "@bridges"), {"masquerade": None}),
        # hairpin: a container reaching a published port through a host address (its
        # own, or another container's) is seen from its gateway, as docker's proxy
        # gives it.  Matched on the source subnet, not the input interface: with
        # br_netfilter loaded, a packet DNATed back onto the bridge it came from is
        # bridged, and its postrouting hook has no input interface
        _rule("postrouting", _m({"ct": {"key": "status"}}, "dnat", "in"),
              _m(_payload("ip", "saddr"), "@nat4"), _m(_meta("oifname"), "@bridges"),
              {"masquerade": None}),
        _rule("postrouting", _m({"ct": {"key": "status"}}, "dnat", "in"),
              _m(_payload("ip6", "saddr"), "@nat6"), _m(_meta("oifname"), "@bridges"),
              {"masquerade": None}),
        _rule("forward", _m({"ct": {"key": "state"}}, ["established", "related"], "in"),
              {"accept": None}),
        _rule("forward", _m({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None}),
        _rule("forward", {"vmap": {"key": _meta("iifname"), "data": "@fwd_in"}}),
        _rule("forward", {"vmap": {"key": _meta("oifname"), "data": "@fwd_out"}}),
        # DNS from a container to the resolver on *another* network's gateway: dropped
        # (aardvark-dns 1.4 would answer it from that network's names)
        _rule("input", _m(_meta("iifname"), "@bridges"),
              _m(_meta("l4proto"), {"set": ["tcp", "udp"]}), _m(_payload("th", "dport"), 53),
              _m(_payload("ip", "daddr"), "@gw4"),
              _m({"concat": [_meta("iifname"), _payload("ip", "daddr")]}, "@dns4", "!="),
              {"drop": None}),
        _rule("input", _m(_meta("iifname"), "@bridges"),
              _m(_meta("l4proto"), {"set": ["tcp", "udp"]}), _m(_payload("th", "dport"), 53),
              _m(_payload("ip6", "daddr"), "@gw6"),
              _m({"concat": [_meta("iifname"), _payload("ip6", "daddr")]}, "@dns6", "!="),
              {"drop": None}),
    ]


def network_chains(net_id: str) -> tuple[str, str]:
    """A network's chains: traffic in from its bridge, out to it."""
    return f"n-{net_id[:24]}-i", f"n-{net_id[:24]}-o"


def list_fwd_in(table: str) -> list[dict]:
    """The ``fwd_in`` map (one element per network: small whatever the containers)."""
    return [{"list": {"map": {"family": FAMILY, "table": table, "name": "fwd_in"}}}]


def network_in_place(listing: dict | None, net_id: str, bridge: str) -> bool:
    """Whether ``listing`` (of :func:`list_fwd_in`) holds the network's element: the
    bridge jumping to its chain.  :func:`network_commands` adds it in the same
    transaction as every other piece of the network (so with it, all are there: a
    map element's jump also keeps its chain from being deleted), and
    :func:`network_delete_commands` deletes it first."""
    target = {"jump": {"target": network_chains(net_id)[0]}}
    for item in (listing or {}).get("nftables", []):
        for elem in (item.get("map") or {}).get("elem", []):
            if isinstance(elem, list) and len(elem) == 2 and elem[0] == bridge and elem[1] == target:
                return True
    return False


def network_commands(table: str, net_id: str, bridge: str, subnets: list[str], internal: bool,
                     gateways: list[str] = ()) -> list[dict]:
    """A network's chains and set elements (idempotent: its chains are flushed and
    written again, so running it twice leaves one copy); ``gateways`` are where its
    resolver answers, asked only from its own bridge."""
    _T = _tt(table)
    ci, co = f"n-{net_id[:24]}-i", f"n-{net_id[:24]}-o"
    cmds: list[dict] = [
        {"add": {"chain": dict(_T, name=ci)}}, {"flush": {"chain": dict(_T, name=ci)}},
        {"add": {"chain": dict(_T, name=co)}}, {"flush": {"chain": dict(_T, name=co)}},
        {"add": {"element": dict(_T, name="bridges", elem=[bridge])}},
    ]
    if internal:
        # no way out, no way in: only the bridge itself
        cmds.append(_rule(table, ci, _m(_meta("oifname"), bridge, "!="), {"drop": None}))
        cmds.append(_rule(table, co, _m(_meta("iifname"), bridge, "!="), {"drop": None}))
    else:
        # isolation: not to another of pyrt's bridges
        cmds.append(_rule(table, ci, _m(_meta("oifname"), "@bridges"),
                          _m(_meta("oifname"), bridge, "!="), {"drop": None}))
        v4 = [_prefix(s) for s in subnets if ":" not in s]
        v6 = [_prefix(s) for s in subnets if ":" in s]
        if v4:
            cmds.append({"add": {"element": dict(_T, name="nat4", elem=v4)}})
        if v6:
            cmds.append({"add": {"element": dict(_T, name="nat6", elem=v6)}})
    cmds += _dns_elements("add", _T, bridge, gateways)
    cmds += [
        {"add": {"element": dict(_T, name="fwd_in", elem=[[bridge, {"jump": {"target": ci}}]])}},
        {"add": {"element": dict(_T, name="fwd_out", elem=[[bridge, {"jump": {"target": co}}]])}},
    ]
    return cmds


def _dns_elements(op: str, _T: dict, bridge: str, gateways) -> list[dict]:
    out = []
    for gw in gateways:
        v = "6" if ":" in gw else "4"
        out.append({op: {"element": dict(_T, name="gw" + v, elem=[gw])}})
        out.append({op: {"element": dict(_T, name="dns" + v, elem=[{"concat": [bridge, gw]}])}})
    return out


def network_delete_commands(table: str, net_id: str, bridge: str, subnets: list[str], internal: bool,
                            gateways: list[str] = ()) -> list[dict]:
    """The reverse of :func:`network_commands` (each one alone: a missing piece must
    not keep the others)."""
    _T = _tt(table)
    ci, co = f"n-{net_id[:24]}-i", f"n-{net_id[:24]}-o"
    cmds: list[dict] = [
        {"delete": {"element": dict(_T, name="fwd_in", elem=[bridge])}},
        {"delete": {"element": dict(_T, name="fwd_out", elem=[bridge])}},
        {"delete": {"element": dict(_T, name="bridges", elem=[bridge])}},
        {"delete": {"chain": dict(_T, name=ci)}},
        {"delete": {"chain": dict(_T, name=co)}},
    ] + _dns_elements("delete", _T, bridge, gateways)
    if not internal:
        for s in subnets:
            cmds.append({"delete": {"element": dict(_T, name="nat6" if ":" in s else "nat4",
                                                      elem=[_prefix(s)])}})
    return cmds


def container_commands(table: str, chain: str, ports: list[dict]) -> list[dict]:
    """A container's port chain: for each published port ``{"protocol", "host_ip",
    "host_port", "container_ip", "container_port"}`` (and ``container_ip6`` when the
    container has an IPv6 address on that network) a DNAT rule per address family, and
    the ``ports`` map's element that jumps there (one per protocol and host port: the
    same port on two host addresses is two rules behind one element).  A host address
    names its family; none (every address) means IPv4, and IPv6 too when the container
    has an IPv6 address (docker's)."""
    _T = _tt(table)
    cmds: list[dict] = [{"add": {"chain": dict(_T, name=chain)}}, {"flush": {"chain": dict(_T, name=chain)}}]
    elems: list = []
    for p in ports:
        hip = p.get("host_ip") or ""
        fams = []
        if ":" not in hip:
            fams.append(("ipv4", "ip", p["container_ip"]))
        if (":" in hip or not hip) and p.get("container_ip6"):
            fams.append(("ipv6", "ip6", p["container_ip6"]))
        for nfproto, l3, addr in fams:
            expr = [_m(_meta("nfproto"), nfproto)]
            if hip and hip not in ANY_ADDRESS:
                expr.append(_m(_payload(l3, "daddr"), hip))
            expr += [_m(_meta("l4proto"), p["protocol"]),
                     _m(_payload("th", "dport"), p["host_port"]),
                     {"dnat": {"family": l3, "addr": addr, "port": p["container_port"]}}]
            cmds.append(_rule(table, chain, *expr))
        e = [{"concat": [p["protocol"], p["host_port"]]}, {"jump": {"target": chain}}]
        if e not in elems:
            elems.append(e)
    if elems:
        cmds.append({"add": {"element": dict(_T, name="ports", elem=elems)}})
    return cmds


def container_delete_commands(table: str, chain: str, ports: list[dict]) -> list[dict]:
    """The reverse of :func:`container_commands`, each command alone."""
    _T = _tt(table)
    keys = []
    for p in ports:
        if (p["protocol"], p["host_port"]) not in keys:
            keys.append((p["protocol"], p["host_port"]))
    cmds: list[dict] = [{"delete": {"element": dict(_T, name="ports",
                                                    elem=[{"concat": [proto, port]}])}}
                        for proto, port in keys]
    cmds.append({"delete": {"chain": dict(_T, name=chain)}})
    return cmds


def list_table(table: str) -> list[dict]:
    return [{"list": {"table": {"family": FAMILY, "name": table}}}]


def delete_table(table: str) -> list[dict]:
    return [{"delete": {"table": {"family": FAMILY, "name": table}}}]
