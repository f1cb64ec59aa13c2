"""The network conformance suite (pyrt_core.testing.network_conformance) against the
bridge backend: real bridges, veths and nftables rules, real traffic between loopback
and the suite's own namespaces."""
from pyrt_core.testing.network_conformance import NetworkConformance


class TestBridgeConformance(NetworkConformance):
    backend = "bridge"
    # "dns": pyrt_network.dns's own tests; "ipv6": test_bridge_traffic.py::test_ipv6_network
    capabilities = {"ports", "isolation", "internal", "connect", "ipv6"}
