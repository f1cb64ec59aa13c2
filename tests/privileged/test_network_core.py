"""The core's side of networking against the kernel (docs/networking.md): the network
namespace's lifecycle, the ``pyrt_network_*`` calls and their order, /etc/hosts and
/etc/resolv.conf, inspect/port/ps, container:NAME, failures and recovery after a
SIGKILL at each step.

The network plugin is a real one written for these tests
(``netplugin/pyrt_test_netplugin.py``, installed on ``PYTHONPATH`` as a distribution
with a ``pyrt.plugins`` entry point): veth pairs between the container's namespace and
a "host side" namespace the test makes (``pyrt-t-*``), never the real host's.  The only
traffic is a ping from that namespace to a container's address.  With pyrt-network
installed instead (``PYRT_NETWORK_BACKEND`` unset and no test plugin), the tests that
need the test plugin's host side are the ones in the plugin's own suite.
"""
import ipaddress
import json
import os
import shutil
import signal
import subprocess

import pytest

from pyrt_core.testing.lifecycle import conmon_pids, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
TRAP = 'trap "exit 3" TERM; echo ready; sleep 1000 & wait'
ENV_KEYS = ("PYTHONPATH", "PYRT_TESTNET_HOSTNS", "PYRT_TESTNET_SUBNET", "PYRT_TESTNET_FAIL")


def _free_subnet() -> str:
    """A 10.213.N.0/24 that no route of the host covers."""
    routes = subprocess.run(["ip", "-o", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout.split()
    nets = []
    for word in routes:
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    for n in range(10, 250):
        cand = ipaddress.ip_network(f"10.213.{(os.getpid() + n) % 250}.0/24")
        if not any(cand.overlaps(x) for x in nets if x.version == 4 and x.prefixlen > 0):
            return str(cand.network_address).rsplit(".", 1)[0]
    pytest.fail("no free 10.213.N.0/24")


def _install_plugin(site) -> None:
    info = os.path.join(site, "pyrt_test_netplugin-0.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: pyrt-test-netplugin\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[pyrt.plugins]\ntestveth = pyrt_test_netplugin\n")
    shutil.copy(os.path.join(HERE, "netplugin", "pyrt_test_netplugin.py"), site)


def _ip(*argv, check=True):
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check)


@pytest.fixture
def net(detached_cli, tmp_path):
    """:func:`detached_cli` with the test network plugin installed and its host side
    (namespace ``cli.hostns`` with the bridge ``ptbr0`` at ``cli.subnet``.1/24)."""
    cli = detached_cli
    site = str(tmp_path / "site")
    os.makedirs(site)
    _install_plugin(site)
    hostns = f"pyrt-t-{os.urandom(4).hex()}"
    subnet = _free_subnet()
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    _ip("netns", "add", hostns)
    try:
        _ip("-n", hostns, "link", "set", "lo", "up")
        _ip("-n", hostns, "link", "add", "ptbr0", "type", "bridge")
        _ip("-n", hostns, "addr", "add", f"{subnet}.1/24", "dev", "ptbr0")
        _ip("-n", hostns, "link", "set", "ptbr0", "up")
        os.environ.update(PYTHONPATH=site, PYRT_TESTNET_HOSTNS=hostns, PYRT_TESTNET_SUBNET=subnet)
        os.environ.pop("PYRT_TESTNET_FAIL", None)
        cli.hostns, cli.subnet = hostns, subnet
        yield cli
        # the engine's own clean-up, with the plugin still there: nothing may be left
        cli.remove_running()
        for cid in cli("ps", "-aq", "--no-trunc").stdout.split():
            cli("rm", "-f", cid)
        assert host_links(cli) == [], "veths left on the host side"
        assert netns_files(cli) == []
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _ip("netns", "del", hostns, check=False)


def host_links(cli) -> list[str]:
    """The test plugin's veths left on the host side (not lo, not the bridge)."""
    out = _ip("-n", cli.hostns, "-o", "link").stdout.splitlines()
    return [ln.split(":")[1].strip().split("@")[0] for ln in out
            if ln.split(":")[1].strip().split("@")[0] not in ("lo", "ptbr0")]


def netns_files(cli) -> list[str]:
    try:
        return os.listdir(os.path.join(cli.runroot, "netns"))
    except FileNotFoundError:
        return []


def plugin_state(cli) -> list[str]:
    d = os.path.join(cli.root, "networks", "testveth")
    return sorted(n for n in os.listdir(d) if n.endswith(".json")) if os.path.isdir(d) else []


def nsfs_mounts(cli) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(cli.runroot + "/netns")]


