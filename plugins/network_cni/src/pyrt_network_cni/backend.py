"""The operations of the cni backend, behind the hooks of :mod:`pyrt_network_cni.plugin`.

State: the networks are conflists (:mod:`pyrt_network_cni.conflist`); each container
attached has ``<root>/networks/cni/containers/<id>.json``, written *before* the first
ADD (the namespace, and per network the conflist as used, the interface, the runtime
config and, once ADD returned, the result), so that DEL can be run with exactly what
ADD got even after the network's file changed, a crash in the middle, or a lost
record.  ``<root>/networks/cni/lock`` serializes what reads and writes that state
(the choice of host ports, the addresses a container asks for).
"""
from __future__ import annotations

import ipaddress
import json
import os

from pyrt_core.api import FileLock, atomic_write, read_json
from pyrt_core.errors import ConflictError, NotFoundError, PyrtError, UsageError

from . import conflist as cl
from . import hostnet, invoke, result, settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt_core.api import ContainerNetworking, NetworkCreate


def _containers_dir(root: str) -> str:
    return os.path.join(cl.own_dir(root), "containers")


def _state_path(root: str, cid: str) -> str:
    if not cid or "/" in cid or cid.startswith("."):
        raise UsageError(f"invalid container id {cid!r}")
    return os.path.join(_containers_dir(root), cid + ".json")


def _lock(root: str) -> FileLock:
    os.makedirs(cl.own_dir(root), mode=0o700, exist_ok=True)
    return FileLock(os.path.join(cl.own_dir(root), "lock"))


def _states(root: str) -> dict[str, dict]:
    out = {}
    try:
        names = os.listdir(_containers_dir(root))
    except OSError:
        return out
    for fn in names:
        if fn.endswith(".json"):
            try:
                st = read_json(os.path.join(_containers_dir(root), fn))
            except ValueError:
                continue
            if isinstance(st, dict):
                out[fn[:-5]] = st
    return out


def _save(root: str, cid: str, state: dict) -> None:
    os.makedirs(_containers_dir(root), mode=0o700, exist_ok=True)
    atomic_write(_state_path(root, cid), json.dumps(state, indent=1), mode=0o600)


# -- networks ------------------------------------------------------------------------------
def networks(root: str) -> dict[str, tuple[str, dict]]:
    return cl.load_all(root, settings.config_dirs())


def _check_overlap(subnet, nets: dict[str, tuple[str, dict]]) -> None:
    for route in hostnet.host_routes():
        if subnet.overlaps(route):
            raise UsageError(f"subnet {subnet} overlaps the host's route to {route}: choose "
                             "another with --subnet")
    for name, (_, conf) in nets.items():
        for other in cl.subnets_of(conf):
            if other.version == subnet.version and subnet.overlaps(other):
                raise ConflictError(f"subnet {subnet} overlaps network {name}'s {other}")


def _auto_subnet(nets: dict[str, tuple[str, dict]]) -> str:
    busy = hostnet.host_routes() + [s for _, c in nets.values() for s in cl.subnets_of(c)]
    for candidate in ipaddress.ip_network(cl.AUTO_POOL).subnets(new_prefix=24):
        if not any(candidate.overlaps(b) for b in busy if b.version == 4):
            return str(candidate)
    raise ConflictError(f"no free /24 left in {cl.AUTO_POOL}: give a --subnet")


def create(request: NetworkCreate, root: str) -> dict:
    cl.check_name(request.name)
    if request.driver not in ("bridge", ""):
        raise UsageError(f"network driver {request.driver!r} is not supported by the cni "
                         "backend (bridge)")
    if request.ipv6:
        raise UsageError("--ipv6 is not supported by the cni backend")
    cl.check_options(request.options)
    with _lock(root):
        nets = networks(root)
        if request.name in nets:
            raise ConflictError(f"network with name {request.name} already exists")
        try:
            subnet = ipaddress.ip_network(request.subnet or _auto_subnet(nets))
        except ValueError:
            raise UsageError(f"invalid subnet {request.subnet!r}: an IPv4 network such as "
                             "10.89.3.0/24, its host bits zero") from None
        if subnet.version != 4 or subnet.prefixlen > 30:
            raise UsageError(f"invalid subnet {subnet}: IPv4, /30 or larger")
        _check_overlap(subnet, nets)
        gateway = request.gateway or str(next(subnet.hosts()))
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise UsageError(f"invalid gateway {gateway!r}") from None
        if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
            raise UsageError(f"gateway {gateway} is not a host address of subnet {subnet}")
        if request.ip_range:
            try:
                pool = ipaddress.ip_network(request.ip_range)
            except ValueError:
                raise UsageError(f"invalid --ip-range {request.ip_range!r}") from None
            if not pool.subnet_of(subnet):  # type: ignore[arg-type]
                raise UsageError(f"--ip-range {pool} is not inside subnet {subnet}")
        conf = cl.build(request, root, str(subnet), str(gw))
        bridge = conf["plugins"][0]["bridge"]
        if any(p.get("bridge") == bridge for _, c in nets.values() for p in c["plugins"]) \
                or os.path.exists(f"/sys/class/net/{bridge}"):
            raise ConflictError(f"bridge {bridge} is in use already")
        os.makedirs(cl.own_dir(root), mode=0o700, exist_ok=True)
        path = cl.path_of(root, request.name)
        atomic_write(path, json.dumps(conf, indent=2), mode=0o600)
    return cl.inspect(path, conf, root)


