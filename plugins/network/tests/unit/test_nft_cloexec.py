"""libnftables' netlink socket is close-on-exec (tests/security/test_network_fds.py: no
host socket may reach a container's process)."""
from __future__ import annotations

import ctypes.util
import os
import socket

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.nft", "pyrt-network")
from pyrt_network import nft  # noqa: E402


def test_new_sockets_are_marked_close_on_exec():
    before = nft._sockets()
    a, b = socket.socketpair()
    try:
        os.set_inheritable(a.fileno(), True)
        os.set_inheritable(b.fileno(), True)
        new = nft._sockets() - before
        assert {fd for fd, _ in new} == {a.fileno(), b.fileno()}
        nft._close_on_exec(new)
        assert not os.get_inheritable(a.fileno()) and not os.get_inheritable(b.fileno())
    finally:
        a.close()
        b.close()


def test_the_context_leaves_no_inheritable_socket():
    try:
        ctypes.CDLL(nft.LIBRARY)
    except OSError:
        pytest.skip(f"machine fact: {nft.LIBRARY} is not installed (Debian: libnftables1)")
    before = nft._sockets()
    nft.Nft()  # (opens its netlink socket; not freed: one per process, as nft() keeps)
    new = nft._sockets() - before
    assert new, "libnftables opened no socket: nothing was checked"
    assert not [fd for fd, _ in new if os.get_inheritable(fd)]
