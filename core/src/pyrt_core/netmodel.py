"""Networking's data types: what the engine hands a network plugin (docs/networking.md).

The core owns the user's side of networking (docker's flags, their parsing and checks,
the container's network namespace, /etc/hosts and /etc/resolv.conf, ``inspect`` and
``pyrt port``); a network plugin (pyrt-network: Linux bridges, veth pairs, nftables;
pyrt-network-cni: CNI configurations) owns the host's side through the
``pyrt_network_*`` hooks (:mod:`pyrt_core.hookspecs`).  The types here are what those
hooks receive: resolved and validated, never raw flags.

Style: :class:`pyrt_core.records.Model` classes, like :mod:`pyrt_core.models` (the
engine's commands only; the OCI runtime never imports this module).  ``to_dict``/``from_dict`` give the JSON form kept
in the container's config.
"""
from __future__ import annotations

from .records import Model, asdict, field

from .errors import UsageError

#: the network a container joins when none is named and a network plugin is installed
DEFAULT_NETWORK = "bridge"
#: network modes that are not networks a plugin manages
SPECIAL_MODES = ("none", "host")
PROTOCOLS = ("tcp", "udp", "sctp")


class PortMapping(Model, frozen=True):
    """One published port: ``host_ip:host_port -> container_port/protocol``.

    ``host_ip`` "" means every host address (docker's 0.0.0.0 and ::); ``host_port`` 0
    means "any free port", chosen by the plugin when the container starts and reported
    back in the network record (``-P`` and ``-p 80``); ``host_port_end`` above
    ``host_port``: any free port of that range (docker's ``-p 8000-8010:80``)."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PortMapping":
        return cls(**{k: d[k] for k in ("container_port", "protocol", "host_ip", "host_port",
                                        "host_port_end") if k in d})


def _port_range(text: str, what: str, spec: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    try:
        first = int(lo)
        last = int(hi) if sep else first
    except ValueError:
        raise UsageError(f"invalid {what} {text!r} in port specification {spec!r}") from None
    if not (0 < first <= 65535 and 0 < last <= 65535) or last < first:
        raise UsageError(f"invalid {what} {text!r} in port specification {spec!r}: "
                         "ports are 1-65535, a range low-high")
    return list(range(first, last + 1))


def parse_publish(spec: str) -> list[PortMapping]:
    """docker's ``-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]``, ranges included
    (``8000-8010:80-90``; a host range with one container port: any free port of the
    range, as docker).  IPv6 addresses go in
    brackets (``[::1]:8080:80``)."""
    text, slash, proto = spec.partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid protocol {proto!r} in port specification {spec!r}")
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise UsageError(f"invalid port specification {spec!r}")
        host_ip, parts = text[1:end], text[end + 2:].split(":")
        if len(parts) != 2:
            raise UsageError(f"invalid port specification {spec!r}")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) == 1:
            parts = ["", parts[0]]
        elif len(parts) != 2:
            raise UsageError(f"invalid port specification {spec!r}")
    host_text, cont_text = parts
    if host_ip:
        _check_ip(host_ip, spec)
    if not cont_text:
        raise UsageError(f"no container port in port specification {spec!r}")
    cports = _port_range(cont_text, "container port", spec)
    if not host_text:
        return [PortMapping(p, proto, host_ip, 0) for p in cports]
    hports = _port_range(host_text, "host port", spec)
    if len(cports) == 1 and len(hports) > 1:
        return [PortMapping(cports[0], proto, host_ip, hports[0], hports[-1])]
    if len(hports) != len(cports):
        raise UsageError(f"invalid port specification {spec!r}: the host and container "
                         "ranges differ in length")
    return [PortMapping(c, proto, host_ip, h) for h, c in zip(hports, cports)]


def parse_expose(spec: str) -> list[tuple[int, str]]:
    """``--expose PORT[-PORT][/PROTO]`` and an image's ``ExposedPorts`` keys (``80/tcp``)."""
    text, slash, proto = spec.partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid protocol {proto!r} in {spec!r}")
    return [(p, proto) for p in _port_range(text, "port", spec)]


def _check_ip(text: str, where: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise UsageError(f"invalid IP address {text!r} in {where!r}") from None


class NetworkAttachment(Model, frozen=True):
    """The container on one network: its name there, a fixed address or MAC if asked
    (``--ip``, ``--mac-address``), its extra names (``--network-alias``)."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4: str | None = None
    ipv6: str | None = None
    mac: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkAttachment":
        return cls(network=d["network"], aliases=tuple(d.get("aliases") or ()),
                   ipv4=d.get("ipv4"), ipv6=d.get("ipv6"), mac=d.get("mac"))


class ContainerNetworking(Model):
    """A container's resolved networking, as the engine hands it to the plugin.

    ``mode``: ``"none"`` (loopback only), ``"host"``, ``"container"`` (``container`` then
    holds the id whose network namespace it shares) or ``"networks"`` (``attachments``
    in order: the first is the container's ``eth0`` and its default route).
    ``hostname``/``name`` are what other containers resolve on user-defined networks
    (with each attachment's aliases and the short id)."""

    mode: str = "none"
    attachments: list[NetworkAttachment] = field(factory=list)
    ports: list[PortMapping] = field(factory=list)
    container: str | None = None
    hostname: str = ""
    name: str = ""
    dns: list[str] = field(factory=list)
    dns_search: list[str] = field(factory=list)
    dns_options: list[str] = field(factory=list)
    extra_hosts: list[str] = field(factory=list)  # "name:ip"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "attachments": [a.to_dict() for a in self.attachments],
                "ports": [p.to_dict() for p in self.ports], "container": self.container,
                "hostname": self.hostname, "name": self.name, "dns": list(self.dns),
                "dns_search": list(self.dns_search), "dns_options": list(self.dns_options),
                "extra_hosts": list(self.extra_hosts)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "ContainerNetworking":
        d = d or {}
        return cls(mode=d.get("mode", "none"),
                   attachments=[NetworkAttachment.from_dict(a) for a in d.get("attachments") or ()],
                   ports=[PortMapping.from_dict(p) for p in d.get("ports") or ()],
                   container=d.get("container"), hostname=d.get("hostname", ""),
                   name=d.get("name", ""), dns=list(d.get("dns") or ()),
                   dns_search=list(d.get("dns_search") or ()),
                   dns_options=list(d.get("dns_options") or ()),
                   extra_hosts=list(d.get("extra_hosts") or ()))

    @property
    def networks(self) -> list[str]:
        return [a.network for a in self.attachments]


class NetworkCreate(Model):
    """``pyrt network create`` resolved: docker's flags.  ``subnet``/``gateway``/
    ``ip_range`` None: the plugin picks a free subnet (docker: from 172.17.0.0/16 up,
    skipping those that overlap a host route or another network)."""

    name: str
    driver: str = "bridge"
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    internal: bool = False
    ipv6: bool = False
    labels: dict[str, str] = field(factory=dict)
    options: dict[str, str] = field(factory=dict)  # -o mtu=N, com.docker.network.* names