def _attached(root: str, name: str) -> list[str]:
    return [cid for cid, st in _states(root).items()
            if any(a.get("network") == name for a in st.get("attachments", ()))]


def remove(name: str, root: str) -> bool:
    with _lock(root):
        nets = networks(root)
        if name not in nets:
            raise NotFoundError(f"network {name} not found")
        path, conf = nets[name]
        if not cl.is_own(root, path):
            raise UsageError(f"network {name} is defined in {path}, which pyrt does not "
                             "manage: remove the file yourself")
        users = _attached(root, name)
        if users:
            raise ConflictError(f"network {name} has containers attached: "
                                f"{', '.join(u[:12] for u in users)}")
        for plugin in conf["plugins"]:
            if plugin.get("type") == "bridge" and plugin.get("bridge"):
                try:
                    hostnet.delete_bridge(plugin["bridge"])
                    hostnet.remove_bridge_isolation(plugin["bridge"])
                except OSError as e:
                    raise PyrtError(f"removing network {name}: cannot delete its bridge "
                                    f"{plugin['bridge']}: {e.strerror}") from None
        ipam_dir = os.path.join(cl.own_dir(root), "ipam", name)
        if os.path.isdir(ipam_dir):
            for fn in os.listdir(ipam_dir):
                os.unlink(os.path.join(ipam_dir, fn))
            os.rmdir(ipam_dir)
        os.unlink(path)
        _tidy(root)
    return True


def list_all(root: str) -> list[dict]:
    states = _states(root)
    out = []
    for name, (path, conf) in networks(root).items():
        info = cl.inspect(path, conf, root)
        info["Containers"] = {cid: {} for cid, st in states.items()
                              if any(a.get("network") == name for a in st.get("attachments", ()))}
        out.append(info)
    return out


def ensure_default(root: str, name: str) -> None:
    """The default network ``bridge`` is made when a container first needs it."""
    from pyrt_core.api import NetworkCreate

    if name == "bridge" and name not in networks(root):
        try:
            create(NetworkCreate(name="bridge"), root)
        except ConflictError:
            if name not in networks(root):
                raise


# -- containers ----------------------------------------------------------------------------
def _ports_held(root: str, skip: str = "") -> set[tuple[int, str]]:
    return {(p["host_port"], p["protocol"]) for cid, st in _states(root).items() if cid != skip
            for p in st.get("ports", ())}


def _resolve_ports(networking: ContainerNetworking, root: str, cid: str = "") -> list[dict]:
    """Every published port with its host port chosen; a port another process or
    container holds is refused with its number."""
    held = _ports_held(root, cid)
    out = []
    for pm in networking.ports:
        if pm.protocol not in ("tcp", "udp"):
            raise UsageError(f"protocol {pm.protocol} is not supported by the cni backend's "
                             "port mapping (tcp, udp)")
        candidates = [pm.host_port] if pm.host_port and not pm.host_port_end else \
            list(range(pm.host_port, pm.host_port_end + 1)) if pm.host_port else []
        chosen = 0
        for port in candidates:
            if (port, pm.protocol) not in held and (port, pm.protocol) not in \
                    {(p["host_port"], p["protocol"]) for p in out} and \
                    hostnet.port_free(port, pm.protocol, pm.host_ip):
                chosen = port
                break
        if not candidates:
            for _ in range(50):
                port = hostnet.any_free_port(pm.protocol, pm.host_ip)
                if (port, pm.protocol) not in held:
                    chosen = port
                    break
        if not chosen:
            what = f"{candidates[0]}-{candidates[-1]}" if len(candidates) > 1 else str(candidates[0])
            raise ConflictError(f"host port {what}/{pm.protocol} is already in use "
                                f"(publishing container port {pm.container_port})")
        out.append({"container_port": pm.container_port, "protocol": pm.protocol,
                    "host_ip": pm.host_ip, "host_port": chosen})
    return out


