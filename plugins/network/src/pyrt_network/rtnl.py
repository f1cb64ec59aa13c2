"""rtnetlink requests: pyroute2's messages on a netlink socket of pyrt's own.

Why not pyroute2's ``IPRoute``: in pyroute2 0.9 its socket classes are built on asyncio,
so importing it loads asyncio, ssl, multiprocessing, even unittest (~80 ms of every
``run -d`` and ``stop`` on a network), to send the handful of messages a container's
network needs.  The issue that made pyrt-network asks for netlink through pyroute2 (no
``ip`` process per container) and no netlink encoding of pyrt's own, so only the socket
is pyrt's: every request below is a pyroute2 message (``ifinfmsg``, ``ifaddrmsg``,
``rtmsg``) with the fields, attributes and flags ``IPRoute``'s request filters give the
same call (``tests/unit/test_rtnl_messages.py`` compares them with ``IPBatch``'s, byte for
byte), encoded by pyroute2, and every answer is cut and decoded by pyroute2's
``Marshal``, errors raised as its ``NetlinkError`` (``.code``: the kernel's errno).  The
message classes cost ~20 ms to import.

:class:`Rtnl` is a NETLINK_ROUTE socket (close-on-exec) of the calling thread's network
namespace: a thread that joined a container's namespace (``netlink.in_netns``) talks to
that namespace.  One request at a time, read until its acknowledgement (or, for a dump,
its end).
"""
from __future__ import annotations

import _socket
import sys

AF_NETLINK, NETLINK_ROUTE = 16, 0
#: answers are read with a buffer this size (the kernel puts at most 32 KiB of a dump in one)
_RECV = 1 << 16


def _lean_package() -> None:
    """Make ``pyroute2`` importable without running its ``__init__``, which imports every
    socket class of the library (IPDB, NDB, conntrack, wireguard, nl80211, plan9...,
    ~70 ms).  The package's module is made from its spec without executing it, so its
    submodules import alone; the first other name asked of it (``from pyroute2 import
    NDB`` by another user in this process) runs the real ``__init__`` into the same module
    (:func:`_full_package`), so nobody sees a different pyroute2."""
    if "pyroute2" not in sys.modules:
        import importlib.util

        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.loader is not None and spec.submodule_search_locations:
            mod = importlib.util.module_from_spec(spec)
            mod.__dict__["__getattr__"] = lambda name: _full_package(mod, spec, name)
            sys.modules["pyroute2"] = mod


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


_lean_package()

from pyroute2.netlink import (  # noqa: E402
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402,F401 - the callers' error
try:
    from pyroute2.netlink.marshal import Marshal  # noqa: E402 - pyroute2 0.9
except ImportError:  # 0.7 and 0.8: the same class, in a module without asyncio there
    from pyroute2.netlink.nlsocket import Marshal  # noqa: E402
from pyroute2.netlink.rtnl import (  # noqa: E402
    RTM_DELLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    rt_proto,
    rt_scope,
    rt_type,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

AF_INET, AF_INET6 = 2, 10
RT_TABLE_MAIN = 254
#: IPRoute's flags: "req" (change something there) and "create" (add, fail if it exists)
REQ = NLM_F_REQUEST | NLM_F_ACK
CREATE = REQ | NLM_F_CREATE | NLM_F_EXCL


class _Marshal(Marshal):
    """pyroute2's parser, for the answers these requests get (other types decode as
    plain ``nlmsg``; errors and acks as ``nlmsgerr``)."""

    msg_map = {RTM_NEWLINK: ifinfmsg, RTM_NEWADDR: ifaddrmsg, RTM_NEWROUTE: rtmsg}


class Rtnl:
    """A NETLINK_ROUTE socket of the calling thread's network namespace."""

    def __init__(self) -> None:
        self.sock = _socket.socket(AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self.sock.bind((0, 0))
        except BaseException:
            self.sock.close()
            raise
        self.seq = 0
        self.marshal = _Marshal()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, msg) -> list:
        """Send ``msg`` (a pyroute2 message, its type and flags set) and wait for the
        answer: the messages a dump returned (``[]`` for an acknowledged change).  A
        refusal raises ``NetlinkError`` with the kernel's errno (``.code``)."""
        self.seq += 1
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.sendto(msg.data, (0, 0))
        dump = (msg["header"]["flags"] & NLM_F_DUMP) == NLM_F_DUMP
        out: list = []
        while True:
            for answer in self.marshal.parse(self.sock.recv(_RECV)):
                header = answer["header"]
                if header["sequence_number"] != self.seq:
                    continue  # a late answer to an earlier request
                if header.get("error") is not None:
                    raise header["error"]
                if header["type"] == NLMSG_DONE or (header["type"] == NLMSG_ERROR and not dump):
                    return out
                out.append(answer)


# -- the requests (each as IPRoute builds it for the call named) ------------------------

def _link(flags: int, index: int = 0, up: bool = False, attrs: list | None = None, mtype=RTM_NEWLINK):
    msg = ifinfmsg()
    msg["family"] = 0
    msg["ifi_type"] = 0
    msg["index"] = index
    msg["flags"] = msg["change"] = IFF_UP if up else 0
    msg["attrs"] = attrs or []
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = flags
    return msg


def link_add_veth(name: str, master: int, peer: str, peer_mac: str, peer_netns_fd: int,
                  mtu: int | None = None):
    """``link("add", ifname=name, kind="veth", master=master, state="up", [mtu=mtu],
    peer={"ifname": peer, "address": peer_mac, "net_ns_fd": peer_netns_fd, [mtu]})``:
    the pair in one message, ``name`` on the bridge ``master`` and up, its peer made
    in the namespace of ``peer_netns_fd``."""
    mtu_attr = [("IFLA_MTU", mtu)] if mtu else []
    peer_msg = {"attrs": [("IFLA_IFNAME", peer), ("IFLA_ADDRESS", peer_mac),
                          ("IFLA_NET_NS_FD", peer_netns_fd)] + mtu_attr}
    info = {"attrs": [("IFLA_INFO_KIND", "veth"),
                      ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer_msg)]})]}
    return _link(CREATE, up=True, attrs=[("IFLA_IFNAME", name), ("IFLA_MASTER", master)]
                 + mtu_attr + [("IFLA_LINKINFO", info)])


