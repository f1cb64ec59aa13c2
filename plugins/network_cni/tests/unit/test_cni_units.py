"""pyrt-network-cni's logic without the kernel: the conflists it writes and reads, the
plugin calls it builds, the CNI results it reads into network records."""
import json
import os

import pytest

from pyrt_core.api import ContainerNetworking, NetworkAttachment, NetworkCreate, PortMapping
from pyrt_core.errors import ConflictError, NotFoundError, UsageError
from pyrt_network_cni import backend, conflist, invoke, plugin, result, settings


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRT_NETWORK_BACKEND", "cni")
    etc = tmp_path / "etc-cni"
    etc.mkdir()
    monkeypatch.setenv("PYRT_CNI_CONFIG_DIRS", str(etc))
    monkeypatch.setattr(backend.hostnet, "host_routes", lambda: [])
    return str(tmp_path / "root")


def test_conflist_of_a_network(root):
    req = NetworkCreate(name="web", subnet="10.77.1.0/24", ip_range="10.77.1.128/25",
                        labels={"a": "b"}, options={"mtu": "1400"})
    conf = conflist.build(req, root, "10.77.1.0/24", "10.77.1.1")
    assert conf["cniVersion"] == "1.0.0" and conf["name"] == "web"
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap", "firewall", "tuning"]
    bridge = conf["plugins"][0]
    assert len(bridge["bridge"]) <= 15 and bridge["isGateway"] and bridge["ipMasq"]
    assert bridge["mtu"] == 1400 and bridge["capabilities"] == {"ips": True}
    rng = bridge["ipam"]["ranges"][0][0]
    assert rng == {"subnet": "10.77.1.0/24", "gateway": "10.77.1.1",
                   "rangeStart": "10.77.1.129", "rangeEnd": "10.77.1.254"}
    assert bridge["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    assert bridge["ipam"]["dataDir"] == os.path.join(root, "networks", "cni", "ipam")
    assert conf["plugins"][1]["capabilities"] == {"portMappings": True}
    assert conf["pyrt"]["labels"] == {"a": "b"} and len(conf["pyrt"]["id"]) == 64


def test_internal_network_has_no_route_and_no_masquerade(root):
    conf = conflist.build(NetworkCreate(name="in", internal=True), root, "10.77.2.0/24",
                          "10.77.2.1")
    assert "routes" not in conf["plugins"][0]["ipam"] and not conf["plugins"][0]["ipMasq"]


def test_create_list_inspect_remove(root, monkeypatch):
    monkeypatch.setattr(backend.hostnet, "delete_bridge", lambda name: True)
    info = plugin.pyrt_network_create(NetworkCreate(name="n1", subnet="10.77.3.0/24"),
                                      root=root, runroot=root)
    assert info["IPAM"]["Config"] == [{"Subnet": "10.77.3.0/24", "Gateway": "10.77.3.1"}]
    assert info["Name"] == "n1" and info["Driver"] == "bridge" and info["ReadOnly"] is False
    on_disk = json.load(open(conflist.path_of(root, "n1")))
    assert on_disk["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] == "10.77.3.0/24"
    assert [n["Name"] for n in plugin.pyrt_network_list(root=root, runroot=root)] == ["n1"]
    with pytest.raises(ConflictError, match="already exists"):
        backend.create(NetworkCreate(name="n1", subnet="10.77.4.0/24"), root)
    with pytest.raises(ConflictError, match="overlaps network n1"):
        backend.create(NetworkCreate(name="n2", subnet="10.77.3.128/25"), root)
    auto = backend.create(NetworkCreate(name="n3"), root)
    assert auto["IPAM"]["Config"][0]["Subnet"] == "10.89.0.0/24"
    assert backend.remove("n1", root) is True
    with pytest.raises(NotFoundError):
        backend.remove("n1", root)


@pytest.mark.parametrize("kw, message", [
    ({"subnet": "10.77.5.0/24", "gateway": "10.77.6.1"}, "not a host address"),
    ({"subnet": "10.77.5.1/24"}, "invalid subnet"),
    ({"subnet": "10.77.5.0/24", "ip_range": "10.78.0.0/24"}, "not inside"),
    ({"subnet": "10.77.5.0/24", "ipv6": True}, "ipv6"),
    ({"subnet": "10.77.5.0/24", "options": {"foo": "1"}}, "not supported"),
    ({"subnet": "10.77.5.0/24", "options": {"mtu": "9"}}, "invalid mtu"),
    ({"subnet": "10.77.5.0/24", "driver": "macvlan"}, "not supported"),
])
def test_bad_requests_are_refused_and_leave_nothing(root, kw, message):
    with pytest.raises(UsageError, match=message):
        backend.create(NetworkCreate(name="bad", **kw), root)
    assert not os.path.exists(conflist.path_of(root, "bad"))


def test_host_route_overlap_is_refused(root, monkeypatch):
    import ipaddress

    monkeypatch.setattr(backend.hostnet, "host_routes",
                        lambda: [ipaddress.ip_network("192.0.2.0/24")])
    with pytest.raises(UsageError, match="overlaps the host's route to 192.0.2.0/24"):
        backend.create(NetworkCreate(name="r", subnet="192.0.2.0/25"), root)


def test_conflists_of_the_config_dirs_are_read_only(root, tmp_path):
    etc = tmp_path / "etc-cni"
    (etc / "10-k8s.conflist").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "k8s", "plugins": [
            {"type": "bridge", "bridge": "cni0",
             "ipam": {"type": "host-local", "subnet": "10.244.0.0/24"}}]}))
    (etc / "20-one.conf").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "one", "type": "ptp",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.0.0/24"}]]}}))
    (etc / "30-junk.conflist").write_text("{not json")
    nets = {n["Name"]: n for n in backend.list_all(root)}
    assert set(nets) == {"k8s", "one"}
    assert nets["k8s"]["ReadOnly"] and nets["k8s"]["IPAM"]["Config"] == [
        {"Subnet": "10.244.0.0/24", "Gateway": "10.244.0.1"}]
    assert nets["one"]["Driver"] == "ptp"
    with pytest.raises(UsageError, match="remove the file yourself"):
        backend.remove("k8s", root)
    with pytest.raises(ConflictError, match="overlaps network k8s"):
        backend.create(NetworkCreate(name="x", subnet="10.244.0.0/16"), root)


