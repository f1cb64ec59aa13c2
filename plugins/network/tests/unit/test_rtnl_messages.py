"""pyrt_network.rtnl sends the messages pyroute2's IPRoute sent for the same calls.

IPRoute is gone from the plugin (its import is ~80 ms of asyncio, ssl...), but every
request is still built by pyroute2: the same message classes, and here the same bytes as
``IPBatch`` (IPRoute's request compiler: IPRoute's API and request filters, the messages
kept instead of sent) for each call the plugin used to make, only the sequence number
and port id apart (pyroute2 numbers its own).  And the answer loop of :class:`Rtnl`,
on answers pyroute2 encodes: an error's errno, a late answer to an earlier request
skipped, a dump read to its end across reads.
"""
from __future__ import annotations

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.rtnl", "pyrt-network")
from pyrt_network import rtnl  # noqa: E402
from pyroute2.iproute.linux import IPBatch  # noqa: E402 - the reference, in the test only
from pyroute2.netlink import NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR, nlmsg, nlmsgerr  # noqa: E402

FD = 7  # a namespace's descriptor: only carried as a number
MAC = "02:42:0a:d5:00:02"

CASES = {
    "veth": (lambda b: b.link("add", ifname="pyrtv0", kind="veth", master=5, state="up",
                              peer={"ifname": "eth0", "address": MAC, "net_ns_fd": FD}),
             lambda: rtnl.link_add_veth("pyrtv0", 5, "eth0", MAC, FD)),
    "veth-mtu": (lambda b: b.link("add", ifname="pyrtv0", kind="veth", master=5, state="up", mtu=1400,
                                  peer={"ifname": "eth1", "address": MAC, "net_ns_fd": FD, "mtu": 1400}),
                 lambda: rtnl.link_add_veth("pyrtv0", 5, "eth1", MAC, FD, 1400)),
    "bridge": (lambda b: b.link("add", ifname="pyrt0", kind="bridge"), lambda: rtnl.link_add_bridge("pyrt0")),
    "bridge-mtu": (lambda b: b.link("add", ifname="pyrt0", kind="bridge", mtu=9000),
                   lambda: rtnl.link_add_bridge("pyrt0", 9000)),
    "up": (lambda b: b.link("set", index=3, state="up"), lambda: rtnl.link_up(3)),
    "lo-up": (lambda b: b.link("set", index=1, state="up"), lambda: rtnl.link_up(1)),
    "del": (lambda b: b.link("del", ifname="pyrtv0"), lambda: rtnl.link_del("pyrtv0")),
    "addr4": (lambda b: b.addr("add", index=3, address="10.213.0.2", prefixlen=24, family=2),
              lambda: rtnl.addr_add(3, "10.213.0.2", 24)),
    "addr6-nodad": (lambda b: b.addr("add", index=3, address="fd4d:1::2", prefixlen=64, family=10, flags=2),
                    lambda: rtnl.addr_add(3, "fd4d:1::2", 64, 2)),
    "route4": (lambda b: b.route("add", dst="0.0.0.0/0", gateway="10.213.0.1"),
               lambda: rtnl.route_add_default("10.213.0.1")),
    "route6": (lambda b: b.route("add", dst="::/0", gateway="fd4d:1::1", family=10),
               lambda: rtnl.route_add_default("fd4d:1::1")),
    "dump4": (lambda b: list(b.get_routes(family=2, table=254)), lambda: rtnl.route_dump(2)),
    "dump6": (lambda b: list(b.get_routes(family=10, table=254)), lambda: rtnl.route_dump(10)),
}


def _numbered_as_ours(data: bytes) -> bytes:
    """The message with its sequence number and port id zeroed (each socket numbers its
    own); everything else as sent."""
    b = bytearray(data)
    b[8:16] = bytes(8)
    return bytes(b)


@pytest.fixture(scope="module")
def batch():
    b = IPBatch()
    yield b
    b.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_request_is_iproutes(batch, case):
    reference, ours = CASES[case]
    batch.reset()
    reference(batch)
    msg = ours()
    msg["header"]["sequence_number"] = 0
    msg.encode()
    assert _numbered_as_ours(bytes(msg.data)) == _numbered_as_ours(bytes(batch.batch))
    assert len(msg.data) == msg["header"]["length"] > 16


class FakeSocket:
    """Answers queued as reads; what was sent kept."""

    def __init__(self, reads):
        self.reads = list(reads)
        self.sent = []

    def sendto(self, data, addr):
        self.sent.append((bytes(data), addr))

    def recv(self, size):
        return self.reads.pop(0)

    def close(self):
        pass


def _ack(seq: int, error: int = 0, request=None) -> bytes:
    """NLMSG_ERROR as the kernel answers: the errno, then (for an error) the request."""
    m = nlmsgerr()
    m["header"].update(type=NLMSG_ERROR, sequence_number=seq)
    m["error"] = error
    m.encode()
    data = bytes(m.data)
    if request is not None:
        request["header"]["sequence_number"] = seq
        request.encode()
        data += bytes(request.data)
        data = (len(data)).to_bytes(4, "little") + data[4:]
    return data


def _route(seq: int, dst: str) -> bytes:
    m = rtnl._rt(2, NLM_F_MULTI, rtnl.RTM_NEWROUTE, attrs=[("RTA_DST", dst), ("RTA_OIF", 4)])
    m["dst_len"] = 24
    m["header"]["sequence_number"] = seq
    m.encode()
    return bytes(m.data)


def _done(seq: int) -> bytes:
    m = nlmsg()
    m["header"].update(type=NLMSG_DONE, flags=NLM_F_MULTI, sequence_number=seq)
    m.encode()
    return bytes(m.data)


def _rtnl(reads) -> rtnl.Rtnl:
    nl = rtnl.Rtnl.__new__(rtnl.Rtnl)
    nl.sock, nl.seq, nl.marshal = FakeSocket(reads), 0, rtnl._Marshal()
    return nl


def test_an_ack_ends_a_request_and_an_error_raises_the_kernels_errno():
    nl = _rtnl([_ack(1), _ack(2, -17, rtnl.addr_add(3, "10.213.0.2", 24))])
    assert nl.request(rtnl.link_up(3)) == []
    with pytest.raises(rtnl.NetlinkError) as e:
        nl.request(rtnl.addr_add(3, "10.213.0.2", 24))
    assert e.value.code == 17 and e.value.args == (17, "File exists")
    assert [d[8:12] for d, _ in nl.sock.sent] == [b"\1\0\0\0", b"\2\0\0\0"]  # numbered in turn
    assert {a for _, a in nl.sock.sent} == {(0, 0)}  # to the kernel


def test_a_late_answer_to_an_earlier_request_is_skipped():
    nl = _rtnl([_ack(1, -19, rtnl.link_up(3)) + _ack(2)])  # the first request's (a lost read) came late
    nl.seq = 1
    assert nl.request(rtnl.link_up(3)) == []


def test_a_dump_is_read_to_its_end_across_reads():
    nl = _rtnl([_route(1, "10.213.1.0") + _route(1, "10.213.2.0"), _route(1, "10.213.3.0") + _done(1)])
    routes = nl.request(rtnl.route_dump(2))
    assert [(r.get_attr("RTA_DST"), r["dst_len"], r.get_attr("RTA_OIF"), rtnl.route_table(r))
            for r in routes] == [(f"10.213.{i}.0", 24, 4, 254) for i in (1, 2, 3)]
    assert not nl.sock.reads
