"""``NetworkSettings`` of ``pyrt inspect``: the one place it is built.

Kept apart so that the networking work fills this one function (from the container's
network record) without touching the rest of the inspect shape (docker_shape.py).  Without
a network record it is docker's shape for a container with no network of its own
(``--network none``/``host``): the keys docker always prints, empty.
"""
from __future__ import annotations


def network_settings(engine, container) -> dict:
    """docker's ``NetworkSettings`` for ``container``: the keys docker always prints,
    filled from the container's network record (cli/containers/ports.py)."""
    from .ports import network_settings as from_record

    out = {
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": {}, "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
        "Networks": {},
    }
    out.update(from_record(engine, container))
    return out
