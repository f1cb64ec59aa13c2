"""What keeps a container's start on a network cheap (bench/network.py): pyroute2's
message classes imported without the package's ``__init__`` and without its socket
classes (``IPRoute``: asyncio, ssl, multiprocessing...), the full package still there for
whoever asks for it, and the store not writing twice what it already wrote."""
from __future__ import annotations

import os
import subprocess
import sys

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.netlink", "pyrt-network")
from pyrt_network.store import Store  # noqa: E402

LEAN = """
import sys
from pyrt_network import rtnl
heavy = sorted(m for m in ("pyroute2.ndb", "pyroute2.ipdb", "pyroute2.conntrack",
                           "pyroute2.netlink.generic.wireguard", "pyroute2.plan9",
                           "pyroute2.iproute.linux", "pyroute2.netlink.nlsocket", "asyncio", "ssl")
               if m in sys.modules)
print("heavy:", heavy)
msg = rtnl.link_up(1)
import pyroute2.config  # a submodule imports alone
assert "pyroute2.ndb" not in sys.modules
from pyroute2 import IPRoute, NDB, NetlinkError  # the full package on the first other name
assert NetlinkError is rtnl.NetlinkError and type(msg) is pyroute2.netlink.rtnl.ifinfmsg.ifinfmsg
assert NDB.__module__ == "pyroute2.ndb.main" and pyroute2.__version__
assert IPRoute.__module__ == "pyroute2.iproute.linux"
print("ok")
"""


def test_messages_without_the_package_init_or_iproute():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", LEAN], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["heavy: []", "ok"]


def test_messages_when_the_package_was_imported_first():
    r = subprocess.run([sys.executable, "-c", "import pyroute2\nfrom pyrt_network import rtnl\n"
                        "assert rtnl.NetlinkError is pyroute2.NetlinkError\n"
                        "assert type(rtnl.link_up(1)) is pyroute2.netlink.rtnl.ifinfmsg.ifinfmsg\n"
                        "print('ok')"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_store_does_not_write_again_what_save_wrote(tmp_path):
    st = Store(str(tmp_path))
    with st.transaction() as state:
        state["networks"]["a"] = {"Id": "1"}
    first = os.stat(st.path).st_ino
    with st.transaction() as state:
        state["containers"]["c"] = {"networks": {}}
        st.save(state)
        saved = os.stat(st.path).st_ino
    assert saved != first  # save() replaced the file...
    assert os.stat(st.path).st_ino == saved  # ...and the transaction's end did not again
    with st.transaction() as state:
        st.save(state | {"ports": {"tcp/1": "c"}})
        state["ports"]["tcp/2"] = "c"  # changed after the save: written at the end
    assert st.read()["ports"] == {"tcp/2": "c"}
    with st.transaction() as state:
        pass  # nothing changed: not written
    assert st.read()["containers"] == {"c": {"networks": {}}}
