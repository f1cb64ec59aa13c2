"""pyrt-network's bridge backend against the real kernel, with real traffic between
network namespaces the tests make (the hooks' work, without the engine: the core's
part is tested in tests/privileged).  Each test's clean-up (conftest ``env``) tears
everything down and fails the test when pyrt's table, a bridge or a veth is left.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from pyrt_core.api import ConflictError, ContainerNetworking, NetworkAttachment, NotFoundError, \
    PortMapping, PyrtError, UsageError
from pyrt_core.testing import nettools
from pyrt_network import backend, rules
from pyrt_network.nft import nft

from bridge_helpers import PY, connect, nsx, server_code, sh


def cid(n: int) -> str:
    return f"{n:02x}" * 32


def nw(*nets: str, ports=(), name="", ip=None, mac=None) -> ContainerNetworking:
    atts = [NetworkAttachment(n, ipv4=ip if i == 0 else None, mac=mac if i == 0 else None)
            for i, n in enumerate(nets)]
    return ContainerNetworking(mode="networks", attachments=atts, ports=list(ports), name=name)


def setup(env, n: int, networking, ns=None):
    ns = ns or env.netns()
    rec = backend.setup(env.store, cid(n), env.path(ns), networking, env.root, env.runroot)
    return ns, rec


def ipof(rec, net="bridge"):
    return rec["networks"][net]["IPAddress"]


def test_address_gateway_and_default_network(env):
    ns, rec = setup(env, 1, nw("bridge"))
    a = rec["networks"]["bridge"]
    assert a["IPAddress"].startswith(str(env.base.network_address)[:-1])
    assert a["MacAddress"] == "02:42:" + ":".join(f"{int(x):02x}" for x in a["IPAddress"].split("."))
    out = nsx(ns, "ip -o addr show eth0; ip route; ip -o link show lo")
    assert f"{a['IPAddress']}/{a['IPPrefixLen']}" in out
    assert f"default via {a['Gateway']} dev eth0" in out
    assert "LOOPBACK,UP" in out
    assert f"master {env.store.default_bridge}" in sh("ip -o link show " + rec["private"]["veths"][0])
    # the container reaches the gateway (a listener of the host on the bridge's address)
    srv = socket.socket()
    srv.bind((a["Gateway"], 0))
    srv.listen(1)
    srv.settimeout(5)
    port = srv.getsockname()[1]
    p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c",
                          f"import socket; socket.create_connection(('{a['Gateway']}', {port}), 3)"])
    conn, peer = srv.accept()
    conn.close()
    srv.close()
    assert p.wait(10) == 0
    assert peer[0] == a["IPAddress"]
    [net] = backend.list_networks(env.store)
    assert net["Name"] == "bridge" and net["Driver"] == "bridge" and net["Options"][
        "com.docker.network.bridge.name"] == env.store.default_bridge
    assert list(net["Containers"]) == [cid(1)]
    assert backend.teardown(env.store, cid(1), rec, env.root, env.runroot)
    assert backend.teardown(env.store, cid(1), rec, env.root, env.runroot)  # idempotent
    assert backend.teardown(env.store, cid(1), None, env.root, env.runroot)
    assert "pv" not in sh("ip -o link show")


def test_same_network_reach_other_networks_isolated(env):
    backend.create(env.store, "blue")
    backend.create(env.store, "green")
    ns1, r1 = setup(env, 1, nw("blue"))
    ns2, r2 = setup(env, 2, nw("blue"))
    ns3, r3 = setup(env, 3, nw("green"))
    env.spawn(ns1, server_code(7000, tag="one"))
    assert connect(ns2, ipof(r1, "blue"), 7000) == f"one {ipof(r2, 'blue')}"
    assert connect(ns3, ipof(r1, "blue"), 7000, timeout=1.5) == ""
    for n in (1, 2, 3):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)


def test_outbound_nat_seen_from_outside(env):
    out_ns, host_ip, out_ip = env.outside()
    env.spawn(out_ns, server_code(7100, tag="outside"))
    ns, rec = setup(env, 1, nw("bridge"))
    # masqueraded: the outside host sees the host's address on its link
    assert connect(ns, out_ip, 7100) == f"outside {host_ip}"
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)


def test_internal_network_has_no_way_out(env):
    out_ns, host_ip, out_ip = env.outside()
    env.spawn(out_ns, server_code(7200, tag="outside"))
    backend.create(env.store, "sealed", internal=True)
    ns1, r1 = setup(env, 1, nw("sealed"))
    ns2, r2 = setup(env, 2, nw("sealed"))
    assert "default" not in nsx(ns1, "ip route")
    # even with a route added by hand inside, the host drops its forwarding
    nsx(ns1, f"ip route add default via {r1['networks']['sealed']['Gateway']}")
    assert connect(ns1, out_ip, 7200, timeout=1.5) == ""
    env.spawn(ns2, server_code(7201, tag="two"))
    assert connect(ns1, ipof(r2, "sealed"), 7201) == f"two {ipof(r1, 'sealed')}"
    for n in (1, 2):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_published_port_from_localhost_host_address_and_hairpin(env, proto):
    out_ns, host_ip, out_ip = env.outside()
    ns1, r1 = setup(env, 1, nw("bridge", ports=[PortMapping(80, proto, "", 18081)]))
    assert r1["ports"] == [{"container_port": 80, "protocol": proto, "host_ip": "", "host_port": 18081}]
    env.spawn(ns1, server_code(80, proto, tag="web"))
    gw = r1["networks"]["bridge"]["Gateway"]
    # from the host through 127.0.0.1 (output chain + route_localnet + masquerade)
    assert connect(None, "127.0.0.1", 18081, proto) == f"web {gw}"
    # from the "outside" host through the host's address on its link (prerouting)
    assert connect(out_ns, host_ip, 18081, proto) == f"web {out_ip}"
    # from the host through its own address on a link
    assert connect(None, host_ip, 18081, proto).startswith("web ")
    # hairpin: another container through the host's address (masqueraded to the gateway,
    # or, where br_netfilter bridges the DNATed frame itself, seen from its own address)
    ns2, r2 = setup(env, 2, nw("bridge"))
    assert connect(ns2, host_ip, 18081, proto) in (f"web {gw}", f"web {ipof(r2)}")
    for n in (1, 2):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)
    assert connect(None, "127.0.0.1", 18081, proto, timeout=1) == ""


def test_random_host_port_and_range(env):
    ns, rec = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", 0),
                                                   PortMapping(81, "tcp", "", 18100, 18105)]))
    p0, p1 = rec["ports"]
    assert p0["host_port"] > 1024 and 18100 <= p1["host_port"] <= 18105
    env.spawn(ns, server_code(80, tag="any"))
    assert connect(None, "127.0.0.1", p0["host_port"]).startswith("any ")
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)


def test_port_in_use_refused_before_anything(env):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    try:
        with pytest.raises(UsageError, match=f"host port {busy}/tcp is already in use"):
            backend.validate(env.store, nw("bridge", ports=[PortMapping(80, "tcp", "", busy)]))
        with pytest.raises(UsageError, match=f"host port {busy}/tcp"):
            setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", busy)]))
        assert env.store.read()["containers"] == {}
        assert "pv" not in sh("ip -o link show")
    finally:
        s.close()
    # another container's mapping
    ns1, r1 = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", 18110)]))
    with pytest.raises(UsageError, match="host port 18110/tcp is already published by container"):
        backend.validate(env.store, nw("bridge", ports=[PortMapping(80, "tcp", "", 18110)]))
    with pytest.raises(UsageError, match="host port 18110/tcp is already published"):
        setup(env, 2, nw("bridge", ports=[PortMapping(80, "tcp", "", 18110)]))
    assert list(env.store.read()["containers"]) == [cid(1)]
    backend.teardown(env.store, cid(1), r1, env.root, env.runroot)


def test_subnet_overlap_refused(env):
    out_ns, host_ip, out_ip = env.outside()
    route = sh(f"ip -o route show dev {env.links[0]}").split()[0]
    with pytest.raises(UsageError, match=f"overlaps {route} \\(a host route"):
        backend.create(env.store, "clash", subnet=route)
    backend.create(env.store, "one", subnet=str(list(env.base.subnets(new_prefix=24))[5]))
    with pytest.raises(UsageError, match="overlaps .* \\(network one\\)"):
        backend.create(env.store, "two", subnet=str(list(env.base.subnets(new_prefix=22))[1]))
    with pytest.raises(ConflictError, match="already exists"):
        backend.create(env.store, "one")
    with pytest.raises(UsageError, match="gateway"):
        backend.create(env.store, "three", subnet=str(list(env.base.subnets(new_prefix=24))[9]),
                       gateway="192.0.2.77")
    assert sorted(env.store.read()["networks"]) == ["one"]
    with pytest.raises(NotFoundError):
        backend.remove(env.store, "nope", env.runroot, env.root)


def test_fixed_ip_mac_mtu_connect_disconnect(env):
    sub = list(env.base.subnets(new_prefix=24))[7]
    backend.create(env.store, "fixed", subnet=str(sub), options={"mtu": "1400"}, labels={"a": "b"})
    backend.create(env.store, "extra")
    want = str(sub.network_address + 50)
    ns, rec = setup(env, 1, nw("fixed", ip=want, mac="02:00:00:00:00:07"))
    assert ipof(rec, "fixed") == want
    out = nsx(ns, "ip -o link show eth0")
    assert "mtu 1400" in out and "02:00:00:00:00:07" in out
    with pytest.raises(UsageError, match="already in use"):
        setup(env, 2, nw("fixed", ip=want))
    with pytest.raises(UsageError, match="not in the network's subnet"):
        backend.validate(env.store, nw("fixed", ip="192.0.2.200"))
    rec = backend.connect(env.store, cid(1), env.path(ns), nw("fixed", "extra"), "extra", env.root,
                          env.runroot)
    assert set(rec["networks"]) == {"fixed", "extra"}
    assert ipof(rec, "extra") in nsx(ns, "ip -o addr show eth1")
    with pytest.raises(ConflictError):
        backend.remove(env.store, "extra", env.runroot, env.root)
    rec = backend.disconnect(env.store, cid(1), "extra", env.root, env.runroot)
    assert set(rec["networks"]) == {"fixed"}
    assert "eth1" not in nsx(ns, "ip -o link show")
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)


def test_ipv6_network(env):
    backend.create(env.store, "six", ipv6=True)
    ns, rec = setup(env, 1, nw("six"))
    a = rec["networks"]["six"]
    assert a["GlobalIPv6Address"].startswith("fd") and a["GlobalIPv6PrefixLen"] == 64
    assert a["GlobalIPv6Address"] in nsx(ns, "ip -o -6 addr show eth0")
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)


def test_teardown_from_store_after_crash_and_recover(env):
    ns1, r1 = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", 18120)]))
    ns2, r2 = setup(env, 2, nw("bridge"))
    lines = backend.recover(env.store, [cid(2)], env.root, env.runroot)
    assert len(lines) == 1 and cid(1)[:12] in lines[0]
    assert list(env.store.read()["containers"]) == [cid(2)]
    assert r1["private"]["veths"][0] not in sh("ip -o link show")
    table = json.dumps(nft().run(rules.list_table(env.store.table)))
    assert "18120" not in table and "c-" + cid(1)[:24] not in table
    backend.teardown(env.store, cid(2), None, env.root, env.runroot)


def test_fifty_concurrent_containers(env):
    backend.create(env.store, "many")
    namespaces = [env.netns() for _ in range(50)]
    code = """
