"""pyrt-network through the `pyrt` command line with real containers (the demo busybox
image, its httpd as the server): two stores on one host, the pre-defined networks,
published ports.  Traffic only between the host's loopback and the containers.

The store's networks are removed by the fixture's clean-up (`network rm`, `network
prune --all`) before the leak guard looks, so a bridge, veth, table, rule or listener
left by the engine fails the test.
"""
from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.cli import PyrtCLI

machine.import_plugin_module("pyrt_network.plugin", "pyrt-network")
from pyrt_network.nft import nft  # noqa: E402
from pyrt_network.store import host_names  # noqa: E402

from bridge_helpers import free_base, sh  # noqa: E402

SERVE = "mkdir -p /www && echo {tag} > /www/i && exec httpd -f -p 8080 -h /www"


@pytest.fixture
def cli(monkeypatch, request):
    # real containers: the isolation plugin too (network-alone installs only this one)
    machine.skip_unless("distribution", "pyrt-namespaces")
    detached_cli = request.getfixturevalue("detached_cli")
    monkeypatch.delenv("PYRT_NETWORK_BACKEND", raising=False)
    monkeypatch.setenv("PYRT_NETWORK_POOL", f"{free_base()}/24")
    return detached_cli


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(url: str, timeout: float = 10.0) -> str:
    """The body at ``url``, retried until the container's server answers; "" if never."""
    end = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode().strip()
        except OSError:
            if time.monotonic() > end:
                return ""
            time.sleep(0.1)


def fetch_in(cli, name: str, url: str) -> str:
    """``fetch(url)`` from inside container ``name``'s network namespace (the test's
    Python there through nsenter: the image's static busybox wget cannot be relied on)."""
    import subprocess
    import sys

    pid = cli("inspect", "-f", "{{.State.Pid}}", name, check=True).stdout.strip()
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode().strip())"
    r = subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip() or (r.stderr.strip().splitlines() or [""])[-1]


def serve(cli, name: str, publish: list[str], *flags: str) -> None:
    argv = ["run", "-d", "--pull", "never", "--name", name]
    for p in publish:
        argv += ["-p", p]
    cli(*argv, *flags, cli.image, "sh", "-c", SERVE.format(tag=name), check=True)


def table_exists(table: str) -> bool:
    return nft().try_run([{"list": {"table": {"family": "inet", "name": table}}}])


def links() -> str:
    return sh("ip -o link show")


