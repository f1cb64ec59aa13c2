"""docker's network flags of ``run``/``create`` (``-p``, ``-P``, ``--expose``,
``--network``, ``--ip``, ``--ip6``, ``--mac-address``, ``--network-alias``, ``--dns``,
``--dns-search``, ``--dns-option``, ``--add-host``) and their checks, resolved into a
:class:`pyrt_core.netmodel.ContainerNetworking` (docs/networking.md, "Flags").

What needs the store or the plugins (the default network, ``container:NAME``, the
image's ``EXPOSE`` for ``-P``, the plugin's own checks) is resolved by the engine's
``create`` (:mod:`pyrt_core.engine.network`); everything here is syntax and docker's
rules between the flags, checked before anything exists.
"""
from __future__ import annotations

from ...errors import UsageError

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    import argparse

    from ...netmodel import ContainerNetworking

#: the network mode recorded when no --network was given: the engine picks docker's
#: default (``bridge``) when a network plugin is installed, else ``none``
DEFAULT_MODE = "default"


def add_network_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", "--net", action="append", default=[], metavar="NETWORK",
                   help="connect to a network: bridge (the default with a network plugin), "
                        "a network's name (repeat for several), none (loopback only, the "
                        "default without one), host, container:NAME")
    p.add_argument("--publish", "-p", action="append", default=[], metavar="[IP:][HOSTPORT:]PORT[/PROTO]",
                   help="publish a container's port on the host")
    p.add_argument("--publish-all", "-P", action="store_true",
                   help="publish every exposed port on random host ports")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                   help="expose a port or a range of ports")
    p.add_argument("--ip", metavar="IPv4", help="IPv4 address on the (first) user-defined network")
    p.add_argument("--ip6", metavar="IPv6", help="IPv6 address on the (first) user-defined network")
    p.add_argument("--mac-address", metavar="MAC", help="MAC address on the (first) network")
    p.add_argument("--network-alias", action="append", default=[], metavar="ALIAS",
                   help="another name of the container on the (first) user-defined network")
    p.add_argument("--dns", action="append", default=[], metavar="IP", help="a DNS server")
    p.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN",
                   help="a DNS search domain")
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[], metavar="OPT",
                   help="a resolv.conf option (ndots:2, ...)")
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP",
                   help="add a line to /etc/hosts (IP may be host-gateway)")


def check_network_name(name: str) -> str:
    """docker's rule for a network's name (moby's RestrictedNamePattern)."""
    ok = name and (name[0].isascii() and name[0].isalnum()) and \
        all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    if not ok:
        raise UsageError(f"invalid network name {name!r}: a letter or digit, then letters, "
                         "digits, '_', '.' or '-'")
    return name


def _ip(text: str, version: int, flag: str) -> str:
    import ipaddress

    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    if addr is None or addr.version != version:
        raise UsageError(f"invalid {flag} {text!r}: not an IPv{version} address")
    return str(addr)


def _mac(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(x) == 2 and all(c in "0123456789abcdefABCDEF" for c in x)
                                  for x in parts):
        raise UsageError(f"invalid --mac-address {text!r}: expected six hex pairs "
                         "(02:42:ac:11:00:02)")
    if int(parts[0], 16) & 1:
        raise UsageError(f"invalid --mac-address {text!r}: a multicast address")
    return text.lower()


def _add_host(text: str) -> str:
    # docker: NAME:IP, and NAME=IP since 25 (for IPv6 addresses); the IP may be host-gateway
    if "=" in text:
        name, _, ip = text.partition("=")
    else:
        name, _, ip = text.partition(":")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not name or not ip or any(c.isspace() for c in name):
        raise UsageError(f"invalid --add-host {text!r}: expected NAME:IP")
    if ip != "host-gateway":
        import ipaddress

        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise UsageError(f"invalid --add-host {text!r}: {ip!r} is not an IP address") from None
    return f"{name}:{ip}"