import sys, json
from pyrt_core.api import ContainerNetworking, NetworkAttachment, PortMapping
from pyrt_network import backend
from pyrt_network.store import Store
root, runroot, ns, cid, op = sys.argv[1:6]
st = Store(root)
if op == "up":
    n = ContainerNetworking(mode="networks", attachments=[NetworkAttachment("many")],
                            ports=[PortMapping(80, "tcp", "", 0)])
    print(json.dumps(backend.setup(st, cid, ns, n, root, runroot)))
else:
    backend.teardown(st, cid, None, root, runroot)
"""
    def run_all(op):
        procs = [subprocess.Popen([PY, "-c", code, env.root, env.runroot, env.path(ns), cid(i), op],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, ns in enumerate(namespaces)]
        outs = []
        for p in procs:
            o, e = p.communicate(timeout=300)
            assert p.returncode == 0, e
            outs.append(o)
        return outs

    t0 = time.monotonic()
    recs = [json.loads(o) for o in run_all("up")]
    took = time.monotonic() - t0
    ips = [ipof(r, "many") for r in recs]
    ports = [r["ports"][0]["host_port"] for r in recs]
    assert len(set(ips)) == 50 and len(set(ports)) == 50
    table = nft().run(rules.list_table(env.store.table))["nftables"]
    portmap = next(x["map"] for x in table if "map" in x and x["map"]["name"] == "ports")
    assert len(portmap["elem"]) == 50
    chains = [x["chain"]["name"] for x in table if "chain" in x]
    assert sum(c.startswith("c-") for c in chains) == 50
    # every container has its address and reaches the 50th
    env.spawn(namespaces[49], server_code(80, tag="last"))
    assert connect(namespaces[0], ips[49], 80) == f"last {ips[0]}"
    assert connect(None, "127.0.0.1", ports[49]) == f"last {recs[49]['networks']['many']['Gateway']}"
    run_all("down")
    state = env.store.read()
    assert state["containers"] == {} and state["ports"] == {}
    table = nft().run(rules.list_table(env.store.table))["nftables"]
    assert not [x for x in table if "chain" in x and x["chain"]["name"].startswith("c-")]
    print(f"50 concurrent setups: {took:.2f}s", file=sys.stderr)


def test_setup_time_flat_over_fifty_containers(env):
    """The 50th container's setup costs what the first's did: no per-container rule
    growth in the base chains (each publishes a port)."""
    backend.create(env.store, "flat")
    namespaces = [env.netns() for _ in range(50)]
    times = []
    for i, ns in enumerate(namespaces):
        t0 = time.perf_counter()
        backend.setup(env.store, cid(i), env.path(ns), nw("flat", ports=[PortMapping(80, "tcp", "", 0)]),
                      env.root, env.runroot)
        times.append(time.perf_counter() - t0)
    first = sorted(times[:5])[2]
    last = sorted(times[-5:])[2]
    print(f"setup: median of the first 5 {first * 1000:.1f} ms, of the last 5 {last * 1000:.1f} ms",
          file=sys.stderr)
    table = nft().run(rules.list_table(env.store.table))["nftables"]
    base = [x["rule"] for x in table if "rule" in x and x["rule"]["chain"] in
            ("prerouting", "output", "postrouting", "forward")]
    assert len(base) == 11  # the fixed rules, whatever the number of containers
    assert last < 2.5 * first + 0.02
    for i in range(50):
        backend.teardown(env.store, cid(i), None, env.root, env.runroot)


# -- two stores on one host, leftovers of a killed run -----------------------------------------

def _chains_rules(table: str) -> tuple[list[str], dict[str, int]]:
    out = nft().run(rules.list_table(table))["nftables"]
    chains = [x["chain"]["name"] for x in out if "chain" in x]
    counts: dict[str, int] = {}
    for x in out:
        if "rule" in x:
            counts[x["rule"]["chain"]] = counts.get(x["rule"]["chain"], 0) + 1
    return chains, counts


def test_two_stores_on_one_host_each_with_its_bridge_table_and_subnet(env, tmp_path):
    """Two stores (two --root) at once, each with a container on its default network
    publishing a port: their own bridge, table and subnet; removing one store's
    networks leaves the other's rules working (the second store used to adopt pyrt0
    and fail with "nftables: Could not process rule: File exists")."""
    from bridge_helpers import Env

    other = Env(str(tmp_path / "second-store"), env.base)
    try:
        assert (env.store.table, env.store.default_bridge) != (other.store.table,
                                                                 other.store.default_bridge)
        ns1, r1 = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", 18131)]))
        ns2, r2 = setup(other, 2, nw("bridge", ports=[PortMapping(80, "tcp", "", 18132)]))
        env.spawn(ns1, server_code(80, tag="first"))
        other.spawn(ns2, server_code(80, tag="second"))
        g1, g2 = r1["networks"]["bridge"]["Gateway"], r2["networks"]["bridge"]["Gateway"]
        assert g1 != g2  # the second store picked a free subnet of the pool
        assert f"master {env.store.default_bridge}" in sh("ip -o link show " + r1["private"]["veths"][0])
        assert f"master {other.store.default_bridge}" in sh("ip -o link show " + r2["private"]["veths"][0])
        assert connect(None, "127.0.0.1", 18131) == f"first {g1}"
        assert connect(None, "127.0.0.1", 18132) == f"second {g2}"
        # the second store goes away entirely: its table and bridge with it
        backend.teardown(other.store, cid(2), r2, other.root, other.runroot)
        backend.remove(other.store, "bridge", other.runroot, other.root)
        assert not nft().try_run(rules.list_table(other.store.table))
        assert other.store.default_bridge not in sh("ip -o link show")
        # the first store's rules are untouched and still carry traffic
        assert connect(None, "127.0.0.1", 18131) == f"first {g1}"
        assert connect(None, "127.0.0.1", 18132, timeout=1) == ""
        backend.teardown(env.store, cid(1), r1, env.root, env.runroot)
    finally:
        problems = other.cleanup()
    assert not problems, problems


def test_a_killed_runs_table_is_adopted(env):
    """A table of the store's name left by a killed run (its state gone, or its state
    kept and the table holding stale pieces) is adopted: no "File exists", the stale
    port element replaced, the base chains written once."""
    t = env.store.table
    T = {"family": "inet", "table": t}
    dead = "c-" + "ee" * 12
    leftover = [
        {"add": {"table": {"family": "inet", "name": t}}},
        {"add": {"chain": dict(T, name=dead)}},
        {"add": {"map": dict(T, name="ports", type=["inet_proto", "inet_service"], map="verdict")}},
        {"add": {"element": dict(T, name="ports", elem=[[{"concat": ["tcp", 18141]},
                                                          {"jump": {"target": dead}}]])}},
        {"add": {"chain": dict(T, name="prerouting", type="nat", hook="prerouting", prio=-100,
                               policy="accept")}},
        {"add": {"rule": dict(T, chain="prerouting", expr=[{"counter": None}])}},
    ]
    # 1. the state is gone (a fresh store of the same path): the table is replaced
    nft().run(leftover)
    ns1, r1 = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", 18141)]))
    env.spawn(ns1, server_code(80, tag="adopted"))
    assert connect(None, "127.0.0.1", 18141).startswith("adopted ")
    chains, counts = _chains_rules(t)
    assert dead not in chains and counts["prerouting"] == 1
    backend.teardown(env.store, cid(1), r1, env.root, env.runroot)
    # 2. the state kept (the network exists), a killed container start's pieces in the
    # table (its chain, its port's element): adopted, the element replaced.  (The base
    # chains are written in one transaction, never half: a network that is up is adopted
    # without writing them again, bench/network.py)
    nft().run(leftover[1:2] + leftover[3:4])
    ns2, r2 = setup(env, 2, nw("bridge", ports=[PortMapping(80, "tcp", "", 18141)]))
    env.spawn(ns2, server_code(80, tag="again"))
    assert connect(None, "127.0.0.1", 18141).startswith("again ")
    chains, counts = _chains_rules(t)
    assert counts["prerouting"] == 1 and counts["forward"] == 4
    backend.teardown(env.store, cid(2), r2, env.root, env.runroot)
    nft().try_run([{"delete": {"chain": dict(T, name=dead)}}])
    # 3. a second network of the store adopts the table the first made (add, not create)
    backend.create(env.store, "more")
    chains, counts = _chains_rules(t)
    assert counts["prerouting"] == 1 and counts["postrouting"] == 5


# -- published ports: two host addresses, hairpin, IPv6, disconnect ------------------------------

def test_one_port_on_two_host_addresses(env):
    """``-p 127.0.0.1:P:80 -p 127.0.0.2:P:80``: both answer, another address does not."""
    ns, rec = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "127.0.0.1", 18151),
                                                 PortMapping(80, "tcp", "127.0.0.2", 18151)]))
    assert [p["host_ip"] for p in rec["ports"]] == ["127.0.0.1", "127.0.0.2"]
    env.spawn(ns, server_code(80, tag="two"))
    assert connect(None, "127.0.0.1", 18151).startswith("two ")
    assert connect(None, "127.0.0.2", 18151).startswith("two ")
    assert connect(None, "127.0.0.3", 18151, timeout=1) == ""
    # the same port on the same address twice, or on every address and one, is refused
    for pair in ((("127.0.0.1", 18152), ("127.0.0.1", 18152)), (("", 18152), ("127.0.0.1", 18152))):
        with pytest.raises(UsageError, match="18152/tcp is published twice"):
            backend.validate(env.store, nw("bridge", ports=[PortMapping(80, "tcp", h, p) for h, p in pair]))
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)
    assert connect(None, "127.0.0.2", 18151, timeout=1) == ""
    assert env.store.read()["ports"] == {}


def test_hairpin_a_container_reaches_its_own_published_port(env):
    out_ns, host_ip, out_ip = env.outside()
    ns, rec = setup(env, 1, nw("bridge", ports=[PortMapping(80, "tcp", "", 18156)]))
    env.spawn(ns, server_code(80, tag="self"))
    gw = rec["networks"]["bridge"]["Gateway"]
    # through the host's address on a link and through its gateway's: DNAT back to itself
    for addr in (host_ip, gw):
        assert connect(ns, addr, 18156) in (f"self {gw}", f"self {ipof(rec)}"), addr
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)


def _server6(port: int, tag: str) -> str:
    return f"""
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", {port})); s.listen(8); print("ready", flush=True)
while True:
    c, a = s.accept(); c.recv(100); c.sendall(("{tag} " + a[0]).encode()); c.close()