def test_plugin_conf_passes_only_declared_capabilities():
    lst = {"cniVersion": "1.0.0", "name": "n", "plugins": []}
    rc = {"portMappings": [{"hostPort": 1}], "ips": ["10.0.0.5"], "mac": "02:00:00:00:00:01"}
    port = invoke.plugin_conf(lst, {"type": "portmap", "capabilities": {"portMappings": True}},
                              rc, {"cniVersion": "1.0.0"})
    assert port["runtimeConfig"] == {"portMappings": [{"hostPort": 1}]}
    assert port["prevResult"] == {"cniVersion": "1.0.0"} and port["name"] == "n"
    fw = invoke.plugin_conf(lst, {"type": "firewall"}, rc, None)
    assert "runtimeConfig" not in fw and "prevResult" not in fw


RESULT_100 = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "pyrtc0", "mac": "aa:aa:aa:aa:aa:aa"},
                   {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                   {"name": "eth0", "mac": "02:42:0a:4d:01:02", "sandbox": "/run/netns/x"}],
    "ips": [{"interface": 2, "address": "10.77.1.2/24", "gateway": "10.77.1.1"}],
    "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.77.1.1"]},
}


def test_result_to_record_entry():
    ep = result.endpoint(RESULT_100, "eth0", "web", "i" * 64, ["db"], ["c1"])
    assert ep == {"IPAddress": "10.77.1.2", "IPPrefixLen": 24, "Gateway": "10.77.1.1",
                  "MacAddress": "02:42:0a:4d:01:02", "GlobalIPv6Address": "",
                  "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "", "Aliases": ["db"],
                  "NetworkID": "i" * 64, "DNSNames": ["c1"]}
    assert result.dns_of(RESULT_100) == (["10.77.1.1"], [])
    assert result.addresses(RESULT_100) == ["10.77.1.2"]


