"""The bridge backend's operations: networks (create, remove, list), a container's
attachments (setup, teardown, connect, disconnect), validation and recovery.

Every change runs inside one store transaction (:mod:`pyrt_network.store`): the entry
that says what a container holds is written *before* the kernel work, so a kill at any
step leaves something teardown or recovery can undo; kernel work that fails is undone
before the error is raised.  The name resolver (``pyrt_network.dns``, when installed)
is told after the transaction.
"""
from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os

from pyrt_core.api import ConflictError, NotFoundError, PyrtError, UsageError

from . import ipam, netlink, ports, rules
from .nft import NftError, nft
from .settings import ENV_POOL
from .store import Store

DEFAULT = "bridge"


# -- helpers ----------------------------------------------------------------------------

def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _dns():
    """pyrt_network.dns (name resolution on user-defined networks) when installed."""
    if importlib.util.find_spec("pyrt_network.dns") is None:
        return None
    from . import dns  # type: ignore[attr-defined]

    return dns


def _subnets(net: dict) -> list[dict]:
    return net["IPAM"]["Config"]


def _v4(net: dict) -> dict | None:
    return next((c for c in _subnets(net) if ":" not in c["Subnet"]), None)


def _v6(net: dict) -> dict | None:
    return next((c for c in _subnets(net) if ":" in c["Subnet"]), None)


def _mtu(net: dict) -> int | None:
    v = net["Options"].get("com.docker.network.driver.mtu")
    return int(v) if v else None


def _used(state: dict, name: str, key: str) -> set[str]:
    return {e["networks"][name][key] for e in state["containers"].values()
            if name in e["networks"] and e["networks"][name].get(key)}


def _taken_subnets(state: dict, skip: str | None = None) -> dict[str, str]:
    """Subnets a new network must not overlap: the host's routes (not those of pyrt's
    own bridges) and the other networks."""
    bridges = {n["private"]["bridge"] for n in state["networks"].values()}
    out = {cidr: f"a host route via {dev}" for cidr, dev in netlink.host_routes() if dev not in bridges}
    for name, n in state["networks"].items():
        if name != skip:
            for c in _subnets(n):
                out[c["Subnet"]] = f"network {name}"
    return out


def _rules_in_place(store: Store, net: dict) -> bool:
    """The network's nftables objects are there (its element in the store table's
    ``fwd_in``: see :func:`pyrt_network.rules.network_in_place`), read without a
    transaction."""
    try:
        listing = nft().run(rules.list_fwd_in(store.table))
    except PyrtError:  # no table yet (NftError), no libnftables: the full path says so
        return False
    return rules.network_in_place(listing, net["Id"], net["private"]["bridge"])


def _bring_up(store: Store, state: dict, net: dict, fresh: bool = False) -> None:
    """The network's bridge, gateway addresses and rules, made if missing (after a
    reboot the record stays, the bridge and table do not) or adopted if there (a
    killed run's, an earlier pyrt's): the store's table, its base chains and the
    network's chains in one nftables transaction of ``add``s (see
    :func:`pyrt_network.rules.table_commands`; ``fresh``: the store had no network,
    so a table of its name is a leftover to replace).  A network that is up (the next
    container's start on it) is adopted as it is: one read of a small map instead of
    listing the whole table (every container's chain) and a transaction, so the 50th
    container's start costs what the 1st's did."""
    p = net["private"]
    addrs = [(c["Gateway"], ipaddress.ip_network(c["Subnet"]).prefixlen) for c in _subnets(net)]
    made = netlink.ensure_bridge(p["bridge"], addrs, _mtu(net))
    if made or fresh or not _rules_in_place(store, net):
        nft().run(rules.table_commands(store.table, fresh)
                  + rules.network_commands(store.table, net["Id"], p["bridge"],
                                           [c["Subnet"] for c in _subnets(net)], net["Internal"],
                                           [c["Gateway"] for c in _subnets(net)]))
    if not net["Internal"] and netlink.enable_forwarding():
        state["forwarding_enabled"] = True


