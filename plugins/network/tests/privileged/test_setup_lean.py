"""A container's network setup loads none of pyroute2's socket classes (``IPRoute``
imports asyncio, ssl, multiprocessing...: ~80 ms of every ``run -d`` on a network): the
requests are pyroute2 messages on a socket of pyrt_network.rtnl's own.

Each step is a process of its own, as ``pyrt run -d`` is: the first container's start
makes the default network (its bridge, its nftables table), the second's finds it up,
the third process tears both down and removes the network; pyrt_network.backend does
all of it, in a network namespace of the test's own ("the host", run with ``ip netns
exec`` so that /sys is its own) with a namespace per container, all removed after.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.plugin", "pyrt-network")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and ip (iproute2)")

HEAVY = ("asyncio", "ssl", "pyroute2.iproute.linux", "pyroute2.netlink.nlsocket", "pyroute2.ndb")

STEP = """
import json, sys
from pyrt_core.api import ContainerNetworking, NetworkAttachment
from pyrt_network import backend
from pyrt_network.store import Store
step, root, netns, cid = sys.argv[1:5]
store = Store(root)
out = {}
if step == "setup":
    nw = ContainerNetworking(mode="networks", attachments=[NetworkAttachment("bridge")])
    out["record"] = backend.setup(store, cid, netns, nw, root, root + "/run")
else:
    for c in cid.split(","):
        backend.teardown(store, c, None, root, root + "/run")
    backend.remove(store, "bridge", root + "/run", root)
    out["left"] = store.read()
out["heavy"] = sorted(m for m in %r if m in sys.modules)
out["pyroute2"] = "pyroute2.netlink.rtnl.ifinfmsg" in sys.modules
print(json.dumps(out))
""" % (HEAVY,)


def _ns() -> str:
    name = f"pyrt-t-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def test_a_start_on_a_network_that_is_up_loads_no_iproute(tmp_path):
    host, c1, c2 = _ns(), _ns(), _ns()
    env = dict(os.environ, PYRT_NETWORK_POOL="10.213.0.0/16/24")
    env.pop("PYRT_NETWORK_BACKEND", None)

    def step(*args):
        r = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", STEP, *args], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    try:
        first = step("setup", str(tmp_path), f"/run/netns/{c1}", "a1" * 32)  # makes the network
        second = step("setup", str(tmp_path), f"/run/netns/{c2}", "b2" * 32)  # finds it up
        addr = json.loads(subprocess.run(["ip", "-n", c2, "-j", "-4", "addr", "show", "eth0"],
                                         capture_output=True, text=True, check=True).stdout)
        route = json.loads(subprocess.run(["ip", "-n", c2, "-j", "route", "show", "default"],
                                          capture_output=True, text=True, check=True).stdout)
        last = step("teardown", str(tmp_path), "", f"{'a1' * 32},{'b2' * 32}")
    finally:
        for ns in (c2, c1, host):
            subprocess.run(["ip", "netns", "del", ns], check=False)
    for s in (first, second, last):
        assert s["heavy"] == [] and s["pyroute2"], s  # pyroute2's messages, not its sockets
    ip = second["record"]["networks"]["bridge"]["IPAddress"]
    assert ip.startswith("10.213.") and ip != first["record"]["networks"]["bridge"]["IPAddress"]
    assert [(a["local"], a["prefixlen"]) for a in addr[0]["addr_info"]] == [(ip, 24)]
    assert route[0]["gateway"] == second["record"]["networks"]["bridge"]["Gateway"]
    assert last["left"]["containers"] == {} and last["left"]["networks"] == {}
