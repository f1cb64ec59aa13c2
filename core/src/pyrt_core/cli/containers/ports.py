"""A container's networking as docker shows it: ``inspect``'s ``NetworkSettings`` and
``HostConfig.PortBindings``, ``ps``'s PORTS column, and ``pyrt port``.  Read from the
container's record alone (the config's networking JSON and the network record the
plugin returned at the start, kept in its state): no plugin, no netmodel."""
from __future__ import annotations

from ...errors import UsageError
from . import engine_for


def _p_port(cmd) -> None:
    p = cmd("port", "List port mappings or a specific mapping for the container", cmd_port)
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


PARSERS = {"port": _p_port}


def _networking(c) -> dict:
    from ...engine.network import networking_dict

    return networking_dict(c.config)


def _host_ip(ip: str) -> str:
    return ip or "0.0.0.0"


def _addr(ip: str, port) -> str:
    ip = _host_ip(ip)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def published(c) -> list[dict]:
    """The ports of the current run, every host port chosen (the network record's)."""
    if c.state.status not in ("running", "starting"):
        return []
    return [p for p in (c.state.network or {}).get("ports") or () if isinstance(p, dict)]


def exposed(c) -> list[str]:
    """Every port the container exposes, ``80/tcp`` (the image's are known only at -P)."""
    keys = list(c.config.expose or ())
    for p in _networking(c).get("ports") or ():
        keys.append(f"{p['container_port']}/{p.get('protocol', 'tcp')}")
    out: list[str] = []
    for k in keys:
        if k not in out:
            out.append(k)
    return out


def ports_map(c) -> dict:
    """``NetworkSettings.Ports``: ``{"80/tcp": [{"HostIp", "HostPort"}]}``, null for a
    port exposed and not published (docker's shape); {} when it does not run."""
    if c.state.status not in ("running", "starting"):
        return {}
    out: dict = {k: None for k in exposed(c)}
    for p in published(c):
        key = f"{p['container_port']}/{p.get('protocol', 'tcp')}"
        out.setdefault(key, None)
        out[key] = (out[key] or []) + [{"HostIp": _host_ip(p.get("host_ip", "")),
                                        "HostPort": str(p["host_port"])}]
    return out


def port_bindings(c) -> dict:
    """``HostConfig.PortBindings``: what was asked (``HostPort`` "" for any free port)."""
    out: dict = {}
    for p in _networking(c).get("ports") or ():
        key = f"{p['container_port']}/{p.get('protocol', 'tcp')}"
        hp = p.get("host_port") or 0
        end = p.get("host_port_end") or 0
        port = f"{hp}-{end}" if end and end > hp else (str(hp) if hp else "")
        out.setdefault(key, []).append({"HostIp": p.get("host_ip", ""), "HostPort": port})
    return out


def ports_column(c) -> str:
    """``ps``'s PORTS: ``0.0.0.0:8080->80/tcp, 53/udp`` (docker's)."""
    items = []
    for key, binds in ports_map(c).items():
        if binds is None:
            items.append(key)
        else:
            items += [f"{_addr(b['HostIp'], b['HostPort'])}->{key}" for b in binds]
    return ", ".join(items)


_FIELDS = ("IPAddress", "IPPrefixLen", "Gateway", "MacAddress", "GlobalIPv6Address",
           "GlobalIPv6PrefixLen", "IPv6Gateway")


def network_settings(engine, c) -> dict:
    """``inspect``'s ``NetworkSettings``, docker's shape: the first network's addresses
    at the top (docker's legacy fields), every network under ``Networks``."""
    from ... import netns

    net = _networking(c)
    running = c.state.status in ("running", "starting")
    record = (c.state.network or {}) if running else {}
    networks = dict(record.get("networks") or {})
    for a in net.get("attachments") or ():  # a stopped container still shows its networks
        networks.setdefault(a["network"], {})
    empty = {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
             "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": ""}
    shown = {}
    for name, n in networks.items():
        att = next((a for a in net.get("attachments") or () if a["network"] == name), {})
        entry = dict(empty, Aliases=list(att.get("aliases") or []) or None, NetworkID="",
                     EndpointID="", DNSNames=None)
        entry["IPAMConfig"] = ({"IPv4Address": att.get("ipv4") or "",
                                "IPv6Address": att.get("ipv6") or ""}
                               if att.get("ipv4") or att.get("ipv6") else None)
        entry.update({k: v for k, v in n.items() if k not in ("private",)})
        shown[name] = entry
    first = next(iter(shown.values()), {})
    path = netns.path_for(engine.settings.runroot, c.id)
    out = {"Bridge": "", "SandboxID": c.id if record else "",
           "SandboxKey": path if record and netns.is_netns(path) else "",
           "Ports": ports_map(c)}
    out.update({k: first.get(k, empty[k]) for k in _FIELDS})
    out["Networks"] = shown
    return out


def host_config(c) -> dict:
    """The networking part of ``inspect``'s ``HostConfig``."""
    net = _networking(c)
    return {"NetworkMode": c.config.network, "PortBindings": port_bindings(c),
            "PublishAllServers": bool(c.config.publish_all),
            "Dns": list(net.get("dns") or []), "DnsSearch": list(net.get("dns_search") or []),
            "DnsOptions": list(net.get("dns_options") or []),
            "ExtraHosts": list(net.get("extra_hosts") or []) or None}


def cmd_port(args) -> int:
    """docker's ``port``: every mapping (``80/tcp -> 0.0.0.0:8080``), or the host
    addresses of one private port (exit 1 when it is not published)."""
    engine = engine_for(args)
    c = engine.containers.get(args.container)
    want = None
    if args.private:
        port, slash, proto = args.private.partition("/")
        proto = proto.lower() if slash else "tcp"
        if not port.isdigit() or not 0 < int(port) <= 65535 or proto not in ("tcp", "udp", "sctp"):
            raise UsageError(f"invalid port {args.private!r}: expected PORT[/tcp|udp|sctp]")
        want = f"{int(port)}/{proto}"
    lines = []
    for key, binds in sorted(ports_map(c).items(), key=lambda kv: (int(kv[0].split("/")[0]),
                                                                    kv[0])):
        if binds is None or (want and key != want):
            continue
        for b in binds:
            addr = _addr(b["HostIp"], b["HostPort"])
            lines.append(addr if want else f"{key} -> {addr}")
    if want and not lines:  # docker's message and exit code (1, not pyrt's 125)
        import sys

        sys.stderr.write(f"Error: no public port '{want}' published for {args.container}\n")
        return 1
    for line in lines:
        print(line)
    return 0
