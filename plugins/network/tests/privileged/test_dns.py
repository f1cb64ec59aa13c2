"""Name resolution on the host (pyrt_network.dns, aardvark-dns): real queries from
containers' network namespaces to the resolver on their network's gateway.

Each test builds its own world and removes it: Linux bridges with a gateway address in
a free 10.213.x.0/24 (the "networks"), a network namespace per "container" joined to
its bridge by a veth pair, and an upstream DNS server (dnslib) on a loopback address
of the host, port 53, that records what it is asked.  Forwarded names go only to that
server: every container names it as its ``--dns`` server, or aardvark-dns runs with a
private /etc/resolv.conf that names it.  Queries are built and parsed by dnslib.
Nothing else on the network is ever asked.
"""
from __future__ import annotations

import ctypes
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pyrt_core.testing import machine

dns = machine.import_plugin_module("pyrt_network.dns", "pyrt-network")
dnslib = pytest.importorskip("dnslib", reason="the test client and upstream: pip install dnslib")
from dnslib import QTYPE, RR, A, DNSRecord  # noqa: E402
from dnslib.server import BaseResolver, DNSServer  # noqa: E402

pytestmark = machine.needs("root")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _taken_prefixes() -> str:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                         text=True).stdout
    out += subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    return out


class World:
    """Bridges, container namespaces and an upstream resolver, all removed at the end."""

    def __init__(self, runroot: str):
        self.runroot = runroot
        self.tag = uuid.uuid4().hex[:5]
        self.bridges: list[str] = []
        self.netns: list[str] = []
        self.veths: list[str] = []
        self.networks: dict[str, dict] = {}
        self.upstream_log: list[str] = []
        self.upstream: DNSServer | None = None
        self.upstream_ip = ""

    # -- networks and containers -----------------------------------------------------
    def network(self, name: str, internal: bool = False) -> dict:
        taken = _taken_prefixes()
        for _ in range(100):
            third = random.randint(1, 254)
            if f"10.213.{third}." not in taken and all(
                    f"10.213.{third}." not in n["IPAM"]["Config"][0]["Subnet"]
                    for n in self.networks.values()):
                break
        else:
            pytest.fail("no free 10.213.x.0/24 on this host")
        bridge = f"pyrt-td{self.tag}{len(self.bridges)}"
        ip("link", "add", bridge, "type", "bridge")
        self.bridges.append(bridge)
        ip("addr", "add", f"10.213.{third}.1/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        rec = {"Name": name, "Id": uuid.uuid4().hex * 2, "Internal": internal,
               "IPAM": {"Config": [{"Subnet": f"10.213.{third}.0/24",
                                    "Gateway": f"10.213.{third}.1"}]},
               "_bridge": bridge, "_next": 2}
        self.networks[name] = rec
        return rec

    def container(self, net: dict) -> tuple[str, str, str]:
        """A network namespace on ``net``'s bridge: (container id, namespace, address)."""
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        ns = f"pyrt-t-{cid[:10]}"
        ip("netns", "add", ns)
        self.netns.append(ns)
        host = f"pyrt-tv{self.tag}{len(self.veths)}"
        ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.veths.append(host)
        ip("link", "set", host, "master", net["_bridge"], "up")
        addr = net["IPAM"]["Config"][0]["Gateway"].rsplit(".", 1)[0] + f".{net['_next']}"
        net["_next"] += 1
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        return cid, ns, addr

    # -- the upstream resolver (what "the host's resolvers" are in these tests) -----
    def start_upstream(self) -> str:
        log = self.upstream_log

        class Upstream(BaseResolver):
            def resolve(self, request, handler):
                reply = request.reply()
                qname = str(request.q.qname)
                log.append(qname)
                if qname.startswith("outside."):
                    reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("198.51.100.7"),
                                        ttl=60))
                return reply

        class Quiet:
            def __getattr__(self, name):
                return lambda *a, **k: None

        for _ in range(50):
            addr = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
            try:
                server = DNSServer(Upstream(), address=addr, port=53, logger=Quiet())
            except OSError:
                continue
            server.start_thread()
            self.upstream, self.upstream_ip = server, addr
            return addr
        pytest.fail("no free loopback address for the upstream resolver")

    # -- asking -----------------------------------------------------------------------
    def add_ipv6(self, net: dict, ns: str | None = None, host: int = 1) -> str:
        """An IPv6 address on ``net``'s bridge (``ns`` None) or a container's eth0, and the
        subnet in ``net``'s record (no duplicate address detection: usable at once)."""
        prefix = net.setdefault("_v6", f"fd13:{random.randint(1, 0xffff):x}:"
                                       f"{random.randint(1, 0xffff):x}::")
        if ns is None:
            net["IPAM"]["Config"].append({"Subnet": prefix + "/64", "Gateway": prefix + "1"})
            ip("addr", "add", prefix + "1/64", "dev", net["_bridge"], "nodad")
            return prefix + "1"
        ip("-n", ns, "addr", "add", f"{prefix}{host:x}/64", "dev", "eth0", "nodad")
        return f"{prefix}{host:x}"

    def socket_in(self, ns: str, family=None):
        """A UDP socket made inside the namespace ``ns`` (a thread that joins it)."""
        import socket

        box: dict = {}

        def make():
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    box["error"] = OSError(ctypes.get_errno(), "setns")
                    return
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family or socket.AF_INET, socket.SOCK_DGRAM)

        t = threading.Thread(target=make)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["sock"]

    def ask(self, ns: str, server: str, name: str, qtype: str = "A") -> tuple[str, list[str]]:
        """(rcode, answers) of ``name`` asked from namespace ``ns`` to ``server``:53."""
        import socket

        sock = self.socket_in(ns, socket.AF_INET6 if ":" in server else socket.AF_INET)
        try:
            sock.settimeout(3)
            query = DNSRecord.question(name, qtype)
            sock.sendto(query.pack(), (server, 53))
            while True:
                data, _ = sock.recvfrom(4096)
                reply = DNSRecord.parse(data)
                if reply.header.id == query.header.id:
                    break
        finally:
            sock.close()
        return (dnslib.RCODE.get(reply.header.rcode),
                sorted(str(rr.rdata) for rr in reply.rr))

    # -- the end ----------------------------------------------------------------------
    def close(self) -> None:
        for instance in dns.INSTANCES:
            pid = dns.running_pid(self.runroot, instance)
            if pid:
                os.kill(pid, signal.SIGKILL)
        if self.upstream:
            self.upstream.stop()
            self.upstream.server.server_close()
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for dev in self.veths + self.bridges:
            subprocess.run(["ip", "link", "del", dev], capture_output=True)


