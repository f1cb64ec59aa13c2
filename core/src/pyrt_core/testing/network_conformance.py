"""The network-backend conformance suite, an opt-in pytest plugin (issue 15).

Every network backend (pyrt-network's Linux bridge, pyrt-network-cni, a third party's)
should pass it.  It drives the backend through the ``pyrt_network_*`` hooks only
(:mod:`pyrt_core.hookspecs`, "Networking"), with a plugin manager that loaded the
installed plugins and the backend chosen by ``PYRT_NETWORK_BACKEND``, as ``pyrt``
itself would.  To test yours, opt in from your suite's top-level ``conftest.py``::

    pytest_plugins = ["pyrt_core.testing.network_conformance"]

and subclass :class:`NetworkConformance` in a test module (privileged: root, the
host's kernel; run it under ``flock /tmp/pyrt-test.lock`` like every privileged test)::

    from pyrt_core.testing.network_conformance import NetworkConformance

    class TestMyBackend(NetworkConformance):
        backend = "mine"              # what pyrt_network_backend() returns when chosen
        capabilities = {"ports", "isolation", "internal"}   # what it supports

A backend declares what it supports in ``capabilities``; the tests of a feature it does
not declare are deselected at collection (a skip would fail in CI, where a skip must
name a machine fact) and named in the terminal summary.  The features: ``ports`` (published TCP ports, from the
host's 127.0.0.1), ``isolation`` (containers on different networks cannot reach each
other), ``internal`` (an ``--internal`` network gives no way out: no default route),
``connect`` (``pyrt network connect``/``disconnect`` of a running container), ``dns``
and ``ipv6`` (their deeper tests are the backend's own; the suite checks that a backend
that declares them delivers an IPv6 address and names a resolver, and that one that
does not refuses ``--ipv6`` with one line and claims no resolver).

What is checked: the backend's name when chosen and silence when not; ``create``'s
inspect form, ``list``, ``remove``; refusal of a taken name, a subnet that overlaps a
host route or another network, a gateway outside its subnet; ``setup``'s record
(docker's NetworkSettings names) against the interface, address, MAC and default
route seen inside the namespace; the gateway and a second container reachable;
``teardown`` releasing everything (interfaces gone, the address reusable: a /30 network
holds one container), with the record None, with the namespace gone, twice; a
failed ``setup`` leaving nothing; ``validate``; published ports; isolation; an
internal network; ``recover``.

Each test works under its own ``root``/``runroot`` (below ``tmp_path``), with network
namespaces it makes itself (``ip netns add pyrt-t-<random>``), subnets chosen at test
time to overlap no host route (10.200-250.x.x), and traffic only between the host's
loopback, the test's networks' gateways and those namespaces.  Whatever a test set up
is torn down and removed by the suite's fixtures even when it fails, and a test
fails when the host has an interface, network namespace or nftables table, chain or
rule more at the end than at its start.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil

import pytest

from pyrt_core.errors import NotFoundError, PyrtError
from pyrt_core.testing import nettools
from pyrt_core.testing.netharness import (
    NetworkHarness,
    entry,
    ipv4_of,
    ns_interfaces,
    subnet_of,
)
from pyrt_core.testing.nettools import connect, ns_default_gateway

__all__ = ["NetworkConformance", "NetworkHarness", "ALL_CAPABILITIES", "RECORD_NETWORK_KEYS"]

#: every feature a backend may declare
ALL_CAPABILITIES = frozenset({"ports", "internal", "dns", "isolation", "ipv6", "connect"})
#: the keys of one network in a network record (docker's EndpointSettings names)
RECORD_NETWORK_KEYS = ("IPAddress", "IPPrefixLen", "Gateway", "MacAddress",
                       "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPv6Gateway", "Aliases",
                       "NetworkID", "DNSNames")
#: the keys of a network's inspect form (docker's NetworkResource)
INSPECT_KEYS = ("Name", "Id", "Driver", "Scope", "IPAM", "Internal", "EnableIPv6", "Labels",
                "Options", "Created")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "network_conformance: a test of pyrt's network-backend conformance suite")
    config.addinivalue_line(
        "markers", "network_feature(name): a conformance test of a feature a backend may "
        "not declare (NetworkConformance.capabilities)")


_DESELECTED = pytest.StashKey[list]()


def pytest_collection_modifyitems(config, items):
    """Deselect the tests of features the backend under test does not declare (a skip
    would fail in CI, pyrt_core.testing.machine; not supporting a feature is the
    backend's declaration, not a fact of the machine); the terminal summary names them."""
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("network_feature")
        cls = getattr(item, "cls", None)
        if mark and cls is not None and issubclass(cls, NetworkConformance) \
                and mark.args[0] not in cls.capabilities:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
        config.stash[_DESELECTED] = [
            f"{i.cls.__name__}.{i.name} ({i.get_closest_marker('network_feature').args[0]})"
            for i in drop]


def pytest_terminal_summary(terminalreporter, config):
    names = config.stash.get(_DESELECTED, None)
    if names:
        terminalreporter.write_line(
            "network conformance: not run, features the backend does not declare: "
            + ", ".join(names))


# -- the suite ---------------------------------------------------------------------------------
class NetworkConformance:
    """Subclass as ``Test<Something>``; set :attr:`backend` and :attr:`capabilities`."""

    pytestmark = [pytest.mark.network_conformance, pytest.mark.privileged]

    #: what ``pyrt_network_backend()`` returns when this backend is chosen
    backend: str = ""
    #: the features the backend supports (a subset of :data:`ALL_CAPABILITIES`)
    capabilities: frozenset[str] | set[str] = ALL_CAPABILITIES
    #: the environment that chooses the backend (default: PYRT_NETWORK_BACKEND=backend)
    environment: dict[str, str] | None = None

    def make_plugin_manager(self):
        """The plugin manager pyrt would use: the installed plugins, by entry point."""
        from pyrt_core.plugins import make_plugin_manager

        return make_plugin_manager()

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _nothing_left(self):
        """The host's interfaces, namespaces and nftables items at the start; a test
        that ends with more fails (this fixture is torn down after the others)."""
        if os.geteuid() != 0:
            pytest.skip("the network conformance suite needs root")
        for tool in ("ip", "nsenter", "nft"):
            if not shutil.which(tool):
                pytest.skip(f"the network conformance suite needs {tool!r}")
        before = nettools.host_state()
        yield
        left = nettools.new_since(before)
        if left:
            pytest.fail("the test left on the host:\n    " + "\n    ".join(left[:40]),
                        pytrace=False)

    @pytest.fixture
    def net(self, tmp_path, monkeypatch):
        """The :class:`NetworkHarness` of the test: the backend chosen, under a root and
        runroot of its own; everything it made is removed at the end."""
        if not self.backend:
            raise TypeError(f"{type(self).__name__}: set backend")
        env = self.environment if self.environment is not None \
            else {"PYRT_NETWORK_BACKEND": self.backend}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        root, runroot = tmp_path / "root", tmp_path / "run"
        root.mkdir()
        runroot.mkdir()
        harness = NetworkHarness(self.make_plugin_manager(), str(root), str(runroot),
                                 self.capabilities)
        try:
            yield harness
        finally:
            errors = harness.cleanup()
        if errors:
            pytest.fail("cleaning up after the test failed:\n    " + "\n    ".join(errors),
                        pytrace=False)

    # -- choosing the backend -------------------------------------------------------------
    def test_backend_name_when_chosen(self, net):
        assert net.pm.hook.pyrt_network_backend() == self.backend

    def test_silent_when_not_chosen(self, net, monkeypatch):
        monkeypatch.setenv("PYRT_NETWORK_BACKEND", "no-such-backend-" + secrets.token_hex(2))
        pm = self.make_plugin_manager()
        assert pm.hook.pyrt_network_backend() is None
        assert pm.hook.pyrt_network_list(root=net.root, runroot=net.runroot) is None

    # -- networks ----------------------------------------------------------------------------
    def test_create_inspect_list_remove(self, net):
        subnet = net.free_subnet()
        info = net.create(subnet, labels={"conformance": "yes"})
        for key in INSPECT_KEYS:
            assert key in info, f"the inspect form of a network lacks {key!r}: {info!r}"
        name = info["Name"]
        assert info["Internal"] is False
        assert info["Labels"].get("conformance") == "yes"
        assert subnet_of(info) == subnet
        gateway = info["IPAM"]["Config"][0].get("Gateway")
        assert gateway and ipaddress.ip_address(gateway) in ipaddress.ip_network(subnet)
        listed = {n["Name"]: n for n in net.listed()}
        assert name in listed and listed[name]["Id"] == info["Id"]
        assert subnet_of(listed[name]) == subnet
        assert net.remove(name) is True
        assert name not in {n["Name"] for n in net.listed()}
        with pytest.raises(NotFoundError):
            net.remove(name)

    def test_taken_name_is_refused(self, net):
        info = net.create()
        before = net.listed()
        with pytest.raises(PyrtError):
            net.create(name=info["Name"])
        assert net.listed() == before

    def test_overlapping_subnet_is_refused(self, net):
        first = net.create()
        inside = str(next(ipaddress.ip_network(subnet_of(first)).subnets(new_prefix=26)))
        names = {n["Name"] for n in net.listed()}
        with pytest.raises(PyrtError, match=r"(?i)overlap"):
            net.create(inside)
        assert {n["Name"] for n in net.listed()} == names

    def test_subnet_of_a_host_route_is_refused(self, net):
        routes = [r for r in nettools.host_routes("main")
                  if r.prefixlen >= 8 and not r.is_loopback and r.prefixlen < 32]
        if not routes:
            pytest.skip("the host has no IPv4 route but the default one to overlap")
        names = {n["Name"] for n in net.listed()}
        with pytest.raises(PyrtError, match=r"(?i)overlap"):
            net.create(str(routes[0]))
        assert {n["Name"] for n in net.listed()} == names

    def test_gateway_outside_the_subnet_is_refused(self, net):
        subnet = ipaddress.ip_network(net.free_subnet())
        outside = str(subnet.broadcast_address + 2)
        names = {n["Name"] for n in net.listed()}
        with pytest.raises(PyrtError):
            net.create(str(subnet), gateway=outside)
        assert {n["Name"] for n in net.listed()} == names

    # -- containers ----------------------------------------------------------------------
    def test_setup_record_matches_the_namespace(self, net):
        info = net.create()
        name, subnet = info["Name"], ipaddress.ip_network(subnet_of(info))
        ns = net.netns()
        cid, record = net.setup(ns, [name])
        ep = entry(record, name)
        for key in RECORD_NETWORK_KEYS:
            assert key in ep, f"the record's entry for {name} lacks {key!r}: {ep!r}"
        assert ipaddress.ip_address(ep["IPAddress"]) in subnet
        assert ep["IPPrefixLen"] == subnet.prefixlen
        assert ep["Gateway"] == info["IPAM"]["Config"][0]["Gateway"]
        assert isinstance(record.get("ports"), list)
        for key in ("dns_servers", "dns_search"):
            assert isinstance(record.get(key, []), list), f"record[{key!r}] is not a list"
        links = ns_interfaces(ns)
        with_address = [n for n, link in links.items()
                        if f'{ep["IPAddress"]}/{ep["IPPrefixLen"]}' in ipv4_of(link)]
        assert with_address, f"no interface in the namespace has {ep['IPAddress']}: {links}"
        link = links[with_address[0]]
        assert link["address"].lower() == ep["MacAddress"].lower()
        assert "UP" in link["flags"]
        assert ns_default_gateway(ns) == ep["Gateway"]
        net.teardown(cid, ns, record)

    def test_gateway_is_reachable(self, net):
        info = net.create()
        ns = net.netns()
        cid, record = net.setup(ns, [info["Name"]])
        gateway = entry(record, info["Name"])["Gateway"]
        srv = net.server(None, gateway)
        assert srv.answered(connect(ns, gateway, srv.port)), \
            f"the container cannot reach a server on its gateway {gateway}"

    def test_two_containers_reach_each_other(self, net):
        name = net.create()["Name"]
        ns_a, ns_b = net.netns(), net.netns()
        _, rec_a = net.setup(ns_a, [name])
        _, rec_b = net.setup(ns_b, [name])
        ip_a, ip_b = entry(rec_a, name)["IPAddress"], entry(rec_b, name)["IPAddress"]
        assert ip_a != ip_b
        srv = net.server(ns_a, ip_a)
        reply = connect(ns_b, ip_a, srv.port)
        assert srv.answered(reply), f"{ip_b} cannot reach {ip_a} on one network: {reply!r}"
        assert reply.split()[2] == ip_b, f"the peer was seen as {reply.split()[2]}, not {ip_b}"

    def test_teardown_releases_interface_and_address(self, net):
        """On a /30 network (one address for one container): a second setup fails and
        leaves nothing; after the first container's teardown it succeeds with the
        address the first one had."""
        name = net.create(net.free_subnet(30))["Name"]
        ns_a, ns_b = net.netns(), net.netns()
        links_before = nettools.host_links()
        cid_a, rec_a = net.setup(ns_a, [name])
        ip_a = entry(rec_a, name)["IPAddress"]
        with pytest.raises(PyrtError):
            net.setup(ns_b, [name])
        assert ns_interfaces(ns_b) == {}, "a failed setup left interfaces in the namespace"
        net.teardown(cid_a, ns_a, rec_a)
        assert ns_interfaces(ns_a) == {}, "teardown left interfaces in the namespace"
        # the bridge (what the network holds) may stay until the network goes
        stale = [n for n in nettools.host_links() - links_before if not _is_bridge(n)]
        assert not stale, f"teardown left host interfaces: {stale}"
        cid_b, rec_b = net.setup(ns_b, [name])
        assert entry(rec_b, name)["IPAddress"] == ip_a

    def test_teardown_without_record(self, net):
        name = net.create(net.free_subnet(30))["Name"]
        ns_a, ns_b = net.netns(), net.netns()
        cid_a, _ = net.setup(ns_a, [name])
        net.teardown(cid_a, ns_a, None)
        assert ns_interfaces(ns_a) == {}
        net.setup(ns_b, [name])  # the one address was released

    def test_teardown_after_the_namespace_is_gone(self, net):
        name = net.create(net.free_subnet(30))["Name"]
        ns_a, ns_b = net.netns(), net.netns()
        cid_a, rec_a = net.setup(ns_a, [name])
        nettools.del_netns(ns_a)
        net.teardown(cid_a, None, rec_a)
        net.setup(ns_b, [name])

    def test_teardown_twice(self, net):
        name = net.create()["Name"]
        ns = net.netns()
        cid, record = net.setup(ns, [name])
        net.teardown(cid, ns, record)
        net.teardown(cid, ns, record)
        net.teardown(cid, ns, None)

    def test_teardown_of_an_unknown_container(self, net):
        net.create()
        net.teardown(secrets.token_hex(32), None, None)

    def test_remove_refused_while_a_container_is_attached(self, net):
        name = net.create()["Name"]
        ns = net.netns()
        cid, record = net.setup(ns, [name])
        with pytest.raises(PyrtError):
            net.remove(name)
        assert name in {n["Name"] for n in net.listed()}
        net.teardown(cid, ns, record)
        assert net.remove(name) is True

    def test_validate(self, net):
        name = net.create()["Name"]
        assert net.hook("validate", networking=net.networking([name])) is True
        with pytest.raises(PyrtError):
            net.hook("validate", networking=net.networking(["pyrt-t-missing-" + secrets.token_hex(2)]))

    def test_setup_on_an_unknown_network_fails_cleanly(self, net):
        ns = net.netns()
        with pytest.raises(PyrtError):
            net.setup(ns, ["pyrt-t-missing-" + secrets.token_hex(2)])
        assert ns_interfaces(ns) == {}

    # -- published ports --------------------------------------------------------------------
    @pytest.mark.network_feature("ports")
    def test_published_port_from_loopback(self, net):
        from pyrt_core.netmodel import PortMapping

        name = net.create()["Name"]
        ns = net.netns()
        # free on every address, as a publish on all of them needs (a port free on 127.0.0.1
        # may still be held elsewhere, e.g. by an earlier test's connection in TIME_WAIT)
        host_port = nettools.free_port("0.0.0.0")
        cid, record = net.setup(ns, [name], ports=[PortMapping(8080, "tcp", "", host_port),
                                                   PortMapping(8081, "tcp", "", 0)])
        ports = {(p["container_port"], p["protocol"]): p for p in record["ports"]}
        assert ports[(8080, "tcp")]["host_port"] == host_port
        chosen = ports[(8081, "tcp")]["host_port"]
        assert chosen and chosen != host_port, f"no host port chosen for -p 8081: {ports}"
        srv = net.server(ns, "0.0.0.0", 8080)
        srv2 = net.server(ns, "0.0.0.0", 8081)
        assert srv.answered(connect(None, "127.0.0.1", host_port)), \
            f"127.0.0.1:{host_port} does not reach the container's port 8080"
        assert srv2.answered(connect(None, "127.0.0.1", chosen)), \
            f"127.0.0.1:{chosen} (chosen) does not reach the container's port 8081"
        net.teardown(cid, ns, record)
        assert connect(None, "127.0.0.1", host_port, timeout=1) is None, \
            "the port still answers after teardown"

    @pytest.mark.network_feature("ports")
    def test_port_in_use_is_refused(self, net):
        from pyrt_core.netmodel import PortMapping

        name = net.create()["Name"]
        srv = net.server(None, "127.0.0.1")
        networking = net.networking([name], ports=[PortMapping(80, "tcp", "", srv.port)])
        with pytest.raises(PyrtError, match=str(srv.port)):
            net.hook("validate", networking=networking)
        ns = net.netns()
        _, record = net.setup(ns, [name], ports=[PortMapping(80, "tcp", "", nettools.free_port("0.0.0.0"))])
        taken = record["ports"][0]["host_port"]
        other = net.networking([name], ports=[PortMapping(81, "tcp", "", taken)])
        with pytest.raises(PyrtError, match=str(taken)):
            net.hook("validate", networking=other)

    # -- isolation, internal --------------------------------------------------------------------
    @pytest.mark.network_feature("isolation")
    def test_networks_are_isolated(self, net):
        one, two = net.create()["Name"], net.create()["Name"]
        ns_a, ns_b = net.netns(), net.netns()
        _, rec_a = net.setup(ns_a, [one])
        net.setup(ns_b, [two])
        ip_a = entry(rec_a, one)["IPAddress"]
        srv = net.server(ns_a, ip_a)
        assert connect(ns_b, ip_a, srv.port, timeout=2) is None, \
            f"a container on {two} reached {ip_a} on {one}"

    @pytest.mark.network_feature("internal")
    def test_internal_network_has_no_way_out(self, net):
        info = net.create(internal=True)
        assert info["Internal"] is True
        ns = net.netns()
        net.setup(ns, [info["Name"]])
        assert ns_default_gateway(ns) is None, "a container on an internal network has a default route"

    # -- connect, disconnect -------------------------------------------------------------------
    @pytest.mark.network_feature("connect")
    def test_connect_and_disconnect(self, net):
        one, two = net.create()["Name"], net.create()["Name"]
        ns = net.netns()
        cid, record = net.setup(ns, [one])
        assert len(ns_interfaces(ns)) == 1
        networking = net.networking([one, two])
        record = net.hook("connect", container_id=cid, netns=ns, networking=networking,
                          network=two, record=record)
        net.containers[cid] = (ns, record)
        ep_one, ep_two = entry(record, one), entry(record, two)
        links = ns_interfaces(ns)
        assert len(links) == 2, f"connect did not add an interface: {links}"
        addrs = [a for link in links.values() for a in ipv4_of(link)]
        assert f'{ep_two["IPAddress"]}/{ep_two["IPPrefixLen"]}' in addrs
        assert ns_default_gateway(ns) == ep_one["Gateway"], "connect moved the default route"
        record = net.hook("disconnect", container_id=cid, netns=ns, network=two, record=record)
        net.containers[cid] = (ns, record)
        assert set(record["networks"]) == {one}
        links = ns_interfaces(ns)
        assert len(links) == 1 and f'{ep_one["IPAddress"]}/{ep_one["IPPrefixLen"]}' in \
            ipv4_of(next(iter(links.values())))
        net.remove(two)  # nothing attached to it any more
        net.teardown(cid, ns, record)

    # -- IPv6 and name resolution: each supported, or its absence said ------------------------
    def test_ipv6_network_or_a_clear_refusal(self, net):
        """Declared ``ipv6``: an ``--ipv6`` network has an IPv6 subnet, and a container on
        it an IPv6 address of that subnet on its interface.  Not declared: the request
        is refused with one line naming IPv6, and no network is made (never a network
        that silently has no IPv6)."""
        names = {n["Name"] for n in net.listed()}
        if "ipv6" not in net.capabilities:
            with pytest.raises(PyrtError) as refused:
                net.create(ipv6=True)
            message = str(refused.value)
            assert "ipv6" in message.lower() and "\n" not in message.strip(), message
            assert {n["Name"] for n in net.listed()} == names
            return
        info = net.create(ipv6=True)
        assert info["EnableIPv6"] is True
        v6 = [c for c in info["IPAM"]["Config"] if ":" in c["Subnet"]]
        assert v6, f"an --ipv6 network without an IPv6 subnet: {info!r}"
        ns = net.netns()
        cid, record = net.setup(ns, [info["Name"]])
        ep = entry(record, info["Name"])
        assert ipaddress.ip_address(ep["GlobalIPv6Address"]) in ipaddress.ip_network(v6[0]["Subnet"])
        addrs = [a["local"] for link in ns_interfaces(ns).values()
                 for a in link.get("addr_info", ()) if a.get("family") == "inet6"]
        assert ep["GlobalIPv6Address"] in addrs, addrs
        net.teardown(cid, ns, record)

    def test_name_resolution_or_none_claimed(self, net):
        """A container with a network alias on a user-defined network.  Declared ``dns``:
        the record names a resolver (``dns_servers``: the container's resolv.conf) and
        the alias among the endpoint's names.  Not declared: the record names no
        resolver of the backend's own, so the container gets its ``--dns`` servers or
        the host's (the engine's rule), while the alias is still kept for ``inspect``;
        names of other containers are not resolved (the backend's documented limit)."""
        from pyrt_core.netmodel import ContainerNetworking, NetworkAttachment

        name = net.create()["Name"]
        ns = net.netns()
        cid = secrets.token_hex(32)
        networking = ContainerNetworking(
            mode="networks", attachments=[NetworkAttachment(name, aliases=("db-alias",))],
            hostname="c" + cid[:10], name="c" + cid[:10])
        net.containers[cid] = (ns, None)
        record = net.hook("setup", container_id=cid, netns=ns, networking=networking)
        net.containers[cid] = (ns, record)
        ep = entry(record, name)
        assert "db-alias" in ep["Aliases"], ep
        if "dns" in net.capabilities:
            assert record.get("dns_servers"), f"a backend with dns names no resolver: {record!r}"
            assert "db-alias" in ep["DNSNames"], ep
        else:
            assert record.get("dns_servers", []) == [], \
                f"a backend without dns names a resolver: {record!r}"
        net.teardown(cid, ns, record)

    # -- recovery ---------------------------------------------------------------------------------
    def test_recover_releases_what_is_not_live(self, net):
        name = net.create()["Name"]
        ns_dead, ns_live = net.netns(), net.netns()
        cid_dead, _ = net.setup(ns_dead, [name])
        cid_live, rec_live = net.setup(ns_live, [name])
        nettools.del_netns(ns_dead)  # a crash: the namespace is gone, the record lost
        lines = net.hook("recover", live=[cid_live])
        assert isinstance(lines, list) and all(isinstance(x, str) for x in lines)
        assert any(cid_dead[:12] in x for x in lines), \
            f"recover did not say it released {cid_dead[:12]}: {lines}"
        net.containers.pop(cid_dead, None)
        again = net.hook("recover", live=[cid_live])
        assert not any(cid_dead[:12] in x for x in again or ())
        ip_live = entry(rec_live, name)["IPAddress"]
        assert ns_interfaces(ns_live), "recover took the live container's interface"
        srv = net.server(ns_live, ip_live)
        assert srv.answered(connect(None, ip_live, srv.port)), \
            "the live container is no longer reachable after recover"


def _is_bridge(ifname: str) -> bool:
    """True for a bridge: what a network (not a container) holds, which may stay until
    the network is removed (the end-of-test check still sees it then)."""
    return os.path.isdir(f"/sys/class/net/{ifname}/bridge")