def test_result_040_with_ipv6():
    res = {"cniVersion": "0.4.0",
           "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:09", "sandbox": "/x"}],
           "ips": [{"version": "4", "interface": 0, "address": "10.1.0.9/16", "gateway": "10.1.0.1"},
                   {"version": "6", "interface": 0, "address": "fd00::9/64", "gateway": "fd00::1"}]}
    ep = result.endpoint(res, "eth0", "n", "x")
    assert (ep["IPAddress"], ep["IPPrefixLen"], ep["GlobalIPv6Address"], ep["IPv6Gateway"]) == \
        ("10.1.0.9", 16, "fd00::9", "fd00::1")


def test_hooks_are_silent_unless_chosen(monkeypatch, tmp_path):
    monkeypatch.setenv("PYRT_NETWORK_BACKEND", "bridge")
    assert plugin.pyrt_network_backend() is None
    assert plugin.pyrt_network_list(root=str(tmp_path), runroot=str(tmp_path)) is None
    monkeypatch.setenv("PYRT_NETWORK_BACKEND", "cni")
    assert plugin.pyrt_network_backend() == "cni"
    monkeypatch.delenv("PYRT_NETWORK_BACKEND")
    import importlib.util

    bridge_installed = importlib.util.find_spec("pyrt_network") is not None
    assert (plugin.pyrt_network_backend() is None) == bridge_installed


def test_ports_chosen_and_refused(root, monkeypatch):
    monkeypatch.setattr(backend.hostnet, "port_free", lambda port, proto, ip: port != 8000)
    monkeypatch.setattr(backend.hostnet, "any_free_port", lambda proto, ip: 40000)
    net = ContainerNetworking(mode="networks", attachments=[NetworkAttachment("n")],
                              ports=[PortMapping(80, "tcp", "", 0),
                                     PortMapping(81, "tcp", "", 8000, 8002)])
    ports = backend._resolve_ports(net, root)
    assert [p["host_port"] for p in ports] == [40000, 8001]
    with pytest.raises(ConflictError, match="8000/tcp"):
        backend._resolve_ports(ContainerNetworking(
            mode="networks", ports=[PortMapping(80, "tcp", "", 8000)]), root)
    with pytest.raises(UsageError, match="sctp"):
        backend._resolve_ports(ContainerNetworking(
            mode="networks", ports=[PortMapping(80, "sctp", "", 9)]), root)


def test_settings_dirs(monkeypatch):
    monkeypatch.setenv("PYRT_CNI_PATH", "/a:/b:")
    assert settings.plugin_dirs() == ["/a", "/b"]
    with pytest.raises(invoke.CNIError, match="not found in /a:/b"):
        invoke.find_plugin("bridge", ["/a", "/b"])
    with pytest.raises(invoke.CNIError, match="invalid"):
        invoke.find_plugin("../x", ["/a"])


class FakeIptables:
    """iptables -S output per table; records the other calls."""

    def __init__(self, tables):
        self.tables, self.calls = tables, []

    def __call__(self, *args):
        import subprocess

        table, op = args[1], args[2]
        if op == "-S":
            return subprocess.CompletedProcess(args, 0, self.tables.get(table, ""), "")
        self.calls.append(" ".join(args))
        return subprocess.CompletedProcess(args, 0, "", "")


NAT_IDLE = """-P PREROUTING ACCEPT
-N CNI-HOSTPORT-DNAT
-N CNI-HOSTPORT-MASQ
-N CNI-HOSTPORT-SETMARK
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
"""
CONTAINER_RULE = ('-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"n\\" id: '
                  '\\"abc\\"" -m multiport --dports 8080 -j CNI-DN-1234\n')


