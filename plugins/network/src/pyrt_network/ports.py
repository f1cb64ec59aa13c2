"""Host ports: is one free, pick a free one.  A port is taken when a socket of the host
holds it (bind fails with EADDRINUSE) or another container publishes it (the store's
``ports``).  pyrt does not keep a socket bound for a published port (docker-proxy and
podman's conmon do): there is no long-lived pyrt process to hold it; the check runs at
``create`` (validate) and again, under the store's lock, at each start.
"""
from __future__ import annotations

import errno
import random
import socket

from pyrt_core.api import UsageError


def key(protocol: str, port: int) -> str:
    return f"{protocol}/{port}"


def host_port_free(protocol: str, host_ip: str, port: int) -> bool:
    """Whether a socket of the host could bind ``host_ip:port`` (every address when
    ``host_ip`` is empty)."""
    if protocol == "sctp":
        return True
    fam = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        s.bind((host_ip or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), port))
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        if e.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"host address {host_ip} of a published port is not an "
                             "address of this host") from None
        raise
    finally:
        s.close()
    return True


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
            return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def choose(mapping: dict, taken: dict[str, str], container_id: str) -> int:
    """The host port for one mapping (``protocol``, ``host_ip``, ``host_port``,
    ``host_port_end``): the given one if free, else a free one of its range, or of the
    ephemeral range for 0; UsageError naming the port when none is."""
    proto, hip = mapping["protocol"], mapping.get("host_ip", "")
    first, last = mapping.get("host_port", 0), mapping.get("host_port_end", 0)

    def free(p: int) -> bool:
        return key(proto, p) not in taken and host_port_free(proto, hip, p)

    if first and not last:
        owner = taken.get(key(proto, first))
        if owner is not None and owner != container_id:
            raise UsageError(f"host port {first}/{proto} is already published by container "
                             f"{owner[:12]}")
        if not host_port_free(proto, hip, first):
            raise UsageError(f"host port {first}/{proto} is already in use on this host"
                             f"{' (' + hip + ')' if hip else ''}")
        return first
    if first:
        candidates = list(range(first, last + 1))
    else:
        lo, hi = ephemeral_range()
        start = random.randint(lo, hi)
        candidates = list(range(start, hi + 1)) + list(range(lo, start))
    for p in candidates:
        if free(p):
            return p
    what = f"{first}-{last}" if first else "of the ephemeral range"
    raise UsageError(f"no free host port {what}/{proto} to publish container port "
                     f"{mapping['container_port']}")