def _take_down(store: Store, net: dict) -> None:
    p = net["private"]
    n = nft()
    for cmd in rules.network_delete_commands(store.table, net["Id"], p["bridge"],
                                             [c["Subnet"] for c in _subnets(net)], net["Internal"],
                                             [c["Gateway"] for c in _subnets(net)]):
        n.try_run([cmd])
    netlink.delete_link(p["bridge"])


# -- networks ---------------------------------------------------------------------------

def _new_network(store: Store, state: dict, name: str, driver: str = "bridge", subnet: str | None = None,
                 gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                 ipv6: bool = False, labels: dict | None = None, options: dict | None = None) -> dict:
    ipam.valid_network_name(name)
    if name in state["networks"]:
        raise ConflictError(f"network with name {name} already exists")
    if name in ("none", "host"):
        raise UsageError(f"{name} is a special network mode, not a name a network can take")
    if driver not in ("bridge", None, ""):
        raise UsageError(f"driver {driver!r} is not supported by pyrt-network (only bridge)")
    opts = dict(options or {})
    mtu = opts.pop("mtu", None) or opts.pop("com.docker.network.driver.mtu", None)
    unknown = [k for k in opts if not k.startswith("com.docker.network.")]
    if unknown:
        raise UsageError(f"unknown network option {unknown[0]!r} (known: mtu)")
    if mtu is not None:
        try:
            m = int(mtu)
        except ValueError:
            m = 0
        if not 68 <= m <= 65535:
            raise UsageError(f"invalid mtu {mtu!r}: 68-65535")
        opts["com.docker.network.driver.mtu"] = str(m)
    taken = _taken_subnets(state)
    configs = []
    if subnet and ":" in subnet and not ipv6:
        raise UsageError(f"subnet {subnet} is IPv6: add --ipv6")
    if subnet:
        s, gw, rng = ipam.check_subnet(subnet, gateway, ip_range, taken)
    else:
        if gateway or ip_range:
            raise UsageError("--gateway and --ip-range need --subnet")
        s = ipam.choose_subnet(ipam.parse_pools(os.environ.get(ENV_POOL)), list(taken))
        s, gw, rng = ipam.check_subnet(s, None, None, {})
    conf = {"Subnet": s, "Gateway": gw}
    if rng:
        conf["IPRange"] = rng
    configs.append(conf)
    net_id = ipam.new_id()
    if ipv6 and ":" not in s:
        s6 = ipam.ula_subnet(net_id)
        s6, gw6, _ = ipam.check_subnet(s6, None, None, taken)
        configs.append({"Subnet": s6, "Gateway": gw6})
    bridge = ipam.bridge_name(name, net_id, store.default_bridge)
    opts["com.docker.network.bridge.name"] = bridge
    return {
        "Name": name, "Id": net_id, "Created": _now(), "Scope": "local", "Driver": "bridge",
        "EnableIPv6": bool(ipv6), "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
        "Internal": bool(internal), "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Options": opts, "Labels": dict(labels or {}),
        "private": {"bridge": bridge},
    }


def create(store: Store, name: str, **kw) -> dict:
    with store.transaction() as state:
        fresh = not state["networks"]
        net = _new_network(store, state, name, **kw)
        state["networks"][name] = net
        store.save(state)
        try:
            _bring_up(store, state, net, fresh)
        except BaseException:
            _take_down(store, net)
            del state["networks"][name]
            store.save(state)
            raise
        return inspect_form(state, net)


def _default(state: dict, store: Store) -> dict:
    net = state["networks"].get(DEFAULT)
    if net is None:
        net = _new_network(store, state, DEFAULT)
        state["networks"][DEFAULT] = net
        store.save(state)
    return net


def _attached(state: dict, name: str) -> list[str]:
    return [cid for cid, e in state["containers"].items() if name in e["networks"]]


def remove(store: Store, name: str, runroot: str, root: str) -> bool:
    with store.transaction() as state:
        net = _lookup(state, name)
        users = _attached(state, net["Name"])
        if users:
            raise ConflictError(f"network {net['Name']} has active endpoints (containers "
                                f"{', '.join(c[:12] for c in users)})")
        _take_down(store, net)
        del state["networks"][net["Name"]]
        if not state["networks"]:
            nft().try_run(rules.delete_table(store.table))
    dns = _dns()
    if dns is not None:
        dns.network_removed(root, runroot, net["Name"])
    return True


