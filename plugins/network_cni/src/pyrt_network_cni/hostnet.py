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


#: the chains CNI's portmap (nat) and firewall (filter) plugins create once and share
#: between every container of every CNI runtime on the host
SHARED_CHAINS = {"nat": ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"),
                 "filter": ("CNI-FORWARD", "CNI-ADMIN", "CNI-ISOLATION-STAGE-1",
                            "CNI-ISOLATION-STAGE-2")}
ISOLATION = ("CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2")
#: the rules of a shared chain that are its own furniture, not a container's
_FURNITURE = ("-j CNI-ADMIN", "-j MARK --set-xmark", "-j MASQUERADE")


def _plain_return(args: list[str]) -> bool:
    """A chain's closing ``-j RETURN`` that matches every packet (the isolation chains'
    furniture, with or without a comment)."""
    return args[-2:] == ["-j", "RETURN"] and not {"-i", "-o", "-s", "-d", "!"} & set(args)


def remove_idle_shared_chains() -> list[str]:
    """Remove the shared CNI chains when nothing uses them any more: no container rule
    in them (only their furniture: the firewall plugin's jump to CNI-ADMIN, portmap's
    mark and masquerade), no container chain jumping to them, CNI-ADMIN (the
    administrator's overrides) empty.  The jumps of the built-in chains to them go too.
    So a host where pyrt's last CNI container went is as it was; a host where another
    runtime's CNI containers (or an administrator's rules) use them keeps them."""
    removed = []
    for table, chains in SHARED_CHAINS.items():
        r = _iptables("-t", table, "-S")
        if r.returncode != 0:
            continue
        lines = r.stdout.splitlines()
        present = [c for c in chains if f"-N {c}" in lines]
        if not present:
            continue
        busy = False
        for line in lines:
            if not line.startswith("-A "):
                continue
            args = shlex.split(line)
            chain = args[1]
            target = args[args.index("-j") + 1] if "-j" in args else ""
            if chain in present and not any(f in line for f in _FURNITURE) \
                    and not _plain_return(args):
                busy = True  # a container's (or an administrator's) rule
            elif target in present and chain.startswith("CNI-") and chain not in present:
                busy = True  # a container chain (CNI-DN-...) still jumps to it
        if busy:
            continue
        for line in lines:
            if line.startswith("-A ") and any(line.endswith(f"-j {c}") for c in present) \
                    and shlex.split(line)[1] not in present:
                if _iptables("-t", table, "-D", *shlex.split(line)[1:]).returncode == 0:
                    removed.append(f"iptables -t {table} {line}")
        for c in present:
            _iptables("-t", table, "-F", c)
        for c in present:
            if _iptables("-t", table, "-X", c).returncode == 0:
                removed.append(f"iptables -t {table} chain {c}")
    return removed


def remove_bridge_isolation(bridge: str) -> list[str]:
    """Remove the rules the firewall plugin's ``ingressPolicy: same-bridge`` added for
    ``bridge`` (``-i BRIDGE ! -o BRIDGE`` in CNI-ISOLATION-STAGE-1, ``-o BRIDGE -j DROP``
    in -STAGE-2): the plugin's DEL leaves them, as other containers may use the bridge;
    they go with the network."""
    removed = []
    r = _iptables("-t", "filter", "-S")
    if r.returncode != 0:
        return removed
    for line in r.stdout.splitlines():
        args = shlex.split(line)
        if len(args) < 2 or args[0] != "-A" or args[1] not in ISOLATION:
            continue
        if any(args[i] in ("-i", "-o") and args[i + 1] == bridge for i in range(len(args) - 1)):
            if _iptables("-t", "filter", "-D", *args[1:]).returncode == 0:
                removed.append(f"iptables -t filter {line}")
    return removed