def inspect(cli, ref) -> dict:
    r = cli("inspect", "--type", "container", ref, check=True)
    return json.loads(r.stdout)[0]


def assert_released(cli):
    assert netns_files(cli) == [] and nsfs_mounts(cli) == []
    assert host_links(cli) == [] and plugin_state(cli) == []


# -- the default network, the interface, the files ---------------------------------------------


def test_run_gets_the_default_network_and_sees_its_interface(net):
    r = net("run", "--rm", "--name", "web", net.image, "sh", "-c",
            "ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf", check=True)
    assert f"inet {net.subnet}.2/24" in r.stdout
    assert f"default via {net.subnet}.1" in r.stdout
    assert f"{net.subnet}.2\t" in r.stdout  # its own address in /etc/hosts
    assert_released(net)  # --rm: torn down and removed at the exit
    assert "Network backend: testveth" in net("info").stdout


def test_detached_container_is_reachable_and_inspect_shows_it(net):
    cid = net("run", "-d", "--name", "box", "-p", "8080:80", "-p", "127.0.0.1::53/udp",
              "--hostname", "boxhost", net.image, "sh", "-c", TRAP, check=True).stdout.strip()
    ip = f"{net.subnet}.2"
    # traffic only inside namespaces the test made: from the host side to the container
    ping = subprocess.run(["ip", "netns", "exec", net.hostns, "busybox", "ping", "-c", "1",
                           "-W", "2", ip], capture_output=True, text=True)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    d = inspect(net, "box")
    ns = d["NetworkSettings"]
    assert ns["IPAddress"] == ip and ns["IPPrefixLen"] == 24
    assert ns["Gateway"] == f"{net.subnet}.1" and ns["MacAddress"].count(":") == 5
    assert ns["Networks"]["bridge"]["IPAddress"] == ip
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                           "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}]}
    assert ns["SandboxKey"] == os.path.join(net.runroot, "netns", cid)
    assert d["HostConfig"]["NetworkMode"] == "bridge"
    assert d["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert net("port", "box").stdout == "53/udp -> 127.0.0.1:40001\n80/tcp -> 0.0.0.0:8080\n"
    assert net("port", "box", "80").stdout == "0.0.0.0:8080\n"
    r = net("port", "box", "81/tcp")
    assert r.returncode == 1 and "no public port '81/tcp'" in r.stderr
    assert "0.0.0.0:8080->80/tcp, 127.0.0.1:40001->53/udp" in net("ps").stdout
    hosts = net("exec", "box", "cat", "/etc/hosts", check=True).stdout
    assert f"{ip}\tboxhost\n" in hosts
    assert plugin_state(net) == [f"{cid}.json"] and netns_files(net) == [cid]
    # stop: teardown, then the namespace goes; inspect no longer shows an address
    assert net("stop", "box").returncode == 0
    assert_released(net)
    ns = inspect(net, "box")["NetworkSettings"]
    assert ns["IPAddress"] == "" and ns["Ports"] == {} and "bridge" in ns["Networks"]
    assert net("port", "box").stdout == ""
    # and a new start gets a new namespace
    assert net("start", "box").returncode == 0
    assert netns_files(net) == [cid] and len(host_links(net)) == 1
    assert net("rm", "-f", "box").returncode == 0
    assert_released(net)


def test_user_network_files_and_flags(net):
    r = net("run", "--rm", "--network", "testnet", "--ip", f"{net.subnet}.77",
            "--network-alias", "db", "--mac-address", "02:42:0a:d5:00:4d",
            "--add-host", "extra.example:192.0.2.10", "--add-host", "gw:host-gateway",
            "--dns-option", "ndots:2", net.image, "sh", "-c",
            "ip -o link show eth0; ip -o -4 addr show eth0; cat /etc/hosts; echo ---; "
            "cat /etc/resolv.conf", check=True)
    out = r.stdout
    assert "02:42:0a:d5:00:4d" in out and f"inet {net.subnet}.77/24" in out
    hosts, resolv = out.split("---\n")
    assert "192.0.2.10\textra.example\n" in hosts and f"{net.subnet}.1\tgw\n" in hosts
    # the network's resolver and search domain (the record's), the options given
    assert [ln for ln in resolv.splitlines() if not ln.startswith("#")] == [
        "search testnet.internal", f"nameserver {net.subnet}.1", "options ndots:2"]
    assert_released(net)


def test_dns_flags_override_the_network_resolver(net):
    r = net("run", "--rm", "--network", "testnet", "--dns", "192.0.2.53",
            "--dns-search", "corp.example", net.image, "cat", "/etc/resolv.conf", check=True)
    lines = r.stdout.splitlines()
    assert "nameserver 192.0.2.53" in lines and "search corp.example" in lines
    assert not any(ln.startswith("nameserver") and net.subnet in ln for ln in lines)


def test_bad_values_are_refused_before_anything_exists(net):
    for argv, words in (
            (["--network", "nosuch"], "network nosuch not found"),
            (["--ip", "10.0.0.9"], "user defined networks only"),
            (["--network", "none", "-p", "80"], "conflicting options"),
            (["-p", "1:80"], "host port 1 is in use"),
            (["--network", "container:nosuch"], "no such container"),
            (["--network", "testnet", "--network", "host"], "conflicting options"),
            (["--mac-address", "01:00:00:00:00:01"], "multicast")):
        r = net("run", "--rm", "--name", "bad", *argv, net.image, "true")
        assert r.returncode == 125 and words in r.stderr, (argv, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr
    assert net("ps", "-aq").stdout == ""
    assert_released(net)


def test_host_mode_discards_published_ports(net):
    r = net("run", "--rm", "--network", "host", "-p", "80", net.image, "true")
    assert r.returncode == 0 and "Published ports are discarded" in r.stderr
    assert_released(net)


# -- container:NAME ------------------------------------------------------------------------------


def test_container_mode_shares_the_namespace(net):
    net("run", "-d", "--name", "owner", net.image, "sh", "-c", TRAP, check=True)
    r = net("run", "--rm", "--network", "container:owner", net.image, "ip", "-o", "-4", "addr",
            "show", "eth0", check=True)
    assert f"inet {net.subnet}.2/24" in r.stdout
    assert len(host_links(net)) == 1  # no setup of its own
    r = net("run", "--rm", "--network", "container:owner", "-p", "80", net.image, "true")
    assert r.returncode == 125 and "conflicting options: port publishing" in r.stderr
    net("stop", "owner", check=True)
    r = net("run", "--rm", "--network", "container:owner", net.image, "true")
    assert r.returncode == 125 and "not running" in r.stderr


# -- failures and recovery -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["setup", "setup-leave"])
def test_failed_setup_leaves_no_namespace(net, how):
    env = dict(os.environ, PYRT_TESTNET_FAIL=how)
    r = net("run", "--name", "fails", net.image, "true", env=env)
    assert r.returncode == 125 and r.stderr.count("\n") == 1 and "setup failed" in r.stderr
    assert netns_files(net) == [] and nsfs_mounts(net) == []
    assert host_links(net) == [] and plugin_state(net) == []  # teardown undid a leaving plugin
    assert inspect(net, "fails")["State"]["Status"] == "exited"
    r = net("run", "-d", "--name", "fails2", net.image, "true", env=env)
    assert r.returncode == 125
    wait_for(lambda: conmon_pids(net) == [], timeout=10, what="conmon to exit")
    assert_released(net)


def faulty(point):
    return dict(os.environ, PYRT_FAULT=point)


@pytest.mark.parametrize("point", ["net:netns", "net:setup", "start:created"])
def test_killed_during_a_networked_start(net, point):
    net("create", "--name", "ks", "-p", "8080:80", net.image, "sh", "-c", TRAP, check=True)
    r = net("start", "ks", env=faulty(point))
    assert r.returncode == -signal.SIGKILL
    assert netns_files(net) != []  # the kill left the namespace
    st = inspect(net, "ks")["State"]  # the next command recovers
    assert st["Status"] == "exited"
    wait_for(lambda: conmon_pids(net) == [], timeout=10, what="conmon to exit")
    assert_released(net)
    assert net("start", "ks").returncode == 0 and len(host_links(net)) == 1
    assert net("rm", "-f", "ks").returncode == 0
    assert_released(net)


@pytest.mark.parametrize("point", ["net:netns", "net:setup", "cleanup:net-teardown"])
def test_killed_foreground_run(net, point):
    r = net("run", "--name", "kf", net.image, "true", env=faulty(point))
    assert r.returncode == -signal.SIGKILL
    r = net("ps", "-a")  # recovery
    assert r.returncode == 0 and "kf" in r.stdout
    assert_released(net)


def test_killed_rm_during_teardown(net):
    net("run", "-d", "--name", "kr", net.image, "sh", "-c", TRAP, check=True)
    r = net("rm", "-f", "kr", env=faulty("cleanup:net-teardown"))
    assert r.returncode == -signal.SIGKILL
    # conmon's exit command or this recovery finishes the clean-up
    net("system", "recover", check=True)
    wait_for(lambda: conmon_pids(net) == [], timeout=10, what="conmon to exit")
    assert_released(net)


def test_recovery_removes_stale_namespaces(net):
    from pyrt_core.netns import create, path_for

    # a namespace file whose record is gone (a crash after the record's removal), and
    # plugin state of a container nobody holds any more: both go at `system recover`
    stale = "f" * 64
    create(path_for(net.runroot, stale))
    os.makedirs(os.path.join(net.root, "networks", "testveth"), exist_ok=True)
    with open(os.path.join(net.root, "networks", "testveth", "e" * 64 + ".json"), "w") as f:
        json.dump({"hostns": net.hostns, "host_if": "ptgone", "ip": "x"}, f)
    r = net("system", "recover", check=True)
    assert "removed the network namespace" in r.stdout and "testveth: released" in r.stdout
    assert_released(net)


# -- without a network plugin --------------------------------------------------------------------


def test_without_a_plugin(detached_cli, monkeypatch):
    cli = detached_cli
    # the installed network plugins disabled: what a host without one sees
    monkeypatch.setenv("PYRT_DISABLE_PLUGINS", "network,network_cni")
    for argv, words in ((["--network", "bridge"], "install pyrt-network"),
                        (["--network", "mynet"], "install pyrt-network"),
                        (["-p", "8080:80"], "install pyrt-network"),
                        (["-P"], "install pyrt-network")):
        r = cli("run", "--rm", *argv, cli.image, "true")
        assert r.returncode == 125 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert cli("ps", "-aq").stdout == ""
    # the default is none: loopback only, no namespace file
    r = cli("run", "--rm", cli.image, "ip", "-o", "link", check=True)
    assert "lo:" in r.stdout and "eth0" not in r.stdout
    assert netns_files(cli) == []
    d = cli("run", "-d", "--name", "plain", cli.image, "sh", "-c", TRAP, check=True)
    assert d.returncode == 0
    assert inspect(cli, "plain")["HostConfig"]["NetworkMode"] == "none"
    assert "Network backend: none" in cli("info").stdout


# -- pyrt_core.netns -----------------------------------------------------------------------------


def test_netns_create_and_remove_are_idempotent(tmp_path, no_leaks):
    from pyrt_core.api import create_netns, is_netns, netns_path, remove_netns

    path = netns_path(str(tmp_path), "c" * 64)
    assert create_netns(path) == path and is_netns(path)
    ino = os.stat(path).st_ino
    assert create_netns(path) == path and os.stat(path).st_ino == ino  # kept, not remade
    assert os.readlink("/proc/self/ns/net") != f"net:[{ino}]"  # this process did not move
    r = subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "link"], capture_output=True,
                       text=True, check=True)
    assert r.stdout.count(": ") >= 1 and "lo:" in r.stdout and "UP" in r.stdout.split("lo:")[1]
    assert "eth0" not in r.stdout
    assert remove_netns(path) and not os.path.lexists(path) and not remove_netns(path)
    # a create killed before its mount leaves an empty file: removed all the same
    open(path, "w").close()
    assert not is_netns(path) and remove_netns(path) and not os.path.lexists(path)


