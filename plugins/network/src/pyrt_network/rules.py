"""The nftables commands of pyrt-network, built as libnftables JSON (pure functions).

Everything lives in one table of pyrt's own, ``inet pyrt``; nothing here names another
table and nothing flushes the ruleset, so docker's and podman's tables stay untouched.
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
TABLE = "pyrt"
_T = {"family": FAMILY, "table": TABLE}


def _m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key):
    return {"meta": {"key": key}}


def _payload(proto, field):
    return {"payload": {"protocol": proto, "field": field}}


def _prefix(cidr: str):
    addr, _, n = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(n)}}


def _rule(chain: str, *expr) -> dict:
    return {"add": {"rule": dict(_T, chain=chain, expr=list(expr))}}


def table_commands() -> list[dict]:
    """The table, its sets, maps and base chains with their fixed rules: one
    transaction, run when the table does not exist yet."""
    ports_lookup = [_m({"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
                    {"vmap": {"key": {"concat": [_meta("l4proto"), _payload("th", "dport")]},
                              "data": "@ports"}}]
    return [
        {"add": {"table": {"family": FAMILY, "name": TABLE}}},
        {"add": {"set": dict(_T, name="bridges", type="ifname")}},
        {"add": {"set": dict(_T, name="nat4", type="ipv4_addr", flags=["interval"])}},
        {"add": {"set": dict(_T, name="nat6", type="ipv6_addr", flags=["interval"])}},
        {"add": {"map": dict(_T, name="ports", type=["inet_proto", "inet_service"], map="verdict")}},
        {"add": {"map": dict(_T, name="fwd_in", type="ifname", map="verdict")}},
        {"add": {"map": dict(_T, name="fwd_out", type="ifname", map="verdict")}},
        {"add": {"chain": dict(_T, name="prerouting", type="nat", hook="prerouting", prio=-100,
                               policy="accept")}},
        {"add": {"chain": dict(_T, name="output", type="nat", hook="output", prio=-100,
                               policy="accept")}},
        {"add": {"chain": dict(_T, name="postrouting", type="nat", hook="postrouting", prio=100,
                               policy="accept")}},
        {"add": {"chain": dict(_T, name="forward", type="filter", hook="forward", prio=0,
                               policy="accept")}},
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
        # hairpin: a container reaching a published port through a host address
        _rule("postrouting", _m({"ct": {"key": "status"}}, "dnat", "in"),
              _m(_meta("iifname"), "@bridges"), {"masquerade": None}),
        _rule("forward", _m({"ct": {"key": "state"}}, ["established", "related"], "in"),
              {"accept": None}),
        _rule("forward", _m({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None}),
        _rule("forward", {"vmap": {"key": _meta("iifname"), "data": "@fwd_in"}}),
        _rule("forward", {"vmap": {"key": _meta("oifname"), "data": "@fwd_out"}}),
    ]


def network_chains(net_id: str) -> tuple[str, str]:
    """A network's chains: traffic in from its bridge, out to it."""
    return f"n-{net_id[:24]}-i", f"n-{net_id[:24]}-o"


def list_fwd_in(table: str = TABLE) -> list[dict]:
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


def network_commands(net_id: str, bridge: str, subnets: list[str], internal: bool) -> list[dict]:
    """A network's chains and set elements (idempotent: its chains are flushed and
    written again, so running it twice leaves one copy)."""
    ci, co = f"n-{net_id[:24]}-i", f"n-{net_id[:24]}-o"
    cmds: list[dict] = [
        {"add": {"chain": dict(_T, name=ci)}}, {"flush": {"chain": dict(_T, name=ci)}},
        {"add": {"chain": dict(_T, name=co)}}, {"flush": {"chain": dict(_T, name=co)}},
        {"add": {"element": dict(_T, name="bridges", elem=[bridge])}},
    ]
    if internal:
        # no way out, no way in: only the bridge itself
        cmds.append(_rule(ci, _m(_meta("oifname"), bridge, "!="), {"drop": None}))
        cmds.append(_rule(co, _m(_meta("iifname"), bridge, "!="), {"drop": None}))
    else:
        # isolation: not to another of pyrt's bridges
        cmds.append(_rule(ci, _m(_meta("oifname"), "@bridges"),
                          _m(_meta("oifname"), bridge, "!="), {"drop": None}))
        v4 = [_prefix(s) for s in subnets if ":" not in s]
        v6 = [_prefix(s) for s in subnets if ":" in s]
        if v4:
            cmds.append({"add": {"element": dict(_T, name="nat4", elem=v4)}})
        if v6:
            cmds.append({"add": {"element": dict(_T, name="nat6", elem=v6)}})
    cmds += [
        {"add": {"element": dict(_T, name="fwd_in", elem=[[bridge, {"jump": {"target": ci}}]])}},
        {"add": {"element": dict(_T, name="fwd_out", elem=[[bridge, {"jump": {"target": co}}]])}},
    ]
    return cmds


def network_delete_commands(net_id: str, bridge: str, subnets: list[str], internal: bool) -> list[dict]:
    """The reverse of :func:`network_commands` (each one alone: a missing piece must
    not keep the others)."""
    ci, co = f"n-{net_id[:24]}-i", f"n-{net_id[:24]}-o"
    cmds: list[dict] = [
        {"delete": {"element": dict(_T, name="fwd_in", elem=[bridge])}},
        {"delete": {"element": dict(_T, name="fwd_out", elem=[bridge])}},
        {"delete": {"element": dict(_T, name="bridges", elem=[bridge])}},
        {"delete": {"chain": dict(_T, name=ci)}},
        {"delete": {"chain": dict(_T, name=co)}},
    ]
    if not internal:
        for s in subnets:
            cmds.append({"delete": {"element": dict(_T, name="nat6" if ":" in s else "nat4",
                                                      elem=[_prefix(s)])}})
    return cmds


def container_commands(chain: str, ports: list[dict]) -> list[dict]:
    """A container's port chain: for each published port ``{"protocol", "host_ip",
    "host_port", "container_ip", "container_port"}`` a DNAT rule, and the ``ports``
    map's element that jumps there."""
    cmds: list[dict] = [{"add": {"chain": dict(_T, name=chain)}}, {"flush": {"chain": dict(_T, name=chain)}}]
    elems = []
    for p in ports:
        expr = [_m(_meta("nfproto"), "ipv4")]
        if p.get("host_ip"):
            expr.append(_m(_payload("ip", "daddr"), p["host_ip"]))
        expr += [_m(_meta("l4proto"), p["protocol"]),
                 _m(_payload("th", "dport"), p["host_port"]),
                 {"dnat": {"family": "ip", "addr": p["container_ip"], "port": p["container_port"]}}]
        cmds.append(_rule(chain, *expr))
        elems.append([{"concat": [p["protocol"], p["host_port"]]}, {"jump": {"target": chain}}])
    if elems:
        cmds.append({"add": {"element": dict(_T, name="ports", elem=elems)}})
    return cmds


def container_delete_commands(chain: str, ports: list[dict]) -> list[dict]:
    """The reverse of :func:`container_commands`, each command alone."""
    cmds: list[dict] = [{"delete": {"element": dict(_T, name="ports",
                                                    elem=[{"concat": [p["protocol"], p["host_port"]]}])}}
                        for p in ports]
    cmds.append({"delete": {"chain": dict(_T, name=chain)}})
    return cmds


def list_table() -> list[dict]:
    return [{"list": {"table": {"family": FAMILY, "name": TABLE}}}]


def delete_table() -> list[dict]:
    return [{"delete": {"table": {"family": FAMILY, "name": TABLE}}}]
