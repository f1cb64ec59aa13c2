"""The host's and the container's interfaces, through netlink (pyroute2): bridges,
veth pairs, addresses, routes.  No ``ip`` process.

The container's side is configured from a thread that joined the container's network
namespace with setns(2) (a thread's network namespace is its own): pyroute2 opens its
netlink socket in the thread that first uses it, so the socket belongs to the
container's namespace, without the fork pyroute2's own ``netns=`` option costs.
"""
from __future__ import annotations

import ctypes
import os
import threading

from pyrt_core.api import PyrtError

CLONE_NEWNET = 0x40000000
_AF_NETLINK, _NETLINK_ROUTE = 16, 0
AF_INET, AF_INET6 = 2, 10
IFA_F_NODAD = 0x02
#: the loopback interface's index in every network namespace (the kernel's LOOPBACK_IFINDEX)
LOOPBACK_IFINDEX = 1
_libc = None


_IPROUTE = None
_HOST = None


def _iproute():
    global _IPROUTE
    if _IPROUTE is None:
        _IPROUTE = _import_iproute()
    return _IPROUTE()


class _Host:
    """The process's netlink socket in the host's network namespace, opened once and
    reused by every host-side call (a container's start used to open four: the bridge,
    the leftover veth, the pair, and teardown's), closed at exit.  A context manager
    that does not close it, so the call sites read as before.  The container's side
    always uses a socket of its own (:func:`in_netns`)."""

    def __init__(self, netns: int) -> None:
        self.ipr = _iproute()
        self.netns = netns

    def __enter__(self):
        return self.ipr

    def __exit__(self, *exc) -> None:
        pass


def _host():
    """The shared socket (:class:`_Host`); a socket of its own, closed after use, for a
    thread that is not in the namespace the shared one was opened in."""
    global _HOST
    ns = os.stat("/proc/thread-self/ns/net").st_ino
    if _HOST is None:
        import atexit

        _HOST = _Host(ns)
        atexit.register(_HOST.ipr.close)
    return _HOST if _HOST.netns == ns else _iproute()


def _import_iproute():
    """pyroute2's ``IPRoute`` class, without running ``pyroute2/__init__.py``: that
    imports every socket class of the library (IPDB, NDB, conntrack, wireguard, nl80211,
    plan9...), about 70 ms of each ``run`` on a network, while ``IPRoute`` needs a third
    of it.  The package's module is made from its spec without executing it, so its
    submodules import alone; the first other name asked of it (``from pyroute2 import
    NDB`` by another user in this process) runs the real ``__init__`` into the same
    module (:func:`_full_package`), so nobody sees a different pyroute2."""
    _lean_package()
    try:
        from pyroute2.iproute.linux import IPRoute
    except ImportError:  # another layout of pyroute2
        from pyroute2 import IPRoute
    return IPRoute


def _full_package(mod, spec, name: str):
    """The lean ``pyroute2`` module's ``__getattr__``: a submodule is imported alone (what
    ``from pyroute2 import config`` inside the library asks); any other name runs the
    package's ``__init__`` once, into the module, and is looked up there."""
    import importlib
    import importlib.util

    if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}") is not None:
        return importlib.import_module(f"pyroute2.{name}")
    if mod.__dict__.pop("__getattr__", None) is not None:
        spec.loader.exec_module(mod)
    return mod.__dict__[name] if name in mod.__dict__ else object.__getattribute__(mod, name)


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def in_netns(path: str, func):
    """``func(ipr)`` with an IPRoute of the network namespace at ``path``, run in a
    thread that joined it; its result, or its exception raised here."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    box: dict = {}

    def run():
        try:
            _setns(fd)
            with _iproute() as ipr:
                box["result"] = func(ipr)
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


def host_routes() -> list[str]:
    """The host's routes (main table, IPv4 and IPv6, not the default ones) as CIDRs,
    with the interface they use: ``[(cidr, ifname)]``."""
    out = []
    with _host() as ipr:
        names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
        for fam in (AF_INET, AF_INET6):
            for r in ipr.get_routes(family=fam, table=254):
                dst, n = r.get("dst"), r["dst_len"]
                if not dst or n == 0:
                    continue
                if fam == AF_INET6 and (dst.startswith("fe80:") or n == 128):
                    continue
                out.append((f"{dst}/{n}", names.get(r.get("oif"), "")))
    return out


def link_index(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_exists(name: str) -> bool:
    with _host() as ipr:
        return link_index(ipr, name) is not None


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def ensure_bridge(name: str, addrs: list[tuple[str, int]], mtu: int | None) -> bool:
    """The bridge ``name`` up with ``addrs`` (its gateways); True when it was made now."""
    made = False
    with _host() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            kw = {"mtu": mtu} if mtu else {}
            try:
                ipr.link("add", ifname=name, kind="bridge", **kw)
                made = True
            except Exception as e:  # noqa: BLE001 - NetlinkError: exists (a race) or refused
                if getattr(e, "code", None) != 17:
                    raise PyrtError(f"cannot create bridge {name}: {e}") from None
            idx = link_index(ipr, name)
        fams = {AF_INET6 if ":" in ip else AF_INET for ip, _n in addrs}
        # one family asked of the kernel when one is enough (not every veth's fe80::)
        fam = fams.pop() if len(fams) == 1 else 0
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=fam)}
        for ip, n in addrs:
            if (ip, n) not in have:
                fam = AF_INET6 if ":" in ip else AF_INET
                kw = {"flags": IFA_F_NODAD} if fam == AF_INET6 else {}
                ipr.addr("add", index=idx, address=ip, prefixlen=n, family=fam, **kw)
        ipr.link("set", index=idx, state="up")
    # 127.0.0.1:PORT reaches containers only if the bridge may carry loopback sources
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    return made


def delete_link(name: str) -> bool:
    """Remove the interface ``name`` (a bridge, a veth's host end: its peer goes too);
    False when it was not there.

    A container's teardown is this call alone, so it does not load pyroute2's socket
    classes (``IPRoute`` imports asyncio, ssl, multiprocessing...: ~80 ms of a ``stop``):
    an interface that is not there is seen with if_nametoindex(3), and the RTM_DELLINK
    request is built and its answer read by pyroute2's message classes (``ifinfmsg``,
    ``nlmsgerr``, ~20 ms to import) on a netlink socket of this function's own."""
    import _socket

    try:
        _socket.if_nametoindex(name)
    except OSError:
        return False
    code = _rtnl_delete_link(name)
    if code == -19:  # ENODEV: gone meanwhile
        return False
    if code != 0:
        raise PyrtError(f"cannot delete the interface {name}: {os.strerror(-code)}")
    return True