def test_two_stores_each_with_its_bridge_table_and_published_port(cli, tmp_path, demo_layout):
    """Issue 15's known bug: a second store (another --root) on the same host failed
    with "nftables: Could not process rule: File exists" (both wanted pyrt0 and one
    table).  Now each store has its own bridge, table and subnet, both publish ports at
    once, and removing one store's networks leaves the other's working."""
    other = PyrtCLI(tmp_path / "b-root", tmp_path / "b-run")
    iid = other("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    other("tag", iid, cli.image + ":latest", check=True)
    other.image = cli.image
    pa, pb = free_port(), free_port()
    try:
        serve(cli, "web-a", [f"127.0.0.1:{pa}:8080"])
        serve(other, "web-b", [f"127.0.0.1:{pb}:8080"])
        assert fetch(f"http://127.0.0.1:{pa}/i") == "web-a"
        assert fetch(f"http://127.0.0.1:{pb}/i") == "web-b"
        (ta, ba), (tb, bb) = host_names(cli.root), host_names(other.root)
        assert table_exists(ta) and table_exists(tb) and ba in links() and bb in links()
        nets = [json.loads(c("network", "inspect", "bridge", check=True).stdout)[0]
                for c in (cli, other)]
        assert [n["Options"]["com.docker.network.bridge.name"] for n in nets] == [ba, bb]
        sa, sb = (n["IPAM"]["Config"][0]["Subnet"] for n in nets)
        assert sa != sb  # the second store took a free subnet
        # the second store goes: its container, then its networks (the default too)
        other("rm", "-f", "web-b", check=True)
        other("network", "prune", "--all", "--force", check=True)
        assert not table_exists(tb) and bb not in links()
        assert other("network", "ls", "-q", check=True).stdout.strip() == ""
        # the first store's rules still carry traffic
        assert fetch(f"http://127.0.0.1:{pa}/i") == "web-a"
        assert fetch(f"http://127.0.0.1:{pb}/i", timeout=1) == ""
    finally:
        other.cleanup()


@pytest.mark.parametrize("name", ["bridge", "host", "none"])
def test_predefined_networks_cannot_be_removed(cli, name):
    """docker: "Error response from daemon: bridge is a pre-defined network and cannot be
    removed", exit 1; the network stays (with -f too)."""
    cli("run", "--rm", "--pull", "never", cli.image, "true", check=True)  # makes `bridge`
    for argv in (("network", "rm", name), ("network", "rm", "-f", name)):
        r = cli(*argv)
        assert r.returncode == 1, r
        assert r.stderr.strip() == (f"Error response from daemon: {name} is a pre-defined "
                                    "network and cannot be removed")
    bridge_id = json.loads(cli("network", "inspect", "bridge", check=True).stdout)[0]["Id"]
    if name == "bridge":  # by id too
        r = cli("network", "rm", bridge_id[:12])
        assert r.returncode == 1 and "pre-defined" in r.stderr
    assert cli("network", "ls", "--format", "{{.Name}}", check=True).stdout.split() == ["bridge"]
    # a user network beside it is removed; prune keeps the default, prune --all not
    cli("network", "create", "extra", check=True)
    r = cli("network", "rm", "bridge", "extra")
    assert r.returncode == 1 and r.stdout.split() == ["extra"]
    assert cli("network", "prune", "-f", check=True).stdout == ""
    assert cli("network", "ls", "-q", check=True).stdout.strip() != ""
    assert cli("network", "prune", "--all", "-f", check=True).stdout.split() == [
        "Deleted", "Networks:", "bridge"]
    assert not table_exists(host_names(cli.root)[0])


def test_container_network_mode_shares_hosts_and_resolv_conf(cli):
    """docker: ``--network container:web`` sees web's /etc/hosts and /etc/resolv.conf."""
    cli("run", "-d", "--pull", "never", "--name", "web", "--add-host", "db.test:10.1.2.3",
        "--dns", "10.9.9.9", "--dns-search", "corp.test", cli.image, "sleep", "60", check=True)
    ip = cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web", check=True).stdout.strip()
    own = cli("exec", "web", "cat", "/etc/hosts", "/etc/resolv.conf", check=True).stdout
    assert "10.1.2.3\tdb.test" in own and ip in own and "nameserver 10.9.9.9" in own
    r = cli("run", "--rm", "--pull", "never", "--network", "container:web", cli.image,
            "cat", "/etc/hosts", "/etc/resolv.conf", check=True)
    assert r.stdout == own


def test_connect_disconnect_through_the_engine_move_the_published_port(cli):
    """`network disconnect` of the network a published port goes to: the port follows
    the container's remaining network (docker's); with the last network it goes away.
    The attachment is kept in the container's config (inspect, later starts)."""
    import time

    since = f"{time.time():.6f}"
    port = free_port()
    cli("network", "create", "side", check=True)
    serve(cli, "mover", [f"127.0.0.1:{port}:8080"])
    assert fetch(f"http://127.0.0.1:{port}/i") == "mover"
    cli("network", "connect", "--alias", "mv", "side", "mover", check=True)
    nets = json.loads(cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "mover",
                          check=True).stdout)
    assert set(nets) == {"bridge", "side"} and "mv" in nets["side"]["Aliases"]
    cli("network", "disconnect", "bridge", "mover", check=True)
    assert fetch(f"http://127.0.0.1:{port}/i") == "mover"  # now through "side"
    c = json.loads(cli("inspect", "mover", check=True).stdout)[0]
    assert list(c["NetworkSettings"]["Networks"]) == ["side"]
    assert c["NetworkSettings"]["Ports"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    r = cli("network", "disconnect", "bridge", "mover")
    assert r.returncode == 125 and "not connected to network bridge" in r.stderr
    cli("network", "disconnect", "side", "mover", check=True)
    assert fetch(f"http://127.0.0.1:{port}/i", timeout=1) == ""
    r = cli("network", "connect", "side", "nosuch")
    assert r.returncode == 125 and "nosuch" in r.stderr
    cli("rm", "-f", "mover", check=True)
    # the journal in docker's shape: the network's id, its name and driver (type)
    ids = {n: cli("network", "inspect", "-f", "{{.Id}}", n, check=True).stdout.strip()
           for n in ("bridge", "side")}
    r = cli("events", "--since", since, "--until", "0s", "--filter", "type=network",
            "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} "
            "{{.Actor.Attributes.type}}", check=True)
    assert r.stdout.splitlines() == [
        f"create {ids['side']} side bridge", f"connect {ids['bridge']} bridge bridge",
        f"connect {ids['side']} side bridge", f"disconnect {ids['bridge']} bridge bridge",
        f"disconnect {ids['side']} side bridge"], r.stdout


def test_published_ports_two_host_addresses_hairpin_and_ipv6(cli):
    """``-p 127.0.0.1:P:80 -p 127.0.0.2:P:80`` answers on both; the container reaches its
    own published port through its gateway (hairpin); on an ``--ipv6`` network a port
    published on every address answers on the host's IPv6 address (the gateway's);
    ``[::1]`` is refused with one line, exit 125 and nothing created (the kernel does
    not route IPv6 loopback to a container and pyrt runs no proxy process)."""
    port, port6 = free_port(), free_port()
    serve(cli, "twice", [f"127.0.0.1:{port}:8080", f"127.0.0.2:{port}:8080"])
    assert fetch(f"http://127.0.0.1:{port}/i") == "twice"
    assert fetch(f"http://127.0.0.2:{port}/i") == "twice"
    ports = json.loads(cli("inspect", "-f", "{{json .NetworkSettings.Ports}}", "twice",
                           check=True).stdout)
    assert ports["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)},
                                 {"HostIp": "127.0.0.2", "HostPort": str(port)}]
    # hairpin: the container's own published port, through the host's address on its bridge
    serve(cli, "open", [f"{port6}:8080"])
    gw_open = cli("inspect", "-f", "{{.NetworkSettings.Gateway}}", "open", check=True).stdout.strip()
    assert fetch_in(cli, "open", f"http://{gw_open}:{port6}/i") == "open"
    cli("rm", "-f", "open", "twice", check=True)
    # IPv6
    cli("network", "create", "--ipv6", "six", check=True)
    serve(cli, "web6", [f"{port6}:8080"], "--network", "six")
    nets = json.loads(cli("network", "inspect", "six", check=True).stdout)[0]
    gw6 = next(c["Gateway"] for c in nets["IPAM"]["Config"] if ":" in c["Subnet"])
    assert fetch(f"http://[{gw6}]:{port6}/i") == "web6"
    assert fetch(f"http://127.0.0.1:{port6}/i") == "web6"
    before = cli("ps", "-aq", check=True).stdout
    r = cli("run", "-d", "--pull", "never", "--network", "six", "-p", f"[::1]:{free_port()}:8080",
            cli.image, "true")
    assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1, r
    assert "cannot publish a port on ::1" in r.stderr, r.stderr
    assert cli("ps", "-aq", check=True).stdout == before
    cli("rm", "-f", "web6", check=True)