def _dns_server(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise UsageError(f"invalid --dns {text!r}: not an IP address") from None


_OTHER_FLAGS = ("publish", "expose", "publish_all", "ip", "ip6", "mac_address", "network_alias",
                "dns", "dns_search", "dns_option", "add_host")


def networking_json(args, warn=None) -> tuple[str, dict, list[str], bool]:
    """:func:`networking_from_args` in JSON form (``ContainerConfig.networking``).  The
    common case, no network flag but at most one ``--network`` of none, host or none
    at all, is answered without :mod:`pyrt_core.netmodel` (an import ``pyrt run``'s
    start-up does not need then)."""
    wanted = getattr(args, "network", None) or []
    if isinstance(wanted, str):  # a caller that kept the old single-value flag
        wanted = [wanted]
    if len(wanted) <= 1 and not any(getattr(args, f, None) for f in _OTHER_FLAGS):
        mode = wanted[0] if wanted else DEFAULT_MODE
        if mode in ("none", "host"):
            return mode, {"mode": mode}, [], False
        if mode == DEFAULT_MODE:
            return mode, {"mode": "networks"}, [], False
    mode, net, expose, publish_all = networking_from_args(args, warn)
    return mode, net.to_dict(), expose, publish_all


def networking_from_args(args, warn=None) -> tuple[str, ContainerNetworking, list[str], bool]:
    """The flags -> (the network mode string kept as ``ContainerConfig.network``, the
    resolved networking, the ``--expose`` ports as ``PORT/PROTO``, ``-P``).  ``warn``
    receives docker's warnings (published ports dropped with ``--network host``)."""
    from ...netmodel import (SPECIAL_MODES, ContainerNetworking, NetworkAttachment, PortMapping,
                             parse_expose, parse_publish)

    wanted = [n for n in (getattr(args, "network", None) or [])]
    if isinstance(wanted, str):  # a caller that kept the old single-value flag
        wanted = [wanted]
    ports: list[PortMapping] = []
    for spec in getattr(args, "publish", None) or ():
        ports += parse_publish(spec)
    expose: list[str] = []
    for spec in getattr(args, "expose", None) or ():
        expose += [f"{p}/{proto}" for p, proto in parse_expose(spec)]
    publish_all = bool(getattr(args, "publish_all", False))
    ip = _ip(args.ip, 4, "--ip") if getattr(args, "ip", None) else None
    ip6 = _ip(args.ip6, 6, "--ip6") if getattr(args, "ip6", None) else None
    mac = _mac(args.mac_address) if getattr(args, "mac_address", None) else None
    aliases = list(getattr(args, "network_alias", None) or ())
    for a in aliases:
        if not a or any(c.isspace() for c in a) or len(a) > 253:
            raise UsageError(f"invalid --network-alias {a!r}")
    dns = [_dns_server(d) for d in getattr(args, "dns", None) or ()]
    dns_search = list(getattr(args, "dns_search", None) or ())
    for d in dns_search:
        if not d or any(c.isspace() for c in d):
            raise UsageError(f"invalid --dns-search {d!r}")
    dns_options = list(getattr(args, "dns_option", None) or ())
    for o in dns_options:
        if not o or any(c.isspace() for c in o):
            raise UsageError(f"invalid --dns-option {o!r}")
    extra_hosts = [_add_host(h) for h in getattr(args, "add_host", None) or ()]

    seen = []
    for n in wanted:
        n = "bridge" if n == "default" else n
        if n in seen:
            raise UsageError(f"network {n!r} is given twice")
        seen.append(n)
    special = [n for n in seen if n in SPECIAL_MODES or n.startswith("container:")]
    if special and len(seen) > 1:
        raise UsageError(f"conflicting options: --network {special[0]} cannot be combined "
                         "with other networks")
    mode_text = seen[0] if seen else DEFAULT_MODE
    common = dict(dns=dns, dns_search=dns_search, dns_options=dns_options,
                  extra_hosts=extra_hosts)
    if mode_text.startswith("container:"):
        target = mode_text[len("container:"):]
        if not target:
            raise UsageError("invalid --network container: a container's name or id is needed")
        for given, what in ((ports or publish_all, "port publishing"),
                            (expose, "port exposing"), (dns or dns_search or dns_options, "dns"),
                            (extra_hosts, "custom host-to-IP mapping"),
                            (getattr(args, "hostname", None), "hostname"),
                            (mac, "mac-address"), (ip or ip6, "ip"),
                            (aliases, "network-scoped alias")):
            if given:
                raise UsageError(f"conflicting options: {what} and the network mode "
                                 f"container:{target}")
        return mode_text, ContainerNetworking(mode="container", container=target), [], False
    if mode_text in SPECIAL_MODES:
        if ip or ip6:
            raise UsageError("user specified IP address is supported on user defined networks only")
        if aliases:
            raise UsageError("network-scoped aliases are only supported for user-defined networks")
        if mac:
            raise UsageError(f"conflicting options: mac-address and the network mode {mode_text}")
        if mode_text == "none" and (ports or publish_all):
            raise UsageError("conflicting options: port publishing and the network mode none")
        if mode_text == "host" and (ports or publish_all):
            if warn is not None:
                warn("WARNING: Published ports are discarded when using host network mode")
            ports, publish_all = [], False
        return mode_text, ContainerNetworking(mode=mode_text, **common), expose, False
    for n in seen:
        check_network_name(n)
    first = seen[0] if seen else None
    user_defined = first is not None and first != "bridge"
    if (ip or ip6) and not user_defined:
        raise UsageError("user specified IP address is supported on user defined networks only")
    if aliases and not user_defined:
        raise UsageError("network-scoped aliases are only supported for user-defined networks")
    # the per-network flags go to the first network, as docker's (cli's parseNetworkOpts);
    # with no --network, the engine puts the default network there (bridge)
    attachments = [NetworkAttachment(network=n, aliases=tuple(aliases) if i == 0 else (),
                                     ipv4=ip if i == 0 else None, ipv6=ip6 if i == 0 else None,
                                     mac=mac if i == 0 else None)
                   for i, n in enumerate(seen)]
    if not seen and mac:
        attachments = [NetworkAttachment(network="", mac=mac)]  # the engine names it
    net = ContainerNetworking(mode="networks", attachments=attachments, ports=ports, **common)
    return mode_text, net, expose, publish_all
