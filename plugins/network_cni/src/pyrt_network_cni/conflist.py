"""Networks as CNI configuration lists.

A network ``pyrt network create`` makes is a conflist at
``<root>/networks/cni/NAME.conflist``: bridge (host-local IPAM with the subnet, the
addresses kept under ``<root>/networks/cni/ipam``), portmap (published ports), firewall
(the bridge's forward rules), tuning (``--mac-address``).  pyrt's own facts of the
network (its id, creation time, labels, options, internal) live in the list's
top-level ``"pyrt"`` key, which no CNI plugin reads.  Conflists in ``/etc/cni/net.d``
(``[cni] config_dirs``) are networks too, read only: pyrt never writes or removes
them.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import time

from pyrt_core.errors import UsageError

CNI_VERSION = "1.0.0"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
#: the pool a network without --subnet gets its /24 from (podman's CNI default range)
AUTO_POOL = "10.89.0.0/16"
#: -o keys understood (docker's names); others are refused
OPTIONS = {"mtu", "com.docker.network.driver.mtu", "com.docker.network.bridge.name"}


def own_dir(root: str) -> str:
    return os.path.join(root, "networks", "cni")


def path_of(root: str, name: str) -> str:
    return os.path.join(own_dir(root), name + ".conflist")


def bridge_name(name: str) -> str:
    """A Linux interface name (15 characters at most) for the network's bridge."""
    return "pyrtc" + hashlib.sha256(name.encode()).hexdigest()[:9]


def check_name(name: str) -> None:
    if name in ("none", "host", "default") or not NAME_RE.match(name):
        raise UsageError(f"invalid network name {name!r}: letters, digits and _.- "
                         "(not none, host or default)")


def build(request, root: str, subnet: str, gateway: str) -> dict:
    """The conflist of a new network from a resolved ``NetworkCreate``."""
    mtu = request.options.get("mtu") or request.options.get("com.docker.network.driver.mtu")
    bridge = request.options.get("com.docker.network.bridge.name") or bridge_name(request.name)
    rng: dict = {"subnet": subnet, "gateway": gateway}
    if request.ip_range:
        pool = ipaddress.ip_network(request.ip_range)
        hosts = list(pool.hosts()) if pool.num_addresses > 2 else list(pool)
        rng["rangeStart"], rng["rangeEnd"] = str(hosts[0]), str(hosts[-1])
    ipam: dict = {"type": "host-local", "ranges": [[rng]],
                  "dataDir": os.path.join(own_dir(root), "ipam")}
    if not request.internal:
        ipam["routes"] = [{"dst": "0.0.0.0/0"}]
    bridge_conf: dict = {"type": "bridge", "bridge": bridge, "isGateway": True,
                         "ipMasq": not request.internal, "hairpinMode": True,
                         "capabilities": {"ips": True}, "ipam": ipam}
    if mtu:
        bridge_conf["mtu"] = int(mtu)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "cniVersion": CNI_VERSION,
        "name": request.name,
        "plugins": [bridge_conf,
                    {"type": "portmap", "capabilities": {"portMappings": True}},
                    {"type": "firewall", "ingressPolicy": "same-bridge"},
                    {"type": "tuning", "capabilities": {"mac": True}}],
        "pyrt": {"id": hashlib.sha256(f"{request.name}\0{created}\0{time.time_ns()}".encode())
                 .hexdigest(), "created": created, "labels": dict(request.labels),
                 "options": dict(request.options), "internal": bool(request.internal)},
    }


def check_options(options: dict) -> None:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise UsageError(f"network option {unknown[0]!r} is not supported by the cni backend "
                         f"(supported: {', '.join(sorted(OPTIONS))})")
    mtu = options.get("mtu") or options.get("com.docker.network.driver.mtu")
    if mtu is not None and not (str(mtu).isdigit() and 68 <= int(mtu) <= 65535):
        raise UsageError(f"invalid mtu {mtu!r}: a number from 68 to 65535")


def load_file(path: str) -> dict | None:
    """A conflist (or a single-plugin .conf made into a list), None when it is not one."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    if "plugins" not in data:
        if "type" not in data:
            return None
        plugin = {k: v for k, v in data.items() if k not in ("name", "cniVersion")}
        data = {"cniVersion": data.get("cniVersion", CNI_VERSION), "name": data["name"],
                "plugins": [plugin]}
    if not isinstance(data["plugins"], list) or not all(isinstance(p, dict) and p.get("type")
                                                         for p in data["plugins"]):
        return None
    return data


def load_all(root: str, config_dirs: list[str]) -> dict[str, tuple[str, dict]]:
    """Every network: name -> (file, conflist); pyrt's own first, then the
    configuration directories in order, each in lexical order (as libcni), the first
    file of a name winning."""
    out: dict[str, tuple[str, dict]] = {}
    for d in [own_dir(root), *config_dirs]:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for fn in names:
            if not fn.endswith((".conflist", ".conf", ".json")):
                continue
            path = os.path.join(d, fn)
            data = load_file(path)
            if data is not None and data["name"] not in out:
                out[data["name"]] = (path, data)
    return out


def is_own(root: str, path: str) -> bool:
    return os.path.dirname(path) == own_dir(root)


def ranges_of(conflist: dict) -> list[dict]:
    """The IPAM ranges of the list's first plugin that has host-local-style IPAM."""
    for plugin in conflist["plugins"]:
        ipam = plugin.get("ipam") or {}
        if ipam.get("ranges"):
            return [r for rs in ipam["ranges"] for r in rs if isinstance(r, dict)]
        if ipam.get("subnet"):
            return [{"subnet": ipam["subnet"], "gateway": ipam.get("gateway")}]
    return []


def subnets_of(conflist: dict) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for r in ranges_of(conflist):
        try:
            out.append(ipaddress.ip_network(r["subnet"], strict=False))
        except (KeyError, ValueError):
            continue
    return out


def gateway_of(rng: dict) -> str | None:
    if rng.get("gateway"):
        return rng["gateway"]
    try:
        return str(next(ipaddress.ip_network(rng["subnet"], strict=False).hosts()))
    except (KeyError, ValueError, StopIteration):
        return None


def inspect(path: str, conflist: dict, root: str) -> dict:
    """docker's NetworkResource for the network."""
    meta = conflist.get("pyrt") or {}
    own = is_own(root, path)
    if not meta:
        st = os.stat(path) if os.path.exists(path) else None
        meta = {"id": hashlib.sha256(("cni:" + path).encode()).hexdigest(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime(st.st_mtime if st else 0))}
    config = []
    for r in ranges_of(conflist):
        c = {"Subnet": r.get("subnet", ""), "Gateway": gateway_of(r) or ""}
        if r.get("rangeStart"):
            c["IPRange"] = f'{r["rangeStart"]}-{r.get("rangeEnd", "")}'
        config.append(c)
    first = conflist["plugins"][0]
    return {
        "Name": conflist["name"], "Id": meta["id"], "Created": meta["created"],
        "Scope": "local", "Driver": first.get("type", ""),
        "EnableIPv6": any(s.version == 6 for s in subnets_of(conflist)),
        "IPAM": {"Driver": (first.get("ipam") or {}).get("type", ""), "Options": {},
                 "Config": config},
        "Internal": bool(meta.get("internal", False)),
        "Labels": dict(meta.get("labels") or {}), "Options": dict(meta.get("options") or {}),
        "ConfigFile": path, "ReadOnly": not own,
        "Plugins": [p.get("type", "") for p in conflist["plugins"]],
        "Containers": {},
    }