def link_add_bridge(name: str, mtu: int | None = None):
    """``link("add", ifname=name, kind="bridge", [mtu=mtu])``."""
    mtu_attr = [("IFLA_MTU", mtu)] if mtu else []
    return _link(CREATE, attrs=[("IFLA_IFNAME", name)] + mtu_attr
                 + [("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])


def link_up(index: int):
    """``link("set", index=index, state="up")``."""
    return _link(REQ, index=index, up=True)


def link_del(name: str):
    """``link("del", ifname=name)``: by name, no index to go stale."""
    return _link(REQ, attrs=[("IFLA_IFNAME", name)], mtype=RTM_DELLINK)


def addr_add(index: int, address: str, prefixlen: int, flags: int = 0):
    """``addr("add", index=index, address=address, prefixlen=prefixlen, family=...,
    [flags=flags])``: IPv4 with IFA_LOCAL as well (a point-to-point link's peer address
    otherwise), ``flags`` (IFA_F_NODAD: 2) as IFA_FLAGS."""
    v6 = ":" in address
    msg = ifaddrmsg()
    msg["family"] = AF_INET6 if v6 else AF_INET
    msg["prefixlen"] = prefixlen
    msg["flags"] = 0
    msg["scope"] = 0
    msg["index"] = index
    msg["attrs"] = [("IFA_ADDRESS", address)]
    if not v6:
        msg["attrs"].append(("IFA_LOCAL", address))
    if flags:
        msg["attrs"].append(("IFA_FLAGS", flags))
    msg["header"]["type"] = RTM_NEWADDR
    msg["header"]["flags"] = CREATE
    return msg


def _rt(family: int, flags: int, mtype: int, proto: int = 0, scope: int = 0, rtype: int = 0,
        attrs: list | None = None):
    msg = rtmsg()
    msg["family"] = family
    msg["dst_len"] = msg["src_len"] = msg["tos"] = 0
    msg["table"] = RT_TABLE_MAIN
    msg["proto"] = proto
    msg["scope"] = scope
    msg["type"] = rtype
    msg["flags"] = 0
    msg["attrs"] = attrs or []
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = flags
    return msg


def route_add_default(gateway: str):
    """``route("add", dst="0.0.0.0/0", gateway=gateway)`` (``dst="::/0"``, family
    AF_INET6 for an IPv6 gateway): the main table, a static unicast route."""
    return _rt(AF_INET6 if ":" in gateway else AF_INET, CREATE, RTM_NEWROUTE, proto=rt_proto["static"],
               scope=rt_scope["universe"], rtype=rt_type["unicast"], attrs=[("RTA_GATEWAY", gateway)])


def route_dump(family: int):
    """``get_routes(family=family, table=254)``'s request: the kernel answers with every
    table's routes of ``family``; the caller keeps the main table's."""
    return _rt(family, NLM_F_REQUEST | NLM_F_DUMP, RTM_GETROUTE)


def route_table(route) -> int:
    """A route's table: RTA_TABLE (tables above 255), else the header's field."""
    t = route.get_attr("RTA_TABLE")
    return route["table"] if t is None else t
