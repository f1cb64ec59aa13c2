"""pyrt-network's logic without the kernel: subnet choice, the address allocator and its
lock, host-port choice, the nftables JSON, the hooks' backend choice, the commands'
filters."""
from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.plugin", "pyrt-network")
from pyrt_core.api import UsageError  # noqa: E402
from pyrt_network import cli, ipam, plugin, ports, rules  # noqa: E402
from pyrt_network.store import Store  # noqa: E402


def test_choose_subnet_skips_routes_and_networks():
    pools = ipam.parse_pools("10.213.0.0/16/24")
    assert ipam.choose_subnet(pools, []) == "10.213.0.0/24"
    assert ipam.choose_subnet(pools, ["10.213.0.0/23", "10.213.2.128/25"]) == "10.213.3.0/24"
    assert ipam.choose_subnet(ipam.DEFAULT_POOLS, ["172.17.0.0/16", "0.0.0.0/1"]) == "172.18.0.0/16"
    with pytest.raises(UsageError, match="no free subnet"):
        ipam.choose_subnet(pools, ["10.0.0.0/8"])
    with pytest.raises(UsageError, match="invalid network pool"):
        ipam.parse_pools("10.213.0.0/16/8")


def test_check_subnet():
    s, gw, rng = ipam.check_subnet("10.213.5.7/24", None, "10.213.5.128/25", {})
    assert (s, gw, rng) == ("10.213.5.0/24", "10.213.5.1", "10.213.5.128/25")
    with pytest.raises(UsageError, match="overlaps 10.213.0.0/16 \\(a host route via eth9\\)"):
        ipam.check_subnet("10.213.5.0/24", None, None, {"10.213.0.0/16": "a host route via eth9"})
    with pytest.raises(UsageError, match="gateway 10.9.0.1 is not a usable address"):
        ipam.check_subnet("10.213.5.0/24", "10.9.0.1", None, {})
    with pytest.raises(UsageError, match="not inside subnet"):
        ipam.check_subnet("10.213.5.0/24", None, "10.213.6.0/25", {})
    with pytest.raises(UsageError, match="invalid subnet"):
        ipam.check_subnet("nonsense", None, None, {})


def test_allocate():
    used = {"10.213.5.2", "10.213.5.3"}
    assert ipam.allocate("10.213.5.0/24", "10.213.5.1", None, used) == "10.213.5.4"
    assert ipam.allocate("10.213.5.0/24", "10.213.5.1", None, used, wanted="10.213.5.9") == "10.213.5.9"
    assert ipam.allocate("10.213.5.0/24", "10.213.5.1", "10.213.5.128/25", used) == "10.213.5.129"
    for bad, msg in (("10.213.5.2", "already in use"), ("10.213.5.1", "reserved"),
                     ("10.213.5.255", "reserved"), ("10.9.9.9", "not in the network"),
                     ("x", "invalid IP")):
        with pytest.raises(UsageError, match=msg):
            ipam.allocate("10.213.5.0/24", "10.213.5.1", None, used, wanted=bad)
    with pytest.raises(UsageError, match="no free address"):
        ipam.allocate("10.213.5.0/30", "10.213.5.1", None, {"10.213.5.2"})
    six = ipam.ula_subnet("x")
    assert six.startswith("fd") and six.endswith("/64")
    assert ipam.allocate(six, six.split("/")[0] + "1", None, set()).endswith("::2")


def test_names_and_mac():
    assert ipam.mac_for("10.213.0.2") == "02:42:0a:d5:00:02"
    assert ipam.check_mac("02:AA:00:00:00:01") == "02:aa:00:00:00:01"
    with pytest.raises(UsageError):
        ipam.check_mac("01:00:00:00:00:01")
    assert ipam.bridge_name("bridge", "ab" * 32) == "pyrt0"
    assert ipam.bridge_name("bridge", "ab" * 32, "pyrt0-abcdef") == "pyrt0-abcdef"
    assert len(ipam.bridge_name("x", "ab" * 32)) <= 15
    assert len(ipam.veth_name("c" * 64, "n" * 64)) <= 15
    with pytest.raises(UsageError):
        ipam.valid_network_name("-bad")


