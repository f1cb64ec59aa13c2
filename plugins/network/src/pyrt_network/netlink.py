"""The host's and the container's interfaces, through netlink: bridges, veth pairs,
addresses, routes.  No ``ip`` process, and no pyroute2 ``IPRoute``: each request is a
pyroute2 message sent on a socket of :mod:`pyrt_network.rtnl` (why: its docstring).

The container's side is configured from a thread that joined the container's network
namespace with setns(2) (a thread's network namespace is its own): the netlink socket
that thread opens, and the if_nametoindex(3) it calls, belong to the container's
namespace, without the fork pyroute2's own ``netns=`` option costs.  pyroute2 is
imported only when a request is sent (:mod:`pyrt_network.rtnl`), not with the plugin.
"""
from __future__ import annotations

import ctypes
import os
import threading

from pyrt_core.api import PyrtError

CLONE_NEWNET = 0x40000000
AF_INET, AF_INET6 = 2, 10
IFA_F_NODAD = 0x02
#: the loopback interface's index in every network namespace (the kernel's LOOPBACK_IFINDEX)
LOOPBACK_IFINDEX = 1
_EEXIST, _ENODEV = 17, 19
_libc = None


def _rtnl():
    from . import rtnl

    return rtnl


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def joined(path: str, func):
    """``func()`` run in a thread that joined the network namespace at ``path``; its
    result, or its exception raised here."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    box: dict = {}

    def run():
        try:
            _setns(fd)
            box["result"] = func()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    try:
        t = threading.Thread(target=run, name="pyrt-netns")
        t.start()
        t.join()
    finally:
        os.close(fd)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def in_netns(path: str, func):
    """``func(nl)`` with a netlink socket (:class:`pyrt_network.rtnl.Rtnl`) of the network
    namespace at ``path``, run in a thread that joined it (:func:`joined`)."""
    rtnl = _rtnl()

    def run():
        with rtnl.Rtnl() as nl:
            return func(nl)

    return joined(path, run)


def host_routes() -> list[tuple[str, str]]:
    """The host's routes (main table, IPv4 and IPv6, not the default ones) as CIDRs,
    with the interface they use: ``[(cidr, ifname)]``."""
    import _socket

    rtnl = _rtnl()
    out = []
    names = dict(_socket.if_nameindex())
    with rtnl.Rtnl() as nl:
        for fam in (AF_INET, AF_INET6):
            for r in nl.request(rtnl.route_dump(fam)):
                if rtnl.route_table(r) != rtnl.RT_TABLE_MAIN:
                    continue
                dst, n = r.get_attr("RTA_DST"), r["dst_len"]
                if not dst or n == 0:
                    continue
                if fam == AF_INET6 and (dst.startswith("fe80:") or n == 128):
                    continue
                out.append((f"{dst}/{n}", names.get(r.get_attr("RTA_OIF"), "")))
    return out


def link_index(name: str) -> int | None:
    """The index of the interface ``name`` in this thread's network namespace."""
    import _socket

    try:
        return _socket.if_nametoindex(name)
    except OSError:
        return None


def link_exists(name: str) -> bool:
    return link_index(name) is not None


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def ensure_bridge(name: str, addrs: list[tuple[str, int]], mtu: int | None) -> bool:
    """The bridge ``name`` up with ``addrs`` (its gateways); True when it was made now.

    The addresses are added, not listed first: one that is there already is refused
    with EEXIST (the request has NLM_F_EXCL), which is what a bridge that is up answers
    on every container's start."""
    rtnl = _rtnl()
    made = False
    with rtnl.Rtnl() as nl:
        idx = link_index(name)
        if idx is None:
            try:
                nl.request(rtnl.link_add_bridge(name, mtu))
                made = True
            except rtnl.NetlinkError as e:  # exists (a race) or refused
                if e.code != _EEXIST:
                    raise PyrtError(f"cannot create bridge {name}: {e}") from None
            idx = link_index(name)
            if idx is None:
                raise PyrtError(f"cannot create bridge {name}: it went away")
        for ip, n in addrs:
            try:
                nl.request(rtnl.addr_add(idx, ip, n, IFA_F_NODAD if ":" in ip else 0))
            except rtnl.NetlinkError as e:
                if e.code != _EEXIST:
                    raise
        nl.request(rtnl.link_up(idx))
    # 127.0.0.1:PORT reaches containers only if the bridge may carry loopback sources
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    return made


def delete_link(name: str) -> bool:
    """Remove the interface ``name`` (a bridge, a veth's host end: its peer goes too);
    False when it was not there.

    A container's teardown is this call alone: an interface that is not there is seen
    with if_nametoindex(3), without a netlink socket."""
    if link_index(name) is None:
        return False
    rtnl = _rtnl()
    with rtnl.Rtnl() as nl:
        try:
            nl.request(rtnl.link_del(name))  # by name: no index to go stale
        except rtnl.NetlinkError as e:
            if e.code == _ENODEV:  # gone meanwhile
                return False
            raise PyrtError(f"cannot delete the interface {name}: {os.strerror(e.code)}") from None
    return True


def attach(netns: str, host_end: str, bridge: str, ifname: str, addrs: list[tuple[str, int]],
           mac: str, mtu: int | None, routes: list[str]) -> None:
    """A veth pair: ``host_end`` on ``bridge``, its peer in the namespace at ``netns``
    named ``ifname``, with ``mac``, ``addrs`` and default routes via ``routes``
    (gateways; empty for a container's second network), loopback up.

    Few round trips: the pair is made in one message, the host end already on the
    bridge and up, the peer already in the container's namespace with its name and MAC
    address (a name of the container's namespace: nothing of the host's can clash with
    it; a leftover of a killed start went with its host end, which setup removes
    first); then, in the container's namespace, one message per address and route and
    two to bring the peer and loopback up."""
    rtnl = _rtnl()
    br = link_index(bridge)
    if br is None:
        raise PyrtError(f"bridge {bridge} is missing")
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl.Rtnl() as nl:
            nl.request(rtnl.link_add_veth(host_end, br, ifname, mac, fd, mtu))
    finally:
        os.close(fd)
    # hairpin: with br_netfilter loaded (bridge-nf-call-iptables, docker's hosts), a
    # container's packet to its own published port is DNATed at the bridge and sent
    # back out the port it came in on, which a bridge drops unless the port allows it
    # (docker without its userland proxy, CNI's hairpinMode)
    _sysctl(f"/sys/class/net/{host_end}/brport/hairpin_mode", "1")

    def inside(nl):
        import _socket

        i = _socket.if_nametoindex(ifname)
        for ip, n in addrs:
            nl.request(rtnl.addr_add(i, ip, n, IFA_F_NODAD if ":" in ip else 0))
        nl.request(rtnl.link_up(i))
        nl.request(rtnl.link_up(LOOPBACK_IFINDEX))
        for gw in routes:
            nl.request(rtnl.route_add_default(gw))

    in_netns(netns, inside)


def loopback_up(netns: str) -> None:
    """Loopback up in the namespace at ``netns`` (a container without a network of
    this plugin's: ``--network none``)."""
    rtnl = _rtnl()
    in_netns(netns, lambda nl: nl.request(rtnl.link_up(LOOPBACK_IFINDEX)))


def enable_forwarding() -> bool:
    """Turn on IPv4 forwarding (global); True when this call changed it."""
    path = "/proc/sys/net/ipv4/ip_forward"
    with open(path) as f:
        if f.read().strip() == "1":
            return False
    _sysctl(path, "1")
    return True


def forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False