"""


def _connect6(addr: str, port: int, timeout: float = 2.0) -> str:
    s = socket.socket(socket.AF_INET6)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        s.sendall(b"hi")
        return s.recv(200).decode()
    except OSError:
        return ""
    finally:
        s.close()


def test_ipv6_published_ports(env):
    """On an --ipv6 network a port published on every address answers on the host's
    IPv6 addresses too, and one published on an IPv6 address only there; [::1] and an
    IPv6 address on a network without IPv6 are refused before anything is made."""
    backend.create(env.store, "six", ipv6=True)
    net = next(n for n in backend.list_networks(env.store) if n["Name"] == "six")
    gw6 = next(c["Gateway"] for c in net["IPAM"]["Config"] if ":" in c["Subnet"])
    ns, rec = setup(env, 1, nw("six", ports=[PortMapping(80, "tcp", "", 18161),
                                              PortMapping(80, "tcp", gw6, 18162)]))
    a = rec["networks"]["six"]
    env.spawn(ns, _server6(80, "six"))
    # from the host to its own IPv6 address (the network's gateway): DNAT to the container
    assert _connect6(gw6, 18161).startswith("six ")
    assert _connect6(gw6, 18162).startswith("six ")
    assert connect(None, a["Gateway"], 18162, timeout=1) == ""  # IPv6 only
    assert connect(None, "127.0.0.1", 18161).startswith("six ")  # and IPv4 for "every address"
    for bad, msg in (("::1", "cannot publish a port on ::1: the kernel does not forward IPv6 loopback"),
                     (gw6, "network bridge has no IPv6 subnet")):
        n = nw("six" if bad == "::1" else "bridge", ports=[PortMapping(80, "tcp", bad, 18163)])
        with pytest.raises(UsageError, match=msg):
            backend.validate(env.store, n)
        with pytest.raises(UsageError, match=msg):
            setup(env, 2, n)
        assert list(env.store.read()["containers"]) == [cid(1)]
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)
    assert _connect6(gw6, 18161, timeout=1) == ""


def test_disconnect_moves_the_published_ports_then_removes_them(env):
    backend.create(env.store, "left")
    backend.create(env.store, "right")
    ns, rec = setup(env, 1, nw("left", "right", ports=[PortMapping(80, "tcp", "", 18171)]))
    env.spawn(ns, server_code(80, tag="moved"))
    gl, gr = rec["networks"]["left"]["Gateway"], rec["networks"]["right"]["Gateway"]
    assert connect(None, "127.0.0.1", 18171) == f"moved {gl}"
    rec = backend.disconnect(env.store, cid(1), "left", env.root, env.runroot)
    assert rec["ports"] == [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 18171}]
    assert connect(None, "127.0.0.1", 18171) == f"moved {gr}"  # now through "right"
    rec = backend.disconnect(env.store, cid(1), "right", env.root, env.runroot)
    assert rec["ports"] == [] and env.store.read()["ports"] == {}
    assert connect(None, "127.0.0.1", 18171, timeout=1) == ""
    assert "18171" not in json.dumps(nft().run(rules.list_table(env.store.table)))
    backend.teardown(env.store, cid(1), rec, env.root, env.runroot)


# -- name resolution: only on the container's own networks' gateways ------------------------------

def _ask(ns: str, server: str, name: str) -> str:
    """The A answers (or the rcode, or "timeout") of ``name`` asked from ``ns`` to
    ``server``:53 with dnslib."""
    code = nettools.dns_query_code(name, server)
    return subprocess.run(["ip", "netns", "exec", ns, PY, "-c", code], capture_output=True,
                          text=True, timeout=20).stdout.strip()


def test_resolver_answers_only_on_the_containers_own_networks(env):
    """aardvark-dns 1.4 answers a query sent to *another* network's gateway from that
    network's names; the input chain drops DNS from a bridge to a gateway that is not
    its own network's, so a container finds no name of a network it is not on."""
    pytest.importorskip("dnslib", reason="the test's DNS client: pip install dnslib")
    from pyrt_network import dns as dnsmod

    try:
        dnsmod.aardvark_binary()
    except PyrtError:
        pytest.skip("machine fact: aardvark-dns is not installed (apt-get install aardvark-dns)")
    backend.create(env.store, "front")
    backend.create(env.store, "back")
    ns1, r1 = setup(env, 1, nw("front", name="web"))
    ns2, r2 = setup(env, 2, nw("back", name="other"))
    gf, gb = r1["networks"]["front"]["Gateway"], r2["networks"]["back"]["Gateway"]
    assert _ask(ns1, gf, "web") == ipof(r1, "front")
    assert _ask(ns2, gb, "other") == ipof(r2, "back")
    assert _ask(ns2, gf, "web") == "timeout"  # front's resolver, asked from back
    assert _ask(ns1, gb, "other") == "timeout"
    for n in (1, 2):
        backend.teardown(env.store, cid(n), None, env.root, env.runroot)
