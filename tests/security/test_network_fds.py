"""No host network handle reaches a container on a network.

pyrt-network holds netlink sockets of the host's network namespace during a
container's start and teardown: pyrt_network.rtnl's (NETLINK_ROUTE, each closed after
its requests) and libnftables' (NETLINK_NETFILTER, kept open), and ``run`` in the
foreground is the container's monitor, so that one is open for the container's whole life.
Either one in the container would let it change the host: addresses, routes and
interfaces, or every nftables table (netlink checks CAP_NET_ADMIN against the socket's
namespace when the message is sent).  The container's process must see no socket it
did not open itself.

Two layers keep them out: the runtime closes every descriptor it does not pass on
(pyrt_namespaces.execute.close_fds), and each socket is close-on-exec (rtnl opens its
own with SOCK_CLOEXEC; libnftables without: pyrt_network.nft marks it).  With the
runtime's layer switched off, this test failed before libnftables' socket was marked
(``/proc/self/fd/8 socket:[...]`` in the container) and passes after.
"""
from __future__ import annotations

import os

import pytest

from pyrt_core.testing import machine

SCRIPT = 'for f in /proc/self/fd/* /proc/1/fd/*; do echo "$f $(readlink $f)"; done'


def _free_pool() -> str:
    machine.import_plugin_module("pyrt_network.netlink", "pyrt-network")
    import ipaddress

    from pyrt_network import netlink

    routes = [ipaddress.ip_network(c) for c, _ in netlink.host_routes() if ":" not in c]
    for x in range(213, 250):
        net = ipaddress.ip_network(f"10.{x}.0.0/16")
        if not any(net.overlaps(r) for r in routes):
            return f"{net}/24"
    pytest.skip("no free 10.x.0.0/16 test range on this host")


@pytest.mark.parametrize("ports", [[], ["-p", "127.0.0.1::80"]], ids=["bridge", "published"])
def test_a_container_on_the_bridge_holds_no_socket_of_the_host(demo_cli, ports):
    env = dict(os.environ, PYRT_NETWORK_POOL=_free_pool())
    env.pop("PYRT_NETWORK_BACKEND", None)
    r = demo_cli("run", "--rm", *ports, demo_cli.image, "sh", "-c", SCRIPT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    fds = r.stdout.splitlines()
    assert any(line.startswith("/proc/self/fd/0 ") for line in fds), r.stdout
    leaked = [line for line in fds if "socket:" in line or "anon_inode" in line]
    assert not leaked, leaked
