"""Helpers of pyrt-network's privileged tests: network namespaces the test makes (the
"containers", and an "outside" host routed through this one), a store under a temporary
root, a test subnet pool chosen free at run time, and a clean-up that tears everything
down and checks that pyrt's table, bridges and veths are gone (a module of its own,
not conftest.py: test modules import it, and "conftest" is not a unique module name
in a run of every tier).

Network safety: traffic only goes to loopback and to the namespaces made here.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import uuid

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.plugin", "pyrt-network")
from pyrt_network import backend, netlink, rules  # noqa: E402
from pyrt_network.nft import nft  # noqa: E402
from pyrt_network.store import Store  # noqa: E402

PY = sys.executable


def free_base() -> ipaddress.IPv4Network:
    """A 10.x.0.0/16 that overlaps no route of the host."""
    routes = [ipaddress.ip_network(c) for c, _ in netlink.host_routes() if ":" not in c]
    for x in range(213, 250):
        net = ipaddress.ip_network(f"10.{x}.0.0/16")
        if not any(net.overlaps(r) for r in routes):
            return net
    pytest.skip("no free 10.x.0.0/16 test range on this host")


class Env:
    def __init__(self, root: str, base: ipaddress.IPv4Network):
        self.root = root
        self.runroot = os.path.join(root, "run")
        self.store = Store(root)
        self.base = base
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.links: list[str] = []

    def netns(self) -> str:
        name = f"pyrt-t-{uuid.uuid4().hex[:10]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.namespaces.append(name)
        return name

    @staticmethod
    def path(ns: str) -> str:
        return f"/run/netns/{ns}"

    def outside(self) -> tuple[str, str, str]:
        """An "outside" host: a namespace joined to this one by a veth pair on a /30 of
        the test range; (namespace, the host's address there, the outside's)."""
        ns = self.netns()
        sub = list(self.base.subnets(new_prefix=30))[-1 - len(self.links)]
        host_ip, out_ip = str(sub.network_address + 1), str(sub.network_address + 2)
        link = f"pyrtt{uuid.uuid4().hex[:8]}"
        peer = "pyrto" + link[5:]
        sh(f"ip link add {link} type veth peer name {peer} netns {ns}")
        self.links.append(link)
        sh(f"ip addr add {host_ip}/30 dev {link}; ip link set {link} up")
        nsx(ns, f"ip addr add {out_ip}/30 dev {peer}; ip link set {peer} up; ip link set lo up")
        return ns, host_ip, out_ip

    def spawn(self, ns: str, code: str) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline()  # the server says "ready" once bound
        assert line.strip() == "ready", p.stderr.read()
        return p

    def cleanup(self) -> list[str]:
        problems = []
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                f and f.close()
        state = self.store.read()
        mine = {self.store.default_bridge} | {n["private"]["bridge"] for n in state["networks"].values()}
        mine |= {a["veth"] for e in state["containers"].values() for a in e["networks"].values()}
        for cid in list(state["containers"]):
            problems.append(f"container {cid[:12]} left in the store")
            backend.teardown(self.store, cid, None, self.root, self.runroot)
        for name in list(self.store.read()["networks"]):
            backend.remove(self.store, name, self.runroot, self.root)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        if nft().try_run(rules.list_table(self.store.table)):
            problems.append(f"table inet {self.store.table} left")
            nft().try_run(rules.delete_table(self.store.table))
        # this store's bridges and veths (another store's may be up: the two-store test;
        # any other interface left is the leak guard's to report)
        left = [l for l in sh("ip -o link show").splitlines() if l.split(":")[1].strip().split("@")[0] in mine]
        if left:
            problems.append(f"links left: {left}")
        return problems


def sh(cmd: str) -> str:
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout


def nsx(ns: str, cmd: str) -> str:
    return sh(f"ip netns exec {ns} sh -c '{cmd}'")


def connect(ns: str, ip: str, port: int, proto: str = "tcp", timeout: float = 2.0) -> str:
    """From namespace ``ns`` (None: the host), send "hi" to ip:port and return the reply
    ("" when nothing answered)."""
    code = _client_code(ip, port, proto, timeout)
    argv = ([PY, "-c", code] if ns is None else ["ip", "netns", "exec", ns, PY, "-c", code])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
    return r.stdout.strip()


def _client_code(ip, port, proto, timeout):
    kind = "SOCK_STREAM" if proto == "tcp" else "SOCK_DGRAM"
    return f"""
import socket
s = socket.socket(socket.AF_INET, socket.{kind})
s.settimeout({timeout})
try:
    if "{proto}" == "tcp":
        s.connect(("{ip}", {port})); s.sendall(b"hi"); print(s.recv(200).decode())
    else:
        s.sendto(b"hi", ("{ip}", {port})); print(s.recvfrom(200)[0].decode())
except OSError as e:
    print("")
"""


def server_code(port: int, proto: str = "tcp", tag: str = "srv", ip: str = "0.0.0.0") -> str:
    """A server that answers each message with "<tag> <peer address>"."""
    if proto == "tcp":
        return f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{ip}", {port})); s.listen(64); print("ready", flush=True)
while True:
    c, a = s.accept(); c.recv(100); c.sendall(("{tag} " + a[0]).encode()); c.close()
"""
    return f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("{ip}", {port})); print("ready", flush=True)
while True:
    d, a = s.recvfrom(100); s.sendto(("{tag} " + a[0]).encode(), a)
"""
