"""What pyrt-network-cni reads and changes of the host's own networking, without a
netlink library: the routes (``/proc/net/route``), whether a port is free (bind), a
bridge's removal (ioctls), and the clean-up of the per-container iptables rules CNI's
bridge plugin leaves when the namespace is gone.
"""
from __future__ import annotations

import fcntl
import ipaddress
import shlex
import socket
import struct
import subprocess

SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCBRDELBR = 0x8913, 0x8914, 0x89A1
IFF_UP = 0x1


def host_routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations of the main routing table, the default route left out."""
    out = []
    try:
        with open("/proc/net/route") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 8:
            continue
        dst = socket.inet_ntoa(struct.pack("<I", int(parts[1], 16)))
        mask = socket.inet_ntoa(struct.pack("<I", int(parts[7], 16)))
        net = ipaddress.ip_network(f"{dst}/{mask}", strict=False)
        if net.prefixlen:
            out.append(net)
    return out


def port_free(port: int, protocol: str = "tcp", host_ip: str = "") -> bool:
    """True when a socket can bind the port now (on ``host_ip``, else every address)."""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    fam = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(fam, kind) as s:
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def any_free_port(protocol: str = "tcp", host_ip: str = "") -> int:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    fam = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return s.getsockname()[1]


def delete_bridge(name: str) -> bool:
    """Take the bridge ``name`` down and delete it (SIOCBRDELBR); False when there is
    no such bridge.  CNI's bridge plugin never removes the bridge it made."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH14x", name.encode(), 0)
        try:
            flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        except OSError:
            return False
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags & ~IFF_UP))
        fcntl.ioctl(s, SIOCBRDELBR, name.encode() + b"\0")
    return True


def _iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)


def sweep_container_rules(container_id: str) -> list[str]:
    """Remove the iptables rules whose CNI comment names the container and the
    per-container chains they jump to (CNI's bridge plugin leaves its ipMasq rule and
    chain when DEL comes without a namespace; a killed ADD leaves what it made).  Only
    rules commented with this container's id are touched; what was removed, one line
    each."""
    removed = []
    needle = f'id: \\"{container_id}\\"'
    for table in ("nat", "filter"):
        r = _iptables("-t", table, "-S")
        if r.returncode != 0:
            continue
        chains = []
        for line in r.stdout.splitlines():
            if not line.startswith("-A ") or needle not in line:
                continue
            args = shlex.split(line)
            if _iptables("-t", table, "-D", *args[1:]).returncode == 0:
                removed.append(f"iptables -t {table} {line}")
            if "-j" in args:
                target = args[args.index("-j") + 1]
                if target.startswith("CNI-") and not target.startswith(("CNI-HOSTPORT-", "CNI-FORWARD", "CNI-ADMIN")):
                    chains.append(target)
        for chain in chains:
            _iptables("-t", table, "-F", chain)
            if _iptables("-t", table, "-X", chain).returncode == 0:
                removed.append(f"iptables -t {table} chain {chain}")
    return removed
