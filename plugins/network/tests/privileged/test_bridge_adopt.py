"""A network that is up is adopted by the next container's start as it is (bench/network.py:
no nftables transaction and no listing of the whole table per container), and one whose
rules went missing behind pyrt's back (a firewall reload that deleted pyrt's table, a
reboot) is made again by the next start, with real traffic through it.
"""
from __future__ import annotations

from pyrt_core.api import ContainerNetworking, NetworkAttachment, PortMapping
from pyrt_network import backend, rules
from pyrt_network.nft import nft

from bridge_helpers import connect, server_code, sh


def cid(n: int) -> str:
    return f"{n:02x}" * 32


def nw(net: str = "bridge", ports=()) -> ContainerNetworking:
    return ContainerNetworking(mode="networks", attachments=[NetworkAttachment(net)],
                               ports=list(ports))


def up(env, n: int, networking):
    ns = env.netns()
    return ns, backend.setup(env.store, cid(n), env.path(ns), networking, env.root, env.runroot)


def network_rule_handles(table: str, net_id: str) -> list[int]:
    """The handles of the rules in the network's chains (a flush and a new ``add`` gives
    new handles: the same handles mean nothing was written again)."""
    out = []
    for ch in rules.network_chains(net_id):
        listing = nft().run([{"list": {"chain": {"family": rules.FAMILY, "table": table,
                                                  "name": ch}}}])
        out += [x["rule"]["handle"] for x in listing["nftables"] if "rule" in x]
    return out


def test_the_next_start_adopts_the_network_without_writing_its_rules(env):
    ns1, r1 = up(env, 1, nw())
    net = env.store.read()["networks"]["bridge"]
    assert rules.network_in_place(nft().run(rules.list_fwd_in(env.store.table)), net["Id"], net["private"]["bridge"])
    before = network_rule_handles(env.store.table, net["Id"])
    assert before
    ns2, r2 = up(env, 2, nw(ports=[PortMapping(80, "tcp", "127.0.0.1", 0)]))
    assert network_rule_handles(env.store.table, net["Id"]) == before  # adopted: nothing flushed or re-added
    # ...and the second container is reachable through its published port and from the first
    env.spawn(ns2, server_code(80, tag="two"))
    port = r2["ports"][0]["host_port"]
    ip2 = r2["networks"]["bridge"]["IPAddress"]
    assert connect(None, "127.0.0.1", port) == f"two {r2['networks']['bridge']['Gateway']}"
    assert connect(ns1, ip2, 80) == f"two {r1['networks']['bridge']['IPAddress']}"
    for n in (2, 1):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)


def test_a_table_deleted_behind_pyrts_back_is_made_again_by_the_next_start(env):
    ns1, r1 = up(env, 1, nw())
    net = env.store.read()["networks"]["bridge"]
    assert nft().try_run(rules.delete_table(env.store.table))  # a firewall reload (the bridge stays)
    bridge = net["private"]["bridge"]
    assert bridge in sh(f"ip -o link show {bridge}")
    ns2, r2 = up(env, 2, nw(ports=[PortMapping(80, "tcp", "127.0.0.1", 0)]))
    assert rules.network_in_place(nft().run(rules.list_fwd_in(env.store.table)), net["Id"], net["private"]["bridge"])
    env.spawn(ns2, server_code(80, tag="two"))
    port = r2["ports"][0]["host_port"]
    assert connect(None, "127.0.0.1", port) == f"two {r2['networks']['bridge']['Gateway']}"
    for n in (2, 1):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)


def test_a_missing_network_element_is_not_taken_for_a_network_that_is_up(env):
    """A network removal killed after its first deletion (the ``fwd_in`` element) leaves
    the record: the next start must write the network's rules again, not adopt them."""
    ns1, r1 = up(env, 1, nw())
    net = env.store.read()["networks"]["bridge"]
    first = rules.network_delete_commands(env.store.table, net["Id"], net["private"]["bridge"],
                                          [c["Subnet"] for c in net["IPAM"]["Config"]], False,
                                          [c["Gateway"] for c in net["IPAM"]["Config"]])[0]
    assert nft().try_run([first])
    assert not rules.network_in_place(nft().run(rules.list_fwd_in(env.store.table)), net["Id"], net["private"]["bridge"])
    ns2, r2 = up(env, 2, nw())
    assert rules.network_in_place(nft().run(rules.list_fwd_in(env.store.table)), net["Id"], net["private"]["bridge"])
    for n in (2, 1):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)