def _lookup(state: dict, ref: str) -> dict:
    """A network by name, full id or unique id prefix (docker's rule)."""
    if ref in state["networks"]:
        return state["networks"][ref]
    found = [n for n in state["networks"].values() if n["Id"].startswith(ref)] if ref else []
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UsageError(f"network id prefix {ref!r} is ambiguous")
    raise NotFoundError(f"network {ref} not found")


def inspect_form(state: dict, net: dict) -> dict:
    out = {k: v for k, v in net.items() if k != "private"}
    conts = {}
    for cid, e in state["containers"].items():
        a = e["networks"].get(net["Name"])
        if a is None:
            continue
        conts[cid] = {"Name": e.get("name", ""), "EndpointID": a["endpoint"],
                      "MacAddress": a["mac"], "IPv4Address": f"{a['ip']}/{a['prefixlen']}",
                      "IPv6Address": f"{a['ip6']}/{a['prefixlen6']}" if a.get("ip6") else ""}
    out["Containers"] = conts
    return out


def list_networks(store: Store) -> list[dict]:
    state = store.read()
    return [inspect_form(state, n) for n in sorted(state["networks"].values(), key=lambda n: n["Created"])]


# -- containers -------------------------------------------------------------------------

def _networks_of(state: dict, store: Store, networking, create_default: bool) -> list[tuple[dict, object]]:
    out = []
    seen = set()
    for a in networking.attachments:
        if a.network == DEFAULT and DEFAULT not in state["networks"] and create_default:
            net = _default(state, store)
        elif a.network == DEFAULT and DEFAULT not in state["networks"]:
            out.append((None, a))
            continue
        else:
            net = _lookup(state, a.network)
        if net["Name"] in seen:
            raise UsageError(f"network {net['Name']} is named twice")
        seen.add(net["Name"])
        out.append((net, a))
    return out


def _check_attachment(state: dict, net: dict | None, a, container_id: str) -> None:
    """``--ip``/``--ip6``/``--mac-address`` of one attachment, before anything is made."""
    if a.mac:
        ipam.check_mac(a.mac)
    if net is None:  # the default network, not made yet: only the syntax can be checked
        if a.ipv4 or a.ipv6:
            raise UsageError("user specified IP address is supported on user defined networks only")
        return
    if (a.ipv4 or a.ipv6) and net["Name"] == DEFAULT:
        raise UsageError("user specified IP address is supported on user defined networks only")
    if a.ipv4:
        c = _v4(net)
        used = {ip for ip in _used(state, net["Name"], "ip")} - _own(state, container_id, net, "ip")
        ipam.allocate(c["Subnet"], c["Gateway"], c.get("IPRange"), used, wanted=a.ipv4)
    if a.ipv6:
        c = _v6(net)
        if c is None:
            raise UsageError(f"network {net['Name']} has no IPv6 subnet (create it with --ipv6)")
        used = _used(state, net["Name"], "ip6") - _own(state, container_id, net, "ip6")
        ipam.allocate(c["Subnet"], c["Gateway"], None, used, wanted=a.ipv6)


def _own(state: dict, cid: str, net: dict, key: str) -> set[str]:
    e = state["containers"].get(cid)
    v = e and e["networks"].get(net["Name"], {}).get(key)
    return {v} if v else set()


def validate(store: Store, networking) -> bool:
    if networking.mode != "networks":
        return True  # none, host, container:NAME: nothing of this plugin's to check
    state = store.read()
    pairs = _networks_of(state, store, networking, create_default=False)
    for net, a in pairs:
        _check_attachment(state, net, a, "")
    seen: list[tuple[str, str, int]] = []
    for p in networking.ports:
        m = p.to_dict()
        _check_port_family(m, pairs[0][0] if pairs else None)
        if m["host_port"] and not m["host_port_end"]:
            for proto, hip, port in seen:  # one port on two host addresses is fine
                if (proto, port) == (m["protocol"], m["host_port"]) and (
                        hip == m["host_ip"] or not hip or not m["host_ip"]):
                    raise UsageError(f"host port {m['host_port']}/{m['protocol']} is published twice")
            seen.append((m["protocol"], m["host_ip"], m["host_port"]))
            ports.choose(m, state["ports"], "")
    return True


