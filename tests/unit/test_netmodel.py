"""docker's port and expose syntax (pyrt_core.netmodel) and the networking types' JSON form."""
import pytest

from pyrt_core.errors import UsageError
from pyrt_core.netmodel import (ContainerNetworking, NetworkAttachment, PortMapping, parse_expose,
                                parse_publish)


@pytest.mark.parametrize("spec, want", [
    ("80", [PortMapping(80)]),
    ("8080:80", [PortMapping(80, "tcp", "", 8080)]),
    ("127.0.0.1:8080:80/udp", [PortMapping(80, "udp", "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [PortMapping(80, "tcp", "127.0.0.1", 0)]),
    ("[::1]:8080:80", [PortMapping(80, "tcp", "::1", 8080)]),
    ("8000-8001:80-81", [PortMapping(80, "tcp", "", 8000), PortMapping(81, "tcp", "", 8001)]),
    ("80-81", [PortMapping(80), PortMapping(81)]),
    ("8000-8010:80", [PortMapping(80, "tcp", "", 8000, 8010)]),
    ("53:53/UDP", [PortMapping(53, "udp", "", 53)]),
])
def test_publish_syntax(spec, want):
    assert parse_publish(spec) == want


@pytest.mark.parametrize("spec, words", [
    ("0:80", "host port '0'"),
    ("x:80", "host port 'x'"),
    ("8080:80/icmp", "protocol 'icmp'"),
    ("1.2.3:80:80", "IP address '1.2.3'"),
    ("70000", "container port '70000'"),
    ("8000-8002:80-81", "differ in length"),
    ("1:2:3:4", "invalid port specification"),
    ("8080:", "no container port"),
    ("[::1]80", "invalid port specification"),
])
def test_publish_refuses_with_one_line(spec, words):
    with pytest.raises(UsageError) as e:
        parse_publish(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_expose():
    assert parse_expose("80") == [(80, "tcp")]
    assert parse_expose("53/udp") == [(53, "udp")]
    assert parse_expose("8000-8001/tcp") == [(8000, "tcp"), (8001, "tcp")]
    with pytest.raises(UsageError):
        parse_expose("http")


def test_container_networking_round_trips():
    n = ContainerNetworking(mode="networks", attachments=[
        NetworkAttachment("bridge"), NetworkAttachment("web", ("db", "pg"), "10.5.0.9", None,
                                                       "02:42:0a:05:00:09")],
        ports=[PortMapping(80, "tcp", "127.0.0.1", 0, 0)], hostname="h", name="web1",
        dns=["10.0.0.1"], extra_hosts=["db:10.1.1.1"])
    assert ContainerNetworking.from_dict(n.to_dict()) == n
    assert n.networks == ["bridge", "web"]
    assert ContainerNetworking.from_dict(None).mode == "none"