@pytest.fixture
def world(tmp_path):
    w = World(str(tmp_path / "run"))
    try:
        yield w
    finally:
        w.close()


def _gw(net: dict) -> str:
    return net["IPAM"]["Config"][0]["Gateway"]


def _sockets_on(addr: str) -> bool:
    return (addr, 53) in dns._udp_sockets()


def test_names_and_aliases_resolve_on_the_shared_network(world):
    up = world.start_upstream()
    net = world.network("front")
    web, web_ns, web_ip = world.container(net)
    db, db_ns, db_ip = world.container(net)
    got = dns.attach("/unused", world.runroot, net, web, [web_ip, "fd13::2"],
                     ["web", "WebAlias", web[:12]], dns_servers=[up])
    assert got == [_gw(net)]
    assert dns.attach("/unused", world.runroot, net, db, [db_ip], ["db", db[:12]],
                      dns_servers=[up]) == [_gw(net)]
    gw = _gw(net)
    assert world.ask(db_ns, gw, "web") == ("NOERROR", [web_ip])
    assert world.ask(db_ns, gw, "webalias.") == ("NOERROR", [web_ip])
    assert world.ask(db_ns, gw, "WEBALIAS") == ("NOERROR", [web_ip])
    assert world.ask(db_ns, gw, web[:12]) == ("NOERROR", [web_ip])
    assert world.ask(db_ns, gw, "web", "AAAA") == ("NOERROR", ["fd13::2"])
    assert world.ask(web_ns, gw, "db") == ("NOERROR", [db_ip])
    assert world.ask(web_ns, gw, "nosuch") == ("NXDOMAIN", [])
    assert world.upstream_log == []  # a one-label name is never forwarded