def test_connect_and_disconnect_are_journalled_events(net):
    """``pyrt events``: the network hooks the engine calls are journalled by the core
    (engine.hook_events), whichever plugin does the work: a container's attachment at its
    start is a ``connect`` of the network, its teardown at the exit a ``disconnect``."""
    import time

    since = f"{time.time():.6f}"
    cid = net("run", "-d", "--network", "testnet", "--name", "evnet", net.image, "sh", "-c",
              TRAP, check=True).stdout.strip()
    net("stop", "-t", "1", "evnet", check=True)
    net("rm", "evnet", check=True)
    fmt = "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} " \
          "{{.Actor.Attributes.container}}"
    r = net("events", "--since", since, "--until", "0s", "--filter", "type=network",
            "--format", fmt, check=True)
    assert r.stdout.splitlines() == [f"network connect testnet testnet {cid}",
                                     f"network disconnect testnet testnet {cid}"], r.stdout
    r = net("events", "--since", since, "--until", "0s", "--filter", "network=testnet",
            "--filter", "event=disconnect", "--format", "{{.Action}}", check=True)
    assert r.stdout == "disconnect\n"
    r = net("events", "--since", since, "--until", "0s", "--filter", "network=bridge",
            check=True)
    assert r.stdout == ""
    assert_released(net)