def _rtnl_delete_link(name: str) -> int:
    """RTM_DELLINK of the interface ``name`` (by name: no index to go stale) in this
    thread's network namespace; the kernel's answer: 0 or a negative errno."""
    import _socket

    _lean_package()
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, nlmsgerr
    from pyroute2.netlink.rtnl import RTM_DELLINK
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    msg = ifinfmsg()
    msg["family"] = 0
    msg["index"] = 0
    msg["attrs"] = [("IFLA_IFNAME", name)]
    msg["header"]["type"] = RTM_DELLINK
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["sequence_number"] = 1
    msg.encode()
    sock = _socket.socket(_AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        sock.sendto(msg.data, (0, 0))
        while True:
            data = sock.recv(65536)
            ack = nlmsgerr(data)
            ack.decode()
            if ack["header"]["type"] == NLMSG_ERROR and ack["header"]["sequence_number"] == 1:
                return int(ack["error"])
    finally:
        sock.close()


def _lean_package() -> None:
    """Make ``pyroute2`` importable without its ``__init__`` (see :func:`_import_iproute`)."""
    import sys

    if "pyroute2" not in sys.modules:
        import importlib.util

        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.loader is not None and spec.submodule_search_locations:
            mod = importlib.util.module_from_spec(spec)
            mod.__dict__["__getattr__"] = lambda name: _full_package(mod, spec, name)
            sys.modules["pyroute2"] = mod


def attach(netns: str, host_end: str, bridge: str, ifname: str, addrs: list[tuple[str, int]],
           mac: str, mtu: int | None, routes: list[str]) -> None:
    """A veth pair: ``host_end`` on ``bridge``, its peer in the namespace at ``netns``
    named ``ifname``, with ``mac``, ``addrs`` and default routes via ``routes``
    (gateways; empty for a container's second network), loopback up.

    Few round trips (each one of pyroute2's costs about a millisecond of Python): the
    pair is made in one message, the host end already on the bridge and up, the peer
    already in the container's namespace with its name and MAC address (a name of the
    container's namespace: nothing of the host's can clash with it; a leftover of a
    killed start went with its host end, which setup removes first)."""
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _host() as ipr:
            br = link_index(ipr, bridge)
            if br is None:
                raise PyrtError(f"bridge {bridge} is missing")
            kw = {"mtu": mtu} if mtu else {}
            peer = {"ifname": ifname, "address": mac, "net_ns_fd": fd, **kw}
            ipr.link("add", ifname=host_end, kind="veth", peer=peer, master=br, state="up", **kw)
    finally:
        os.close(fd)
    # hairpin: with br_netfilter loaded (bridge-nf-call-iptables, docker's hosts), a
    # container's packet to its own published port is DNATed at the bridge and sent
    # back out the port it came in on, which a bridge drops unless the port allows it
    # (docker without its userland proxy, CNI's hairpinMode)
    _sysctl(f"/sys/class/net/{host_end}/brport/hairpin_mode", "1")

    def inside(ns):
        i = link_index(ns, ifname)
        for ip, n in addrs:
            fam = AF_INET6 if ":" in ip else AF_INET
            kw = {"flags": IFA_F_NODAD} if fam == AF_INET6 else {}
            ns.addr("add", index=i, address=ip, prefixlen=n, family=fam, **kw)
        ns.link("set", index=i, state="up")
        ns.link("set", index=LOOPBACK_IFINDEX, state="up")
        for gw in routes:
            if ":" in gw:
                ns.route("add", dst="::/0", gateway=gw, family=AF_INET6)
            else:
                ns.route("add", dst="0.0.0.0/0", gateway=gw)

    in_netns(netns, inside)


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