def test_ipv6_gateway_answers_aaaa(world):
    """A dual-stack network: the resolver answers on both gateways, from the container's
    IPv6 address too (aardvark-dns knows it by either)."""
    up = world.start_upstream()
    net = world.network("dual")
    gw6 = world.add_ipv6(net)
    web, web_ns, web_ip = world.container(net)
    db, db_ns, db_ip = world.container(net)
    web6, db6 = world.add_ipv6(net, web_ns, 2), world.add_ipv6(net, db_ns, 3)
    assert dns.attach("/u", world.runroot, net, web, [web_ip, web6], ["web"],
                      dns_servers=[up]) == [_gw(net), gw6]
    dns.attach("/u", world.runroot, net, db, [db_ip, db6], ["db"], dns_servers=[up])
    assert _sockets_on(gw6)
    assert world.ask(db_ns, gw6, "web", "AAAA") == ("NOERROR", [web6])
    assert world.ask(db_ns, gw6, "web") == ("NOERROR", [web_ip])
    assert world.ask(web_ns, _gw(net), "db", "AAAA") == ("NOERROR", [db6])
    dns.detach("/u", world.runroot, "dual", web)
    dns.detach("/u", world.runroot, "dual", db)
    assert not _sockets_on(gw6) and dns.running_pid(world.runroot) is None


def test_a_container_on_another_network_does_not_resolve_them(world):
    up = world.start_upstream()
    front, back = world.network("front"), world.network("back")
    web, web_ns, web_ip = world.container(front)
    other, other_ns, other_ip = world.container(back)
    dns.attach("/u", world.runroot, front, web, [web_ip], ["web"], dns_servers=[up])
    assert dns.attach("/u", world.runroot, back, other, [other_ip], ["other"],
                      dns_servers=[up]) == [_gw(back)]
    # one aardvark-dns serves both networks, each on its own gateway
    assert _sockets_on(_gw(front)) and _sockets_on(_gw(back))
    assert world.ask(other_ns, _gw(back), "web") == ("NXDOMAIN", [])
    assert world.ask(other_ns, _gw(back), "other") == ("NOERROR", [other_ip])
    assert world.ask(web_ns, _gw(front), "other") == ("NXDOMAIN", [])
    assert world.upstream_log == []


def test_a_container_on_two_networks_resolves_both(world):
    up = world.start_upstream()
    front, back = world.network("front"), world.network("back")
    web, web_ns, web_ip = world.container(front)
    db, db_ns, db_ip = world.container(back)
    both, both_ns, both_ip = world.container(front)
    dns.attach("/u", world.runroot, front, web, [web_ip], ["web"], dns_servers=[up])
    dns.attach("/u", world.runroot, back, db, [db_ip], ["db"], dns_servers=[up])
    # "both" has its eth0 on front; its address on back is only registered here
    dns.attach("/u", world.runroot, front, both, [both_ip], ["both"], dns_servers=[up])
    dns.attach("/u", world.runroot, back, both, ["10.213.0.250"], ["both"],
               dns_servers=[up])
    assert world.ask(both_ns, _gw(front), "web") == ("NOERROR", [web_ip])
    assert world.ask(both_ns, _gw(front), "db") == ("NOERROR", [db_ip])
    assert world.ask(web_ns, _gw(front), "db") == ("NXDOMAIN", [])


def test_unknown_names_are_forwarded_to_the_containers_dns_servers(world):
    up = world.start_upstream()
    net = world.network("front")
    web, web_ns, web_ip = world.container(net)
    dns.attach("/u", world.runroot, net, web, [web_ip], ["web"], dns_servers=[up])
    assert world.ask(web_ns, _gw(net), "outside.example.test") == ("NOERROR", ["198.51.100.7"])
    assert world.ask(web_ns, _gw(net), "missing.example.test") == ("NOERROR", [])
    assert world.upstream_log == ["outside.example.test.", "missing.example.test."]