def _check_port_family(m: dict, net: dict | None) -> None:
    """A published port's host address against the network its rules go to: an IPv6
    one needs the container to have an IPv6 address there; IPv6 loopback cannot be
    forwarded by the kernel (no ``route_localnet`` for IPv6: docker answers ``[::1]``
    with its docker-proxy process, which pyrt does not run)."""
    hip = m.get("host_ip") or ""
    if ":" not in hip:
        return
    if ipaddress.ip_address(hip).is_loopback:
        raise UsageError(f"cannot publish a port on {hip}: the kernel does not forward IPv6 "
                         "loopback traffic to a container (pyrt runs no proxy process); "
                         "publish on the host's IPv6 address or on [::]")
    if net is None or _v6(net) is None:
        name = net["Name"] if net is not None else DEFAULT
        raise UsageError(f"cannot publish a port on {hip}: network {name} has no IPv6 "
                         "subnet (create one with --ipv6)")


def _alloc(state: dict, net: dict, a, cid: str, index: int, networking) -> dict:
    c4 = _v4(net)
    used = _used(state, net["Name"], "ip")
    ip = ipam.allocate(c4["Subnet"], c4["Gateway"], c4.get("IPRange"), used, wanted=a.ipv4)
    att = {"ip": ip, "prefixlen": ipaddress.ip_network(c4["Subnet"]).prefixlen,
           "gateway": c4["Gateway"], "mac": ipam.check_mac(a.mac) if a.mac else ipam.mac_for(ip),
           "veth": ipam.veth_name(cid, net["Id"]), "ifname": f"eth{index}",
           "aliases": list(a.aliases), "endpoint": ipam.new_id(), "network_id": net["Id"]}
    c6 = _v6(net)
    if c6 is not None:
        ip6 = ipam.allocate(c6["Subnet"], c6["Gateway"], None, _used(state, net["Name"], "ip6"),
                            wanted=a.ipv6)
        att.update(ip6=ip6, prefixlen6=ipaddress.ip_network(c6["Subnet"]).prefixlen,
                   gateway6=c6["Gateway"])
    return att


def _plumb(store: Store, state: dict, net: dict, att: dict, netns: str, default_route: bool,
           fresh: bool = False) -> None:
    _bring_up(store, state, net, fresh)
    addrs = [(att["ip"], att["prefixlen"])]
    routes = []
    if default_route and not net["Internal"]:
        routes.append(att["gateway"])
    if att.get("ip6"):
        addrs.append((att["ip6"], att["prefixlen6"]))
        if default_route and not net["Internal"]:
            routes.append(att["gateway6"])
    netlink.delete_link(att["veth"])  # a leftover of a killed start
    netlink.attach(netns, att["veth"], net["private"]["bridge"], att["ifname"], addrs, att["mac"],
                   _mtu(net), routes)


def _undo(store: Store, state: dict, cid: str, entry: dict) -> None:
    """Remove what ``entry`` says the container holds (each piece alone; what is
    already gone is skipped) and release its addresses and ports."""
    n = None
    try:
        # the chain exists only with published ports (setup): without, no libnftables
        n = nft() if entry.get("chain") and entry.get("ports") else None
    except PyrtError:
        pass
    if n is not None:
        for cmd in rules.container_delete_commands(store.table, entry["chain"], entry.get("ports", [])):
            n.try_run([cmd])
    for att in entry["networks"].values():
        netlink.delete_link(att["veth"])
    for k in [k for k, v in state["ports"].items() if v == cid]:
        del state["ports"][k]
    state["containers"].pop(cid, None)