def validate(networking: ContainerNetworking, root: str) -> bool:
    if networking.mode != "networks":
        return True
    nets = networks(root)
    for att in networking.attachments:
        if att.network not in nets and att.network != "bridge":
            raise NotFoundError(f"network {att.network} not found")
        if att.ipv6:
            raise UsageError("--ip6 is not supported by the cni backend")
        if att.ipv4 and att.network in nets:
            ip = ipaddress.ip_address(att.ipv4)
            if not any(ip in s for s in cl.subnets_of(nets[att.network][1])):
                raise UsageError(f"address {att.ipv4} is outside network {att.network}'s subnet")
    with _lock(root):
        _resolve_ports(networking, root)
    return True


def _runtime_config(att, ports: list[dict] | None) -> dict:
    rc: dict = {}
    if ports:
        rc["portMappings"] = [{"hostPort": p["host_port"], "containerPort": p["container_port"],
                               "protocol": p["protocol"],
                               **({"hostIP": p["host_ip"]} if p["host_ip"] else {})}
                              for p in ports]
    if att.ipv4:
        rc["ips"] = [att.ipv4]
    if att.mac:
        rc["mac"] = att.mac
    return rc


def _config_for(conf: dict, first: bool) -> dict:
    """The list as a container's attachment uses it: the first network gives the
    default route; a further one (eth1...) leaves its IPAM's routes out, since a second
    default route cannot be added (docker gives the route to one network too)."""
    if first:
        return conf
    out = json.loads(json.dumps(conf))
    for plugin in out["plugins"]:
        if isinstance(plugin.get("ipam"), dict):
            plugin["ipam"].pop("routes", None)
    return out


def _release(cid: str, root: str, state: dict, netns: str | None) -> list[str]:
    """DEL every attachment of the state (last first), then sweep the container's
    iptables rules; the errors."""
    errors = []
    if netns and not os.path.exists(netns):
        netns = None
    for att in reversed(state.get("attachments", [])):
        errors += invoke.del_list(att["config"], container_id=cid, netns=netns,
                                  ifname=att["ifname"], runtime_config=att.get("runtime_config", {}),
                                  prev_result=att.get("result"), dirs=settings.plugin_dirs())
    hostnet.sweep_container_rules(cid)
    return errors


def setup(cid: str, netns: str, networking: ContainerNetworking, root: str) -> dict:
    for att in networking.attachments:
        ensure_default(root, att.network)
    with _lock(root):
        nets = networks(root)
        missing = [a.network for a in networking.attachments if a.network not in nets]
        if missing:
            raise NotFoundError(f"network {missing[0]} not found")
        ports = _resolve_ports(networking, root, cid)
        state = {"netns": netns, "ports": ports, "attachments": []}
        for i, att in enumerate(networking.attachments):
            state["attachments"].append({
                "network": att.network, "ifname": f"eth{i}",
                "config": _config_for(nets[att.network][1], i == 0),
                "file": nets[att.network][0],
                "runtime_config": _runtime_config(att, ports if i == 0 else None),
                "aliases": list(att.aliases), "result": None})
        _save(root, cid, state)
    try:
        for att in state["attachments"]:
            att["result"] = invoke.add_list(att["config"], container_id=cid, netns=netns,
                                            ifname=att["ifname"],
                                            runtime_config=att["runtime_config"],
                                            dirs=settings.plugin_dirs())
            _save(root, cid, state)
    except BaseException as e:
        errors = _release(cid, root, state, netns)
        if not errors:
            with _lock(root):
                os.unlink(_state_path(root, cid))
                _tidy(root)
        if isinstance(e, PyrtError):
            raise PyrtError(f"{e}" + (f" (undoing it failed too: {errors[0]})" if errors else "")) \
                from None
        raise
    return record(cid, state, root, networking)