def _take(args):
    root, n = args
    from pyrt_network.store import Store

    st = Store(root)
    got = []
    for i in range(n):
        with st.transaction() as state:
            used = {e["ip"] for e in state["containers"].values()}
            ip = ipam.allocate("10.213.0.0/22", "10.213.0.1", None, used)
            state["containers"][f"{os.getpid()}-{i}"] = {"ip": ip}
            got.append(ip)
    return got


def test_store_lock_no_clashes_across_processes(tmp_path):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        results = pool.map(_take, [(str(tmp_path), 20)] * 8)
    ips = [ip for r in results for ip in r]
    assert len(ips) == 160 and len(set(ips)) == 160
    assert len(Store(str(tmp_path)).read()["containers"]) == 160


def test_store_transaction_rolls_back_on_error(tmp_path):
    st = Store(str(tmp_path))
    with pytest.raises(RuntimeError):
        with st.transaction() as state:
            state["networks"]["x"] = {}
            raise RuntimeError
    assert st.read()["networks"] == {}


def test_host_port_choice(monkeypatch):
    monkeypatch.setattr(ports, "host_port_free", lambda proto, ip, p: p != 18001)
    taken = {"tcp/18000": "a" * 64}
    with pytest.raises(UsageError, match="host port 18000/tcp is already published by container aaaaaaaaaaaa"):
        ports.choose({"protocol": "tcp", "host_port": 18000, "container_port": 80}, taken, "b" * 64)
    with pytest.raises(UsageError, match="host port 18001/tcp is already in use"):
        ports.choose({"protocol": "tcp", "host_port": 18001, "container_port": 80}, taken, "b" * 64)
    assert ports.choose({"protocol": "tcp", "host_port": 18000, "host_port_end": 18002,
                         "container_port": 80}, taken, "b" * 64) == 18002
    assert ports.choose({"protocol": "udp", "host_port": 18000, "container_port": 80}, taken, "b") == 18000
    lo, hi = ports.ephemeral_range()
    assert lo <= ports.choose({"protocol": "tcp", "host_port": 0, "container_port": 80}, {}, "b") <= hi


def test_store_host_names(tmp_path):
    """The default store keeps the plain names; any other store has its own, the same
    each time for the same path (a killed run's leftovers are found again)."""
    from pyrt_core.config import DEFAULT_ROOT

    from pyrt_network import store

    assert store.DEFAULT_ROOT == DEFAULT_ROOT
    assert store.host_names(DEFAULT_ROOT) == ("pyrt", "pyrt0")
    a, b = store.host_names(str(tmp_path / "a")), store.host_names(str(tmp_path / "b"))
    assert a != b and a == store.host_names(str(tmp_path / "a"))
    assert a[0].startswith("pyrt-") and a[1].startswith("pyrt0-") and len(a[1]) <= 15
    os.symlink(tmp_path / "a", tmp_path / "link")
    assert store.host_names(str(tmp_path / "link")) == a  # the real path counts
    assert Store(str(tmp_path / "a")).table == a[0]


def test_rules_json_constant_per_container():
    table = rules.table_commands("pyrt")
    text = json.dumps(table)
    assert '"family": "inet", "name": "pyrt"' in text
    # adopting: only add (idempotent) and the flush of pyrt's own base chains, no delete
    assert {next(iter(c)) for c in table} == {"add", "flush"}
    assert {c["flush"]["chain"]["name"] for c in table if "flush" in c} == {
        n for n, *_ in rules.BASE_CHAINS}
    fresh = rules.table_commands("pyrt-abc123", fresh=True)
    assert [next(iter(c)) for c in fresh[:3]] == ["add", "delete", "add"]
    assert fresh[1]["delete"]["table"] == {"family": "inet", "name": "pyrt-abc123"}
    one = rules.container_commands("pyrt", "c-1", [{"protocol": "tcp", "host_ip": "", "host_port": 8080,
                                             "container_ip": "10.213.0.2", "container_port": 80}])
    rule = [c["add"]["rule"] for c in one if "rule" in c.get("add", {})][0]
    assert rule["chain"] == "c-1" and rule["expr"][-1] == {
        "dnat": {"family": "ip", "addr": "10.213.0.2", "port": 80}}
    elem = [c["add"]["element"] for c in one if "element" in c.get("add", {})][0]
    assert elem["name"] == "ports" and elem["elem"] == [[{"concat": ["tcp", 8080]}, {"jump": {"target": "c-1"}}]]
    # every command names pyrt's table, none another
    for cmds in (table, one, rules.network_commands("pyrt", "n" * 64, "pyrt0", ["10.213.0.0/24"], False),
                 rules.network_delete_commands("pyrt", "n" * 64, "pyrt0", ["10.213.0.0/24"], True),
                 rules.container_delete_commands("pyrt", "c-1", [{"protocol": "tcp", "host_port": 8080}])):
        for c in cmds:
            obj = next(iter(next(iter(c.values())).values()))
            assert obj.get("table", obj.get("name")) == "pyrt" or obj.get("table") == "pyrt"
    for c in fresh:
        obj = next(iter(next(iter(c.values())).values()))
        assert obj.get("table", obj.get("name")) == "pyrt-abc123"
    internal = json.dumps(rules.network_commands("pyrt", "n" * 64, "pyrt-x", ["10.213.1.0/24"], True))
    assert "nat4" not in internal and internal.count('"drop"') == 2


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("PYRT_NETWORK_BACKEND", raising=False)
    assert plugin.pyrt_network_backend() == "bridge"
    monkeypatch.setenv("PYRT_NETWORK_BACKEND", "cni")
    assert plugin.pyrt_network_backend() is None
    assert plugin.pyrt_network_list(root="/nonexistent", runroot="/nonexistent") is None


