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
    PortMapping, UsageError
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
    assert "master pyrt0" in sh("ip -o link show " + rec["private"]["veths"][0])
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
        "com.docker.network.bridge.name"] == "pyrt0"
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
    table = json.dumps(nft().run(rules.list_table()))
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
    table = nft().run(rules.list_table())["nftables"]
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
    table = nft().run(rules.list_table())["nftables"]
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
    table = nft().run(rules.list_table())["nftables"]
    base = [x["rule"] for x in table if "rule" in x and x["rule"]["chain"] in
            ("prerouting", "output", "postrouting", "forward")]
    assert len(base) == 10  # the fixed rules, whatever the number of containers
    assert last < 2.5 * first + 0.02
    for i in range(50):
        backend.teardown(env.store, cid(i), None, env.root, env.runroot)