def _publish(store: Store, state: dict, cid: str, entry: dict) -> None:
    """The container's port chain and its ``ports`` map elements.  An element for one of
    its host ports that jumps elsewhere can only be a leftover (the store says the port
    is free: a killed run, a lost state file): it is dropped and the rules tried again,
    instead of failing with "File exists"."""
    cmds = rules.container_commands(store.table, entry["chain"], entry["ports"])
    try:
        nft().run(cmds)
        return
    except NftError:
        if not _drop_stale_ports(store, state, cid, entry):
            raise
    nft().run(cmds)


def _drop_stale_ports(store: Store, state: dict, cid: str, entry: dict) -> bool:
    """Delete the ``ports`` map elements for ``entry``'s host ports that jump to another
    chain than its own and belong to no container of the store; True when any was."""
    mine = {(p["protocol"], int(p["host_port"])) for p in entry["ports"]}
    listing = nft().run([{"list": {"map": {"family": rules.FAMILY, "table": store.table,
                                            "name": "ports"}}}]) or {}
    stale = []
    for item in listing.get("nftables", []):
        for elem in (item.get("map") or {}).get("elem", []):
            key, verdict = elem[0], elem[1]
            k = key.get("concat") if isinstance(key, dict) else None
            target = (verdict.get("jump") or {}).get("target") if isinstance(verdict, dict) else None
            if not k or len(k) != 2 or (k[0], int(k[1])) not in mine or target == entry["chain"]:
                continue
            if state["ports"].get(ports.key(k[0], int(k[1])), cid) != cid:
                continue  # another live container's (cannot be: the store checked)
            stale.append({"concat": [k[0], int(k[1])]})
    for k in stale:
        nft().try_run([{"delete": {"element": {"family": rules.FAMILY, "table": store.table,
                                               "name": "ports", "elem": [k]}}}])
    return bool(stale)


def _names(networking, cid: str, att: dict) -> list[str]:
    names = [networking.name] if networking.name else []
    names += [x for x in att["aliases"] if x not in names]
    if networking.hostname and networking.hostname not in names:
        names.append(networking.hostname)
    names.append(cid[:12])
    return names


def _record(state: dict, cid: str, entry: dict, dns_servers: list[str]) -> dict:
    nets = {}
    for name, att in entry["networks"].items():
        nets[name] = {"IPAddress": att["ip"], "IPPrefixLen": att["prefixlen"], "Gateway": att["gateway"],
                      "MacAddress": att["mac"], "GlobalIPv6Address": att.get("ip6", ""),
                      "GlobalIPv6PrefixLen": att.get("prefixlen6", 0), "IPv6Gateway": att.get("gateway6", ""),
                      "Aliases": list(att["aliases"]), "NetworkID": att["network_id"],
                      "EndpointID": att["endpoint"], "DNSNames": list(att.get("names", []))}
    return {"networks": nets,
            "ports": [{k: p[k] for k in ("container_port", "protocol", "host_ip", "host_port")}
                      for p in entry.get("ports", [])],
            "dns_servers": dns_servers, "dns_search": [],
            "private": {"backend": "bridge", "chain": entry.get("chain"),
                        "veths": [a["veth"] for a in entry["networks"].values()]}}