def record(cid: str, state: dict, root: str, networking: ContainerNetworking | None = None) -> dict:
    nets: dict = {}
    dns_servers: list[str] = []
    dns_search: list[str] = []
    names = [n for n in ((networking.name, networking.hostname) if networking else ()) if n]
    for att in state["attachments"]:
        res = att.get("result") or {}
        meta = att["config"].get("pyrt") or {}
        info_id = meta.get("id") or cl.inspect(att.get("file", ""), att["config"], root)["Id"]
        nets[att["network"]] = result.endpoint(res, att["ifname"], att["network"], info_id,
                                               att.get("aliases"), names + [cid[:12]])
        servers, search = result.dns_of(res)
        dns_servers += [s for s in servers if s not in dns_servers]
        dns_search += [s for s in search if s not in dns_search]
    return {"networks": nets, "ports": list(state.get("ports", [])), "dns_servers": dns_servers,
            "dns_search": dns_search, "private": {"backend": "cni"}}


def teardown(cid: str, netns: str | None, record_: dict | None, root: str) -> bool:
    path = _state_path(root, cid)
    with _lock(root):
        state = read_json(path)
        if state is None:
            hostnet.sweep_container_rules(cid)
            return True
        errors = _release(cid, root, state, netns)
        if errors:
            raise PyrtError(f"releasing the networks of container {cid[:12]} failed: "
                            f"{errors[0]}")
        os.unlink(path)
        _tidy(root)
    return True


def _tidy(root: str) -> None:
    """With no container of this store left on a CNI network, remove the shared CNI
    chains if no one else uses them either (:func:`hostnet.remove_idle_shared_chains`)."""
    if not _states(root):
        hostnet.remove_idle_shared_chains()


def connect(cid: str, netns: str, networking: ContainerNetworking, network: str,
            root: str) -> dict:
    ensure_default(root, network)
    att = next((a for a in networking.attachments if a.network == network), None)
    if att is None:
        raise UsageError(f"network {network} is not among the container's attachments")
    with _lock(root):
        state = read_json(_state_path(root, cid)) or {"netns": netns, "ports": [],
                                                       "attachments": []}
        if any(a["network"] == network for a in state["attachments"]):
            raise ConflictError(f"container {cid[:12]} is already connected to {network}")
        nets = networks(root)
        if network not in nets:
            raise NotFoundError(f"network {network} not found")
        used = {a["ifname"] for a in state["attachments"]}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        entry = {"network": network, "ifname": ifname,
                 "config": _config_for(nets[network][1], not state["attachments"]),
                 "file": nets[network][0], "runtime_config": _runtime_config(att, None),
                 "aliases": list(att.aliases), "result": None}
        state["attachments"].append(entry)
        _save(root, cid, state)
        try:
            entry["result"] = invoke.add_list(entry["config"], container_id=cid, netns=netns,
                                              ifname=ifname, runtime_config=entry["runtime_config"],
                                              dirs=settings.plugin_dirs())
        except PyrtError:
            invoke.del_list(entry["config"], container_id=cid, netns=netns, ifname=ifname,
                            runtime_config=entry["runtime_config"], prev_result=None,
                            dirs=settings.plugin_dirs())
            state["attachments"].remove(entry)
            _save(root, cid, state)
            raise
        _save(root, cid, state)
    return record(cid, state, root, networking)


def disconnect(cid: str, netns: str | None, network: str, root: str) -> dict:
    with _lock(root):
        state = read_json(_state_path(root, cid))
        att = next((a for a in (state or {}).get("attachments", ()) if a["network"] == network),
                   None)
        if state is None or att is None:
            raise NotFoundError(f"container {cid[:12]} is not connected to network {network}")
        errors = invoke.del_list(att["config"], container_id=cid,
                                 netns=netns if netns and os.path.exists(netns) else None,
                                 ifname=att["ifname"], runtime_config=att["runtime_config"],
                                 prev_result=att.get("result"), dirs=settings.plugin_dirs())
        if errors:
            raise PyrtError(f"disconnecting {cid[:12]} from {network} failed: {errors[0]}")
        state["attachments"].remove(att)
        _save(root, cid, state)
    return record(cid, state, root)


def recover(live: list[str], root: str) -> list[str]:
    lines = []
    alive = set(live)
    for cid, state in _states(root).items():
        if cid in alive:
            continue
        try:
            teardown(cid, state.get("netns"), None, root)
            lines.append(f"cni: released the networks of container {cid[:12]} "
                         f"({', '.join(a['network'] for a in state.get('attachments', ()))})")
        except PyrtError as e:
            lines.append(f"cni: container {cid[:12]}: {e}")
    return lines
