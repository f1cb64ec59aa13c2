"""A container's network teardown deletes its veth without pyroute2's socket classes
(``IPRoute`` imports asyncio, ssl, multiprocessing...: ~80 ms of every ``stop``): an
interface that is not there is seen with if_nametoindex(3), and the RTM_DELLINK request
goes through pyroute2's message classes on a netlink socket of netlink.delete_link's own.
Each case runs in a network namespace of its own (``unshare -n``): no host interface is
touched."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.netlink", "pyrt-network")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                                reason="needs root, unshare and ip (util-linux, iproute2)")

CODE = """
import subprocess, sys
run = lambda *a: subprocess.run(a, check=True, capture_output=True)
run("ip", "link", "add", "pyrtv0", "type", "veth", "peer", "name", "pyrtv1")
run("ip", "link", "add", "pyrtbr0", "type", "bridge")
from pyrt_network import netlink
print(netlink.delete_link("pyrtv0"), netlink.delete_link("pyrtv0"), netlink.delete_link("pyrtnone0"),
      netlink.delete_link("pyrtbr0"))
links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
print(sorted(l.split(":")[1].strip().split("@")[0] for l in links.splitlines()))
print(sorted(m for m in ("asyncio", "ssl", "pyroute2.iproute.linux", "pyroute2.netlink.nlsocket") if m in sys.modules))
try:
    netlink.delete_link("lo")
except Exception as e:
    print(type(e).__name__, str(e))
"""


def test_teardown_deletes_the_veth_and_its_peer_without_iproute():
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", CODE], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "True False False True"  # deleted; then gone: False, as for a name never there
    assert lines[1] == "['lo']"  # the peer went with it, and the bridge
    assert lines[2] == "[]"  # no IPRoute, none of what it imports
    assert lines[3] == "PyrtError cannot delete the interface lo: Operation not supported"