def test_unknown_names_go_to_the_hosts_resolvers(world, tmp_path):
    """Without ``--dns``, aardvark-dns forwards to the host's /etc/resolv.conf: here a
    private one (a mount namespace of the process that starts it) naming the test's
    upstream, so the host's real resolvers are never asked."""
    up = world.start_upstream()
    net = world.network("front")
    web, web_ns, web_ip = world.container(net)
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {up}\n")
    code = (f"import json, sys; from pyrt_network import dns; "
            f"print(dns.attach('/u', {world.runroot!r}, json.loads(sys.argv[1]), "
            f"{web!r}, [{web_ip!r}], ['web']))")
    import json

    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f'mount --bind "$0" /etc/resolv.conf && exec "$1" -c "$2" "$3"', str(conf),
         sys.executable, code, json.dumps(net)],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert world.ask(web_ns, _gw(net), "outside.example.test") == ("NOERROR", ["198.51.100.7"])
    assert world.upstream_log == ["outside.example.test."]
    dns.detach("/u", world.runroot, "front", web)
    assert dns.running_pid(world.runroot) is None


def test_an_internal_network_forwards_nothing(world):
    up = world.start_upstream()
    net = world.network("secret", internal=True)
    a, a_ns, a_ip = world.container(net)
    b, b_ns, b_ip = world.container(net)
    dns.attach("/u", world.runroot, net, a, [a_ip], ["alpha"], dns_servers=[up])
    dns.attach("/u", world.runroot, net, b, [b_ip], ["beta"], dns_servers=[up])
    assert dns.running_pid(world.runroot, "aardvark-dns") is None
    assert dns.running_pid(world.runroot, "aardvark-dns-internal")
    assert world.ask(a_ns, _gw(net), "beta") == ("NOERROR", [b_ip])
    assert world.ask(a_ns, _gw(net), "outside.example.test") == ("NXDOMAIN", [])
    assert world.upstream_log == []
    dns.network_removed("/u", world.runroot, "secret")
    assert dns.running_pid(world.runroot, "aardvark-dns-internal") is None


def test_detach_removes_the_name_and_the_last_container_stops_the_resolver(world):
    up = world.start_upstream()
    front, back = world.network("front"), world.network("back")
    web, web_ns, web_ip = world.container(front)
    db, db_ns, db_ip = world.container(front)
    other, other_ns, other_ip = world.container(back)
    for cid, addr, name, net in ((web, web_ip, "web", front), (db, db_ip, "db", front),
                                 (other, other_ip, "other", back)):
        dns.attach("/u", world.runroot, net, cid, [addr], [name], dns_servers=[up])
    pid = dns.running_pid(world.runroot)
    dns.detach("/u", world.runroot, "front", web)
    assert world.ask(db_ns, _gw(front), "web") == ("NXDOMAIN", [])
    assert world.ask(db_ns, _gw(front), "db") == ("NOERROR", [db_ip])
    dns.detach("/u", world.runroot, "front", web)  # idempotent
    dns.detach("/u", world.runroot, "front", db)
    # front's resolver is gone, back's still answers, from the same daemon
    assert not _sockets_on(_gw(front))
    assert dns.running_pid(world.runroot) == pid
    assert world.ask(other_ns, _gw(back), "other") == ("NOERROR", [other_ip])
    dns.detach("/u", world.runroot, "back", other)
    assert dns.running_pid(world.runroot) is None
    assert not dns._proc_alive(pid)
    assert not _sockets_on(_gw(back))
    confdir = os.path.join(world.runroot, "networks", "aardvark-dns")
    assert os.listdir(confdir) == []
    assert os.listdir(os.path.join(world.runroot, "networks", "aardvark-dns.staging")) == []


