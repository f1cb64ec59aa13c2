"""The network conformance suite (pyrt_core.testing.network_conformance) against the
bridge backend: real bridges, veths and nftables rules, real traffic between loopback
and the suite's own namespaces."""
from pyrt_core.testing.network_conformance import NetworkConformance


class TestBridgeConformance(NetworkConformance):
    backend = "bridge"
    # deeper tests of "dns": test_dns.py; of "ipv6": test_bridge_traffic.py
    capabilities = {"ports", "isolation", "internal", "connect", "ipv6", "dns"}
