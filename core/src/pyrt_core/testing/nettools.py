"""Tools of the network conformance suite (:mod:`pyrt_core.testing.network_conformance`),
usable by a network plugin's own tests too: test-made network namespaces, a tiny TCP
server and client that run in them or on the host, free subnets and ports, and a
snapshot of what a network backend may leave behind on the host.

Network safety (docs/testing.md): the traffic these tools make goes only to loopback
and to network namespaces the test made itself, and the subnets they pick overlap no
route of the host.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import secrets
import select
import socket
import subprocess
import sys
import time

#: the pool free test subnets are chosen from (10.200.0.0 - 10.250.255.255): private,
#: rarely routed; a subnet that overlaps any route of the host is never chosen
TEST_POOL = (200, 250)

SERVER = r"""
import socket, sys
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(64)
print("ready", s.getsockname()[1], flush=True)
while True:
    c, peer = s.accept()
    try:
        c.sendall(("pyrt-conformance %s %s\n" % (token, peer[0])).encode())
    except OSError:
        pass
    c.close()
"""

CLIENT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    c.settimeout(float(sys.argv[3]))
    print(c.recv(200).decode().strip())
except OSError as e:
    print("ERR", e)
    sys.exit(1)
"""


def ns_argv(netns: str | None, argv: list[str]) -> list[str]:
    """``argv`` run in the network namespace at ``netns`` (None: the host's)."""
    return argv if netns is None else ["nsenter", f"--net={netns}", "--", *argv]


def ns_run(netns: str | None, *argv: str, check: bool = True,
           timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(ns_argv(netns, list(argv)), capture_output=True, text=True,
                          check=check, timeout=timeout)


def new_netns() -> str:
    """A fresh named network namespace (``ip netns add pyrt-t-<random>``); its path."""
    name = "pyrt-t-" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    path = f"/run/netns/{name}"
    ns_run(path, "ip", "link", "set", "lo", "up")
    return path


def del_netns(path: str) -> None:
    name = os.path.basename(path)
    if os.path.exists(path):
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def ns_links(netns: str | None) -> list[dict]:
    """``ip -j addr show`` in the namespace: its interfaces with their addresses."""
    return json.loads(ns_run(netns, "ip", "-j", "addr", "show").stdout or "[]")


def ns_default_gateway(netns: str) -> str | None:
    routes = json.loads(ns_run(netns, "ip", "-j", "-4", "route", "show", "default").stdout or "[]")
    return routes[0].get("gateway") if routes else None


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


class Server:
    """A TCP server (:data:`SERVER`) in a namespace or on the host: each connection
    gets ``pyrt-conformance TOKEN PEER-ADDRESS``.  Stopped by :meth:`stop` (its pid)."""

    def __init__(self, netns: str | None, host: str, port: int = 0):
        self.token = secrets.token_hex(4)
        self.proc = subprocess.Popen(ns_argv(netns, [sys.executable, "-c", SERVER, host,
                                                     str(port), self.token]),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            self.stop()
            raise AssertionError(f"test server on {host}:{port} did not start: "
                                 f"{line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.port = int(line.split()[1])

    def answered(self, reply: str | None) -> bool:
        return bool(reply) and reply.split()[:2] == ["pyrt-conformance", self.token]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()


def connect(netns: str | None, host: str, port: int, timeout: float = 3.0) -> str | None:
    """Connect to ``host:port`` from the namespace (None: from the host) and return the
    server's line, None when nothing answered."""
    if netns is None:
        try:
            with socket.create_connection((host, port), timeout=timeout) as c:
                c.settimeout(timeout)
                return c.recv(200).decode().strip() or None
        except OSError:
            return None
    r = ns_run(netns, sys.executable, "-c", CLIENT, host, str(port), str(timeout),
               check=False, timeout=timeout + 15)
    out = r.stdout.strip()
    return out if r.returncode == 0 and out else None


def dns_query_code(name: str, server: str) -> str:
    """Python code (for an interpreter in a test's namespace) that asks ``server``:53 for
    ``name``'s A records with dnslib and prints the answers, sorted (or the rcode, or
    "timeout")."""
    return f"""
import socket
from dnslib import DNSRecord, RCODE
q = DNSRecord.question({name!r}, "A")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
try:
    s.sendto(q.pack(), ({server!r}, 53)); r = DNSRecord.parse(s.recvfrom(4096)[0])
    print(" ".join(sorted(str(x.rdata) for x in r.rr)) or RCODE.get(r.header.rcode))
except socket.timeout:
    print("timeout")
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (bound and released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def host_routes(table: str = "all") -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination routed by the host (in ``table``: all of them unless
    named; the default route left out)."""
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", table],
                                       capture_output=True, text=True, check=True).stdout or "[]")
    out = []
    for r in routes:
        dst = r.get("dst", "")
        if not dst or dst == "default":
            continue
        try:
            out.append(ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False))
        except ValueError:
            continue
    return out


