"""Address management, pure logic: which subnet a new network gets, which address a
container gets, the names of the host's objects.  No I/O here (unit-tested); the store
(:mod:`pyrt_network.store`) calls these under its lock.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os

from pyrt_core.api import UsageError

#: docker's default pools: 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20 in /24s
DEFAULT_POOLS = (("172.17.0.0/12", 16), ("192.168.0.0/16", 24))
#: the default bridge network's bridge in the default store (docker: docker0; another
#: store's: pyrt0-<tag>, :func:`pyrt_network.store.host_names`)
DEFAULT_BRIDGE = "pyrt0"


def parse_pools(text: str | None) -> list[tuple[str, int]]:
    """``PYRT_NETWORK_POOL``: ``BASE/LEN/SIZE[,BASE/LEN/SIZE...]`` (``10.213.0.0/16/24``:
    /24 networks carved out of 10.213.0.0/16), or the default pools."""
    if not text:
        return list(DEFAULT_POOLS)
    out = []
    for item in text.split(","):
        base, _, size = item.strip().rpartition("/")
        try:
            net = ipaddress.ip_network(base, strict=False)
            n = int(size)
        except ValueError:
            raise UsageError(f"invalid network pool {item!r}: expected BASE/LEN/SIZE, "
                             "like 10.213.0.0/16/24") from None
        if not net.prefixlen <= n <= 30:
            raise UsageError(f"invalid network pool {item!r}: SIZE must be between the "
                             "base's prefix length and 30")
        out.append((base, n))
    return out


def overlaps(net: ipaddress.IPv4Network | ipaddress.IPv6Network, others) -> str | None:
    """The first of ``others`` (networks or text) ``net`` overlaps, as text."""
    for o in others:
        on = ipaddress.ip_network(o, strict=False) if isinstance(o, str) else o
        if on.version == net.version and net.overlaps(on):
            return str(on)
    return None


def choose_subnet(pools: list[tuple[str, int]], taken: list[str]) -> str:
    """The first subnet of the pools that overlaps nothing in ``taken`` (host routes
    and other networks)."""
    busy = [ipaddress.ip_network(t, strict=False) for t in taken]
    for base, size in pools:
        start = ipaddress.ip_network(base, strict=False)
        first = ipaddress.ip_address(base.split("/")[0])
        for sub in start.subnets(new_prefix=size):
            if sub.network_address < first:
                continue  # docker's 172.17.0.0/12: from 172.17 on
            if not any(sub.version == b.version and sub.overlaps(b) for b in busy):
                return str(sub)
    raise UsageError("no free subnet left in the network pools "
                     f"({', '.join(f'{b}/{s}' for b, s in pools)}): give one with --subnet")


def ula_subnet(seed: str) -> str:
    """A /64 of a unique local /48 derived from ``seed`` (RFC 4193, random enough)."""
    h = hashlib.sha256(seed.encode()).digest()
    gid = int.from_bytes(h[:5], "big")
    prefix = (0xfd << 120) | (gid << 80)
    return str(ipaddress.IPv6Network((prefix, 64)))


def check_subnet(subnet: str, gateway: str | None, ip_range: str | None,
                 taken: dict[str, str]) -> tuple[str, str, str | None]:
    """``--subnet``/``--gateway``/``--ip-range`` checked: the normalised subnet, its
    gateway (the first address when none is given) and range.  ``taken`` maps subnets
    in use to who uses them ("host route", "network NAME")."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise UsageError(f"invalid subnet {subnet!r}") from None
    if str(net) != subnet and net.network_address != ipaddress.ip_address(subnet.split("/")[0]):
        pass  # docker accepts 10.1.2.3/24 and keeps the network address
    if net.num_addresses < 4:
        raise UsageError(f"subnet {net} is too small (a /30 at least)")
    for other, who in taken.items():
        on = ipaddress.ip_network(other, strict=False)
        if on.version == net.version and net.overlaps(on):
            raise UsageError(f"subnet {net} overlaps {on} ({who})")
    if gateway:
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise UsageError(f"invalid gateway {gateway!r}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise UsageError(f"gateway {gw} is not a usable address of subnet {net}")
    else:
        gw = net.network_address + 1
    rng = None
    if ip_range:
        try:
            r = ipaddress.ip_network(ip_range, strict=False)
        except ValueError:
            raise UsageError(f"invalid ip range {ip_range!r}") from None
        if r.version != net.version or not r.subnet_of(net):  # type: ignore[arg-type]
            raise UsageError(f"ip range {r} is not inside subnet {net}")
        rng = str(r)
    return str(net), str(gw), rng


def allocate(subnet: str, gateway: str, ip_range: str | None, used, wanted: str | None = None,
             hint: int = 0) -> str:
    """A free address of ``subnet`` (within ``ip_range`` when given): ``wanted`` if free
    (``--ip``), else the first free one at or after ``hint`` (wrapping), never the
    network, broadcast or gateway address, nor one in ``used``."""
    net = ipaddress.ip_network(subnet)
    gw = ipaddress.ip_address(gateway)
    used = set(used)
    if wanted is not None:
        try:
            ip = ipaddress.ip_address(wanted)
        except ValueError:
            raise UsageError(f"invalid IP address {wanted!r}") from None
        if ip not in net:
            raise UsageError(f"address {ip} is not in the network's subnet {net}")
        if ip in (net.network_address, gw) or (net.version == 4 and ip == net.broadcast_address):
            raise UsageError(f"address {ip} is reserved in {net} (network, broadcast or gateway)")
        if str(ip) in used:
            raise UsageError(f"address {ip} is already in use on this network")
        return str(ip)
    pool = ipaddress.ip_network(ip_range) if ip_range else net
    first = int(pool.network_address) + 1
    last = int(pool.broadcast_address) - (1 if pool.version == 4 else 0)
    if pool.version == 6:
        last = min(last, first + (1 << 20))  # a large v6 range: look at a million at most
    count = last - first + 1
    start = (hint % count) if count > 0 else 0
    cls = ipaddress.IPv4Address if pool.version == 4 else ipaddress.IPv6Address
    for k in range(count):
        ip = cls(first + (start + k) % count)
        if ip == gw or ip == net.network_address or (net.version == 4 and ip == net.broadcast_address):
            continue
        s = str(ip)
        if s not in used:
            return s
    raise UsageError(f"no free address left in {pool}")


def mac_for(ip: str) -> str:
    """docker's MAC for an IPv4 address: 02:42 then the address's four bytes."""
    b = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


def check_mac(mac: str) -> str:
    parts = mac.lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise UsageError(f"invalid MAC address {mac!r}")
    if int(parts[0], 16) & 1:
        raise UsageError(f"invalid MAC address {mac!r}: a multicast address")
    return ":".join(parts)


def new_id() -> str:
    return os.urandom(32).hex()


def bridge_name(name: str, net_id: str, default_bridge: str = DEFAULT_BRIDGE) -> str:
    """``default_bridge`` (the store's: ``pyrt0``, ``pyrt0-<tag>``) for the default
    network, ``pyrt-<10 hex>`` of the network's random id for others (15 characters,
    the kernel's limit; docker: docker0, br-<12 hex>)."""
    return default_bridge if name == "bridge" else f"pyrt-{net_id[:10]}"


def veth_name(container_id: str, network_id: str) -> str:
    """The host end of a container's veth on a network: ``pv`` and 12 hex digits."""
    return "pv" + hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()[:12]


def chain_name(container_id: str) -> str:
    """The container's nftables chain of port rules."""
    return "c-" + container_id[:24]


def network_chain(net_id: str) -> str:
    return "n-" + net_id[:24]


def valid_network_name(name: str) -> str:
    ok = name and name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name) and len(name) <= 128
    if not ok:
        raise UsageError(f"invalid network name {name!r}: [a-zA-Z0-9][a-zA-Z0-9_.-] only")
    return name