def test_ls_filters():
    n = {"Name": "frontend", "Id": "abc123", "Driver": "bridge", "Scope": "local",
         "Labels": {"team": "web"}}
    assert cli._matches(n, ["name=front", "driver=bridge", "label=team", "label=team=web", "id=abc"])
    assert not cli._matches(n, ["label=team=db"])
    assert not cli._matches(n, ["name=back"])
    with pytest.raises(UsageError):
        cli._matches(n, ["bogus=1"])


def test_ls_and_inspect_formats_are_the_cores(capsys):
    """``network ls --format`` and ``network inspect -f``: docker's Go templates, json
    lines and tables, through the core's formatting (pyrt_core.api), with the ls fields'
    column names."""
    from pyrt_core.api import print_objects, print_rows

    rows = [{"ID": "abc", "Name": "x", "Driver": "bridge", "Scope": "local", "Internal": "false",
             "IPv6": "false", "CreatedAt": "", "Labels": ""}]
    print_rows("{{.ID}}\\t{{.Name}}", rows, cli.LS_HEADERS)
    print_rows("table {{.Name}}\\t{{.Driver}}", rows, cli.LS_HEADERS)
    print_rows("json", rows, cli.LS_HEADERS)
    print_objects("{{.Id}} {{len .IPAM.Config}}", [{"Id": "n1", "IPAM": {"Config": [{}]}}])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "abc\tx"
    assert out[1].split() == ["NAME", "DRIVER"] and out[2].split() == ["x", "bridge"]
    assert out[3].startswith('{"CreatedAt":"","Driver":"bridge","ID":"abc"')
    assert out[4] == "n1 1"


def test_hook_call_passes_name_through():
    """``pyrt network rm`` calls pyrt_network_remove(name=...): _hook's own parameter
    must not take it."""
    seen = {}

    class Hooks:
        def pyrt_network_remove(self, **kw):
            seen.update(kw)
            return True

    class Engine:
        pm = type("PM", (), {"hook": Hooks()})()
        settings = type("S", (), {"root": "/r", "runroot": "/u"})()

    assert cli._hook(Engine(), "remove", name="front") is True
    assert seen == {"name": "front", "root": "/r", "runroot": "/u"}


def test_hairpin_masquerade_matches_the_source_subnet_not_the_input_interface():
    """With br_netfilter loaded, a packet DNATed back onto its own bridge is bridged and
    reaches postrouting without an input interface: the hairpin masquerade must not
    depend on ``iifname`` (the privileged proof: test_bridge_traffic.py::test_hairpin_*)."""
    post = [c["add"]["rule"]["expr"] for c in rules.table_commands("pyrt")
            if c.get("add", {}).get("rule", {}).get("chain") == "postrouting"]
    hairpin = [e for e in post if {"match": {"op": "in", "left": {"ct": {"key": "status"}},
                                             "right": "dnat"}} in e]
    assert len(hairpin) == 2  # IPv4 and IPv6
    for expr in hairpin:
        text = json.dumps(expr)
        assert "iifname" not in text and ('"@nat4"' in text or '"@nat6"' in text)
        assert {"masquerade": None} in expr
