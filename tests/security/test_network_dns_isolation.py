"""Attack: a container learns the names and addresses of containers on a user-defined
network it is not on, by asking that network's resolver directly.

Each user-defined network has a resolver (aardvark-dns) on its gateway address, a
host address that a container on *another* network can route to (its default route
goes through the host).  aardvark-dns answers a query from a name table chosen by the
address the query arrived on, so, unfiltered, a container on network ``back`` that
sends "web?" to network ``front``'s gateway gets the address of ``web``, a container it
shares no network with: the isolation between networks (docker's rule: "containers
resolve each other's names only on networks they share") is broken for names.

pyrt-network's input chain drops DNS from a bridge to a gateway that is not its own
network's (``rules.table_commands``: sets ``gw4``/``dns4``), so the query is never
answered.  Traffic: only between the test's own containers and the host's bridges.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pyrt_core.testing import machine, nettools

machine.import_plugin_module("pyrt_network.plugin", "pyrt-network")


@pytest.fixture
def cli(detached_cli, monkeypatch):
    monkeypatch.delenv("PYRT_NETWORK_BACKEND", raising=False)
    monkeypatch.setenv("PYRT_NETWORK_POOL", f"{nettools.free_subnet(prefix=16)}/24")
    return detached_cli


def ask(cli, container: str, server: str, name: str) -> str:
    """The A answers of ``name`` (or the rcode, or "timeout") asked from ``container``'s
    network namespace to ``server``:53, with dnslib (the test's Python, through nsenter)."""
    pid = cli("inspect", "-f", "{{.State.Pid}}", container, check=True).stdout.strip()
    code = nettools.dns_query_code(name, server)
    r = subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_a_container_cannot_ask_another_networks_resolver(cli):
    pytest.importorskip("dnslib", reason="machine fact: the test's DNS client, dnslib, is "
                                         "not installed (pip install dnslib)")
    from pyrt_network import dns as dnsmod

    try:
        dnsmod.aardvark_binary()
    except Exception:  # noqa: BLE001 - DNSError: the package is missing
        pytest.skip("machine fact: aardvark-dns is not installed (apt-get install aardvark-dns)")
    for net in ("front", "back"):
        cli("network", "create", net, check=True)
    for name, net in (("web", "front"), ("spy", "back")):
        cli("run", "-d", "--pull", "never", "--name", name, "--network", net, cli.image,
            "sleep", "120", check=True)
    gateways = {n: json.loads(cli("network", "inspect", n, check=True).stdout)[0]["IPAM"][
        "Config"][0]["Gateway"] for n in ("front", "back")}
    web_ip = cli("inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}}", "web",
                 check=True).stdout.strip()
    # the resolvers work: web finds itself on front, spy is not known on back
    assert ask(cli, "web", gateways["front"], "web") == web_ip
    assert web_ip not in ask(cli, "spy", gateways["back"], "web")
    # the attack: spy asks front's resolver, on a host address it can route to
    answer = ask(cli, "spy", gateways["front"], "web")
    assert web_ip not in answer, f"a container on back resolved web on front: {answer}"
    assert answer == "timeout"  # dropped by the input chain, not answered
    cli("rm", "-f", "web", "spy", check=True)
