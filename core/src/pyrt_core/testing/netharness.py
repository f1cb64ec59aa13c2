"""The harness of the network conformance suite (:mod:`pyrt_core.testing.network_conformance`):
one test's view of a network backend through the ``pyrt_network_*`` hooks, which
remembers everything the test made so that it is all removed, in the right order,
whatever happened; and small readers of a network record and of a namespace."""
from __future__ import annotations

import os
import secrets

from pyrt_core.testing import nettools
from pyrt_core.testing.nettools import Server, ns_links


class NetworkHarness:
    """One test's view of the backend: the hooks with its root and runroot filled in,
    and a record of everything the test made (networks, namespaces, containers,
    servers), removed by :meth:`cleanup` in the right order whatever happened."""

    def __init__(self, pm, root: str, runroot: str, capabilities):
        self.pm, self.root, self.runroot = pm, root, runroot
        self.capabilities = frozenset(capabilities)
        self.networks: list[str] = []
        self.namespaces: list[str] = []
        self.containers: dict[str, tuple[str | None, dict | None]] = {}
        self.servers: list[Server] = []
        self.subnets: list[str] = []

    # -- the hooks ------------------------------------------------------------------------
    def hook(self, _hook: str, /, **kw):
        """Call ``pyrt_network_<_hook>`` with ``kw`` and the test's root and runroot."""
        return getattr(self.pm.hook, "pyrt_network_" + _hook)(**kw, root=self.root,
                                                               runroot=self.runroot)

    def listed(self) -> list[dict]:
        return self.hook("list") or []

    def taken_subnets(self) -> list[str]:
        out = list(self.subnets)
        for net in self.listed():
            for cfg in (net.get("IPAM") or {}).get("Config") or ():
                out.append(cfg.get("Subnet", ""))
        return out

    def free_subnet(self, prefix: int = 24) -> str:
        subnet = nettools.free_subnet(self.taken_subnets(), prefix)
        self.subnets.append(subnet)
        return subnet

    def create(self, subnet: str | None = None, name: str | None = None, **kw) -> dict:
        from pyrt_core.netmodel import NetworkCreate

        name = name or "pyrt-t-" + secrets.token_hex(3)
        request = NetworkCreate(name=name, subnet=subnet or self.free_subnet(), **kw)
        self.networks.append(name)
        try:
            return self.hook("create", request=request)
        except BaseException:
            self.networks.remove(name)
            raise

    def remove(self, name: str):
        result = self.hook("remove", name=name)
        if name in self.networks:
            self.networks.remove(name)
        return result

    def netns(self) -> str:
        path = nettools.new_netns()
        self.namespaces.append(path)
        return path

    def networking(self, networks, ports=(), ipv4=None, name: str = ""):
        from pyrt_core.netmodel import ContainerNetworking, NetworkAttachment

        attachments = [NetworkAttachment(n, ipv4=ipv4 if i == 0 else None)
                       for i, n in enumerate(networks)]
        return ContainerNetworking(mode="networks", attachments=attachments, ports=list(ports),
                                   hostname=name, name=name)

    def setup(self, netns: str, networks, ports=(), ipv4=None) -> tuple[str, dict]:
        cid = secrets.token_hex(32)
        networking = self.networking(networks, ports, ipv4, name="c" + cid[:10])
        # recorded before the call: a setup that fails half-way must still be torn down
        self.containers[cid] = (netns, None)
        record = self.hook("setup", container_id=cid, netns=netns, networking=networking)
        self.containers[cid] = (netns, record)
        return cid, record

    def teardown(self, cid: str, netns: str | None, record: dict | None):
        result = self.hook("teardown", container_id=cid, netns=netns, record=record)
        self.containers.pop(cid, None)
        return result

    def server(self, netns: str | None, host: str, port: int = 0) -> Server:
        srv = Server(netns, host, port)
        self.servers.append(srv)
        return srv

    # -- clean-up --------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Stop the servers, tear down the containers, remove the networks and the
        namespaces; what failed, one line each."""
        errors = []
        for srv in self.servers:
            srv.stop()
        for cid, (netns, record) in list(self.containers.items()):
            try:
                self.hook("teardown", container_id=cid,
                          netns=netns if netns and os.path.exists(netns) else None, record=record)
            except Exception as e:  # noqa: BLE001 - reported, and the rest still runs
                errors.append(f"teardown of container {cid[:12]}: {e}")
        for name in reversed(self.networks):
            try:
                self.hook("remove", name=name)
            except Exception as e:  # noqa: BLE001
                errors.append(f"remove of network {name}: {e}")
        for path in self.namespaces:
            nettools.del_netns(path)
        return errors


# -- helpers of the tests ---------------------------------------------------------------------
def ns_interfaces(netns: str) -> dict[str, dict]:
    """The namespace's interfaces but loopback, by name."""
    return {link["ifname"]: link for link in ns_links(netns) if link["ifname"] != "lo"}


def ipv4_of(link: dict) -> list[str]:
    return [f'{a["local"]}/{a["prefixlen"]}' for a in link.get("addr_info", ())
            if a.get("family") == "inet"]


def entry(record: dict, network: str) -> dict:
    assert isinstance(record, dict), f"setup returned {record!r}, not a network record"
    nets = record.get("networks")
    assert isinstance(nets, dict) and network in nets, \
        f"the record's 'networks' has no entry for {network!r}: {record!r}"
    return nets[network]


def subnet_of(inspect: dict) -> str:
    return inspect["IPAM"]["Config"][0]["Subnet"]