def setup(store: Store, cid: str, netns: str, networking, root: str, runroot: str) -> dict:
    if networking.mode != "networks":
        if netns:
            netlink.loopback_up(netns)
        return {"networks": {}, "ports": [], "dns_servers": [], "dns_search": [], "private": {}}
    with store.transaction() as state:
        old = state["containers"].get(cid)
        if old is not None:  # a start after a crash that recovery did not see yet
            _undo(store, state, cid, old)
        fresh = not state["networks"]  # a table of the store's name is a leftover
        pairs = _networks_of(state, store, networking, create_default=True)
        if not pairs:
            raise UsageError("no network to attach the container to")
        for net, a in pairs:
            _check_attachment(state, net, a, cid)
        entry: dict = {"name": networking.name, "netns": netns, "networks": {}, "ports": [],
                       "chain": ipam.chain_name(cid)}
        for i, (net, a) in enumerate(pairs):
            att = _alloc(state, net, a, cid, i, networking)
            att["names"] = _names(networking, cid, att) if net["Name"] != DEFAULT else []
            entry["networks"][net["Name"]] = att
        # published ports go to the addresses on the first network
        entry["ports_network"] = pairs[0][0]["Name"]
        first = entry["networks"][entry["ports_network"]]
        for p in networking.ports:
            m = p.to_dict()
            _check_port_family(m, pairs[0][0])
            hp = ports.choose(m, state["ports"], cid)
            state["ports"][ports.key(m["protocol"], hp)] = cid
            entry["ports"].append({"container_port": m["container_port"], "protocol": m["protocol"],
                                   "host_ip": m["host_ip"], "host_port": hp,
                                   "container_ip": first["ip"],
                                   "container_ip6": first.get("ip6", "")})
        state["containers"][cid] = entry
        store.save(state)  # before the kernel work: a kill from here on is recoverable
        try:
            for i, (net, _a) in enumerate(pairs):
                _plumb(store, state, net, entry["networks"][net["Name"]], netns, default_route=(i == 0),
                       fresh=fresh and i == 0)
            if entry["ports"]:
                _publish(store, state, cid, entry)
        except BaseException:
            _undo(store, state, cid, entry)
            store.save(state)
            raise
        nets = {net["Name"]: net for net, _ in pairs}
    servers = _dns_attach(root, runroot, cid, entry, nets)
    return _record(state, cid, entry, servers)  # (from the entry: no second transaction)


def _dns_attach(root, runroot, cid, entry, nets: dict) -> list[str]:
    dns = _dns()
    servers: list[str] = []
    if dns is None:
        return servers
    for name, att in entry["networks"].items():
        if name == DEFAULT:
            continue
        ips = [att["ip"]] + ([att["ip6"]] if att.get("ip6") else [])
        for s in dns.attach(root, runroot, nets[name], cid, ips, att["names"]):
            if s not in servers:
                servers.append(s)
    return servers


def teardown(store: Store, cid: str, record: dict | None, root: str, runroot: str) -> bool:
    with store.transaction() as state:
        entry = state["containers"].get(cid)
        if entry is None:
            if record and (record.get("private") or {}).get("veths"):
                for v in record["private"]["veths"]:
                    netlink.delete_link(v)
                ch = record["private"].get("chain")
                if ch:
                    nft_ports = [{"protocol": p["protocol"], "host_port": p["host_port"]}
                                 for p in record.get("ports", [])]
                    try:
                        for cmd in rules.container_delete_commands(store.table, ch, nft_ports):
                            nft().try_run([cmd])
                    except PyrtError:
                        pass
            return True
        _undo(store, state, cid, entry)
    dns = _dns()
    if dns is not None:
        for name in entry["networks"]:
            if name != DEFAULT:
                dns.detach(root, runroot, name, cid)
    return True


def connect(store: Store, cid: str, netns: str, networking, network: str, root: str,
            runroot: str) -> dict:
    with store.transaction() as state:
        entry = state["containers"].get(cid)
        if entry is None:
            raise NotFoundError(f"container {cid[:12]} has no network attachment of pyrt-network "
                                "(not running on a network?)")
        fresh = not state["networks"]
        net = _default(state, store) if network == DEFAULT else _lookup(state, network)
        if net["Name"] in entry["networks"]:
            raise ConflictError(f"container {cid[:12]} is already attached to network {net['Name']}")
        a = next((x for x in networking.attachments if x.network in (network, net["Name"])), None)
        if a is None:
            from pyrt_core.api import NetworkAttachment

            a = NetworkAttachment(network=net["Name"])
        _check_attachment(state, net, a, cid)
        taken = {att["ifname"] for att in entry["networks"].values()}
        index = next(i for i in range(len(taken) + 1) if f"eth{i}" not in taken)
        att = _alloc(state, net, a, cid, index, networking)
        att["names"] = _names(networking, cid, att) if net["Name"] != DEFAULT else []
        entry["networks"][net["Name"]] = att
        store.save(state)
        try:
            _plumb(store, state, net, att, netns, default_route=len(entry["networks"]) == 1,
                   fresh=fresh)
        except BaseException:
            netlink.delete_link(att["veth"])
            del entry["networks"][net["Name"]]
            store.save(state)
            raise
    servers = _dns_attach(root, runroot, cid, {"networks": {net["Name"]: att}}, {net["Name"]: net})
    with store.transaction() as state:
        return _record(state, cid, state["containers"][cid], servers)