def free_subnet(taken=(), prefix: int = 24) -> str:
    """A private IPv4 subnet of :data:`TEST_POOL` that overlaps no host route and
    nothing in ``taken`` (subnets as strings)."""
    busy = host_routes() + [ipaddress.ip_network(t, strict=False) for t in taken if t]
    for _ in range(2000):
        a, b = random.randint(*TEST_POOL), random.randint(0, 255)
        if prefix >= 24:
            off = random.randrange(0, 256, 2 ** (32 - prefix))
            net = ipaddress.ip_network(f"10.{a}.{b}.{off}/{prefix}")
        else:
            net = ipaddress.ip_network(f"10.{a}.{b}.0/{prefix}", strict=False)
        if not any(net.overlaps(b) for b in busy if b.version == 4):
            return str(net)
    raise AssertionError("no free test subnet in 10.200.0.0-10.250.255.255")


# -- what a backend may leave behind ------------------------------------------------------
_COUNTER = re.compile(r"counter packets \d+ bytes \d+")


def nft_items() -> set[str]:
    """The host's nftables ruleset as "table F T", "chain F T C", "rule F T C: TEXT"
    (counters left out), so a comparison shows a table, chain or rule a test added."""
    r = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
    if r.returncode != 0:
        return set()
    out: set[str] = set()
    table = chain = ""
    for raw in r.stdout.splitlines():
        line = _COUNTER.sub("counter", raw.strip())
        if not line or line.startswith("#"):
            continue
        if line.startswith("table "):
            table, chain = line[6:].rstrip(" {"), ""
            out.add("nft table " + table)
        elif line.startswith(("chain ", "set ", "map ", "flowtable ")) and line.endswith("{"):
            chain = line.rstrip(" {")
            out.add(f"nft {table} {chain}")
        elif line == "}":
            if chain:
                chain = ""
            else:
                table = ""
        elif chain and not line.startswith(("type ", "policy ", "flags ", "elements ")):
            out.add(f"nft {table} {chain}: {line}")
    return out


def host_state() -> set[str]:
    """Interfaces, named network namespaces and nftables items of the host."""
    out = {"link " + n for n in host_links()}
    try:
        out |= {"netns " + n for n in os.listdir("/run/netns")}
    except OSError:
        pass
    return out | nft_items()


#: the tables the iptables tool (iptables-nft) makes on first use and never deletes,
#: even once its chains are gone: CNI's plugins (portmap, firewall, bridge's ipMasq)
#: drive it, so a backend using them leaves them behind on a host that had none
IPTABLES_TABLES = ("ip nat", "ip filter", "ip6 nat", "ip6 filter", "ip mangle", "ip6 mangle")


def drop_idle_iptables_tables(before: set[str]) -> None:
    """Delete the iptables tables that were not there in ``before`` and hold no rule
    now (their base chains only: what iptables leaves): the test's trace on a fresh
    host, not a leak of the backend (a rule left in them still is)."""
    now = nft_items()
    for table in IPTABLES_TABLES:
        if f"nft table {table}" in now and f"nft table {table}" not in before \
                and not any(i.startswith(f"nft {table} ") and ": " in i for i in now):
            subprocess.run(["nft", "delete", "table", *table.split()], capture_output=True)


def new_since(before: set[str], wait: float = 5.0) -> list[str]:
    """What is in :func:`host_state` now and was not in ``before``, after giving the
    kernel up to ``wait`` seconds (a namespace's interfaces go away asynchronously).
    Idle iptables tables a fresh host did not have are deleted first
    (:func:`drop_idle_iptables_tables`)."""
    drop_idle_iptables_tables(before)
    deadline = time.monotonic() + wait
    while True:
        new = sorted(host_state() - before)
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.2)