def test_recover_after_the_resolver_is_killed(world):
    up = world.start_upstream()
    net = world.network("front")
    web, web_ns, web_ip = world.container(net)
    db, db_ns, db_ip = world.container(net)
    dns.attach("/u", world.runroot, net, web, [web_ip], ["web"], dns_servers=[up])
    dns.attach("/u", world.runroot, net, db, [db_ip], ["db"], dns_servers=[up])
    pid = dns.running_pid(world.runroot)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while dns._proc_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dns.running_pid(world.runroot) is None
    # web still lives, db died with the crash
    done = dns.recover("/u", world.runroot, {"front": [web]})
    assert f"dns: removed the names of container {db[:12]} from network front" in done
    assert any(line.startswith("dns: started aardvark-dns") for line in done), done
    new = dns.running_pid(world.runroot)
    assert new and new != pid
    assert world.ask(web_ns, _gw(net), "web") == ("NOERROR", [web_ip])
    assert world.ask(web_ns, _gw(net), "db") == ("NXDOMAIN", [])
    assert dns.recover("/u", world.runroot, {"front": [web]}) == []  # nothing to do
    # nothing lives any more: the resolver stops
    done = dns.recover("/u", world.runroot, {})
    assert any(line.startswith("dns: stopped aardvark-dns") for line in done), done
    assert dns.running_pid(world.runroot) is None and not dns._proc_alive(new)


def test_recover_removes_half_written_files(world):
    net = world.network("front")
    web, web_ns, web_ip = world.container(net)
    up = world.start_upstream()
    dns.attach("/u", world.runroot, net, web, [web_ip], ["web"], dns_servers=[up])
    staged = os.path.join(world.runroot, "networks", "aardvark-dns.staging",
                          "aardvark-dns.net_front")
    with open(staged, "w") as f:
        f.write("10.213")
    done = dns.recover("/u", world.runroot, {"front": [web]})
    assert done == ["dns: removed the half-written aardvark-dns.net_front"]
    assert world.ask(web_ns, _gw(net), "web") == ("NOERROR", [web_ip])


def test_concurrent_attach_and_detach_lose_nothing(world):
    up = world.start_upstream()
    net = world.network("busy")
    asker, asker_ns, asker_ip = world.container(net)
    dns.attach("/u", world.runroot, net, asker, [asker_ip], ["asker"], dns_servers=[up])
    members = [(uuid.uuid4().hex, f"10.213.0.{i + 10}", f"c{i}") for i in range(16)]
    errors: list[BaseException] = []

    def join(cid, addr, name):
        try:
            dns.attach("/u", world.runroot, net, cid, [addr], [name], dns_servers=[up])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=join, args=m) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for cid, addr, name in members:
        assert world.ask(asker_ns, _gw(net), name) == ("NOERROR", [addr])
    threads = [threading.Thread(target=dns.detach, args=("/u", world.runroot, "busy", cid))
               for cid, _, _ in members[::2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (cid, addr, name) in enumerate(members):
        want = ("NXDOMAIN", []) if i % 2 == 0 else ("NOERROR", [addr])
        assert world.ask(asker_ns, _gw(net), name) == want


def test_a_gateway_that_is_not_up_fails_cleanly(world):
    """attach refuses (one clear error) when the resolver cannot bind the gateway, and
    leaves neither the entry nor a daemon behind."""
    net = {"Name": "ghost", "Id": "0" * 64, "Internal": False,
           "IPAM": {"Config": [{"Subnet": "10.213.0.0/24", "Gateway": "10.213.0.1"}]}}
    if _sockets_on("10.213.0.1") or "10.213.0.1" in _taken_prefixes():
        pytest.fail("10.213.0.1 is in use on this host")
    with pytest.raises(dns.DNSError, match="did not answer on 10.213.0.1 port 53"):
        dns.attach("/u", world.runroot, net, "ab" * 32, ["10.213.0.2"], ["ghost1"])
    assert dns.running_pid(world.runroot) is None
    assert os.listdir(os.path.join(world.runroot, "networks", "aardvark-dns")) == []