def disconnect(store: Store, cid: str, network: str, root: str, runroot: str) -> dict:
    with store.transaction() as state:
        entry = state["containers"].get(cid)
        if entry is None:
            raise NotFoundError(f"container {cid[:12]} has no network attachment of pyrt-network")
        name = network if network in entry["networks"] else _lookup(state, network)["Name"]
        att = entry["networks"].pop(name, None)
        if att is None:
            raise NotFoundError(f"container {cid[:12]} is not connected to network {name}")
        store.save(state)
        netlink.delete_link(att["veth"])
        _retarget_ports(store, state, cid, entry, name)
    dns = _dns()
    if dns is not None and name != DEFAULT:
        dns.detach(root, runroot, name, cid)
    return _record(state, cid, entry, [])


def _retarget_ports(store: Store, state: dict, cid: str, entry: dict, gone: str) -> None:
    """After ``gone`` left a container: its published ports, which went to its address
    on ``gone``, go to its address on the first network it keeps (docker re-publishes
    on the remaining endpoint), or, with no network left, are removed and their host
    ports released."""
    if not entry.get("ports") or entry.get("ports_network", gone) != gone:
        return
    if not entry["networks"]:
        for cmd in rules.container_delete_commands(store.table, entry["chain"], entry["ports"]):
            nft().try_run([cmd])
        for k in [k for k, v in state["ports"].items() if v == cid]:
            del state["ports"][k]
        entry["ports"] = []
        entry.pop("ports_network", None)
        return
    # the first network by interface order (eth0 before eth1): the default route's
    name, att = min(entry["networks"].items(), key=lambda kv: int(kv[1]["ifname"][3:] or 0))
    for p in entry["ports"]:
        p["container_ip"], p["container_ip6"] = att["ip"], att.get("ip6", "")
    entry["ports"] = [p for p in entry["ports"] if ":" not in (p.get("host_ip") or "")
                      or p["container_ip6"]]  # an IPv6 host address needs an IPv6 address
    entry["ports_network"] = name
    nft().run(rules.container_commands(store.table, entry["chain"], entry["ports"]))
    kept = {ports.key(p["protocol"], p["host_port"]) for p in entry["ports"]}
    for k in [k for k, v in state["ports"].items() if v == cid and k not in kept]:
        del state["ports"][k]
        proto, _, port = k.partition("/")
        nft().try_run(rules.container_delete_commands(store.table, entry["chain"], [
            {"protocol": proto, "host_port": int(port)}])[:1])  # its map element, not the chain


def recover(store: Store, live: list[str], root: str, runroot: str) -> list[str]:
    lines = []
    keep = set(live)
    with store.transaction() as state:
        for cid in [c for c in state["containers"] if c not in keep]:
            entry = state["containers"][cid]
            _undo(store, state, cid, entry)
            lines.append(f"network: released {cid[:12]}'s addresses, interfaces and ports "
                         f"({', '.join(entry['networks'])})")
        live_map: dict[str, list[str]] = {}
        for cid, e in state["containers"].items():
            for name in e["networks"]:
                live_map.setdefault(name, []).append(cid)
        for name, net in state["networks"].items():
            if live_map.get(name):
                _bring_up(store, state, net)
    dns = _dns()
    if dns is not None:
        lines += dns.recover(root, runroot, {k: v for k, v in live_map.items() if k != DEFAULT})
    return lines


def prune(store: Store, root: str, runroot: str) -> list[str]:
    """Remove the user-defined networks no container uses (docker keeps the default)."""
    state = store.read()
    gone = []
    for name in list(state["networks"]):
        if name != DEFAULT and not _attached(state, name):
            try:
                remove(store, name, runroot, root)
                gone.append(name)
            except ConflictError:
                pass
    return gone