def test_idle_shared_chains_are_removed(monkeypatch):
    from pyrt_network_cni import hostnet

    fake = FakeIptables({"nat": NAT_IDLE})
    monkeypatch.setattr(hostnet, "_iptables", fake)
    removed = hostnet.remove_idle_shared_chains()
    assert "-t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in fake.calls
    assert "-t nat -D POSTROUTING -m comment --comment CNI portfwd requiring masquerade " \
           "-j CNI-HOSTPORT-MASQ" in fake.calls
    assert {c for c in fake.calls if " -X " in c} == {
        "-t nat -X CNI-HOSTPORT-DNAT", "-t nat -X CNI-HOSTPORT-MASQ", "-t nat -X CNI-HOSTPORT-SETMARK"}
    assert len(removed) == 6


def test_shared_chains_in_use_are_kept(monkeypatch):
    from pyrt_network_cni import hostnet

    fake = FakeIptables({"nat": NAT_IDLE + CONTAINER_RULE,
                         "filter": "-N CNI-FORWARD\n-N CNI-ADMIN\n"
                                   "-A FORWARD -m comment --comment x -j CNI-FORWARD\n"
                                   "-A CNI-ADMIN -s 10.0.0.0/8 -j DROP\n"
                                   "-A CNI-FORWARD -j CNI-ADMIN\n"})
    monkeypatch.setattr(hostnet, "_iptables", fake)
    assert hostnet.remove_idle_shared_chains() == [] and fake.calls == []


def test_container_rules_are_swept(monkeypatch):
    from pyrt_network_cni import hostnet

    fake = FakeIptables({"nat": '-A POSTROUTING -s 10.9.0.2/32 -m comment --comment '
                                '"name: \\"n\\" id: \\"abc\\"" -j CNI-0123456789abcdef01234567\n'
                                '-A POSTROUTING -s 10.9.0.3/32 -m comment --comment '
                                '"name: \\"n\\" id: \\"other\\"" -j CNI-aaaa\n'})
    monkeypatch.setattr(hostnet, "_iptables", fake)
    hostnet.sweep_container_rules("abc")
    assert fake.calls == [
        '-t nat -D POSTROUTING -s 10.9.0.2/32 -m comment --comment name: "n" id: "abc" '
        '-j CNI-0123456789abcdef01234567',
        "-t nat -F CNI-0123456789abcdef01234567", "-t nat -X CNI-0123456789abcdef01234567"]


def test_isolation_rules_of_a_bridge_go_with_it(monkeypatch):
    from pyrt_network_cni import hostnet

    fake = FakeIptables({"filter": "-N CNI-ISOLATION-STAGE-1\n-N CNI-ISOLATION-STAGE-2\n"
                                   "-A FORWARD -m comment --comment x -j CNI-ISOLATION-STAGE-1\n"
                                   "-A CNI-ISOLATION-STAGE-1 -i pyrtc1 ! -o pyrtc1 -j CNI-ISOLATION-STAGE-2\n"
                                   "-A CNI-ISOLATION-STAGE-1 -i pyrtc2 ! -o pyrtc2 -j CNI-ISOLATION-STAGE-2\n"
                                   '-A CNI-ISOLATION-STAGE-1 -m comment --comment "CNI x" -j RETURN\n'
                                   "-A CNI-ISOLATION-STAGE-2 -o pyrtc1 -j DROP\n"
                                   "-A CNI-ISOLATION-STAGE-2 -j RETURN\n"})
    monkeypatch.setattr(hostnet, "_iptables", fake)
    assert len(hostnet.remove_bridge_isolation("pyrtc1")) == 2
    assert fake.calls == [
        "-t filter -D CNI-ISOLATION-STAGE-1 -i pyrtc1 ! -o pyrtc1 -j CNI-ISOLATION-STAGE-2",
        "-t filter -D CNI-ISOLATION-STAGE-2 -o pyrtc1 -j DROP"]
    fake.calls.clear()
    assert hostnet.remove_idle_shared_chains() == []  # pyrtc2's rule still uses them
    fake.tables["filter"] = "\n".join(l for l in fake.tables["filter"].splitlines()
                                      if "pyrtc" not in l)
    removed = hostnet.remove_idle_shared_chains()
    assert "-t filter -X CNI-ISOLATION-STAGE-1" in fake.calls and len(removed) == 3
