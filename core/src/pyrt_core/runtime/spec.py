"""A bundle's ``config.json`` -> :class:`~pyrt_core.runtime.config.RuntimeConfig`.

:func:`from_spec` is the single place where the runtime-spec document is read and
validated (bad input is one :class:`~pyrt_core.errors.UsageError` line naming the
field); :func:`process_from_spec` (also ``exec --process``), :func:`resources_from_spec`
(also ``update`` and the engine's flags) and :func:`hooks_from_spec` convert one
object each.  Mount options are :mod:`.spec_mounts`'s, ``linux.seccomp``
:mod:`.spec_seccomp`'s.  The mechanisms take only the resolved types of
:mod:`.config`.  Lean like them: no module-level import heavier than ``os``.
"""
from __future__ import annotations

import os

from ..errors import UsageError
from .config import (
    DEFAULT_DEVICES, MS_BIND, NAMESPACE_TYPES, Capabilities, Device, DeviceRule, Hook, Hooks,
    IdMapping, Mount, Namespace, ProcessConfig, Resources, Rlimit, RuntimeConfig,
)
from .spec_mounts import PROPAGATION, parse_mount_options, recursive_attrs

#: What runc allows in a restricted device cgroup besides the container's devices:
#: mknod of any node, /dev/pts/ptmx and the ptys (the console is opened inside the
#: container), /dev/net/tun.  (type, major, minor, access); None is any.
ALWAYS_ALLOWED_DEVICES = (("c", None, None, "m"), ("b", None, None, "m"),
                          ("c", 5, 2, "rwm"), ("c", 136, None, "rwm"), ("c", 10, 200, "rwm"))


def _allow_container_devices(rules: list, devices: list) -> None:
    """As runc: a config that restricts devices (podman and containerd write "deny all,
    then allow some") still lets the container use its own devices, the default ones
    and a pty; the rules go after the configured ones, each once."""
    given = {d.path for d in devices}
    wanted = [("c" if d.type == "u" else d.type, d.major, d.minor, "rwm")
              for d in [*devices, *(d for d in DEFAULT_DEVICES if d.path not in given)]
              if d.type != "p"]
    have = {(r.allow, r.type, r.major, r.minor, r.access) for r in rules}
    for t, major, minor, access in [*wanted, *ALWAYS_ALLOWED_DEVICES]:
        if (True, t, major, minor, access) not in have:
            have.add((True, t, major, minor, access))
            rules.append(DeviceRule(True, t, major, minor, access))


HOOK_PHASES = {
    "prestart": "prestart", "createRuntime": "create_runtime",
    "createContainer": "create_container", "startContainer": "start_container",
    "poststart": "poststart", "poststop": "poststop",
}


def _ids(maps, where: str = "linux.uidMappings") -> list[IdMapping]:
    out = []
    for i, m in enumerate(maps or []):
        if not isinstance(m, dict):
            raise UsageError(f"invalid OCI config: {where}[{i}] must be an object")
        vals = [m.get(k) for k in ("containerID", "hostID", "size")]
        if not all(_is_int(v) and v >= 0 for v in vals) or vals[2] == 0:
            raise UsageError(f"invalid OCI config: {where}[{i}] needs containerID, hostID "
                             "and a non-zero size as integers")
        out.append(IdMapping(*vals))
    return out


def resources_from_spec(r: dict | None) -> Resources:
    """Resolve an OCI ``linux.resources`` object."""
    r = r or {}
    mem = r.get("memory") or {}
    cpu = r.get("cpu") or {}
    blk = r.get("blockIO") or {}
    throttle = {}
    for key in ("throttleReadBpsDevice", "throttleWriteBpsDevice",
                "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        if blk.get(key):
            throttle[key] = [(d["major"], d["minor"], d["rate"]) for d in blk[key]]
    return Resources(
        memory_limit=mem.get("limit"),
        memory_reservation=mem.get("reservation"),
        memory_swap=mem.get("swap"),
        disable_oom_killer=bool(mem.get("disableOOMKiller", False)),
        memory_swappiness=_swappiness(mem.get("swappiness")),
        cpu_shares=cpu.get("shares"),
        cpu_quota=cpu.get("quota"),
        cpu_period=cpu.get("period"),
        cpuset_cpus=cpu.get("cpus"),
        cpuset_mems=cpu.get("mems"),
        blkio_weight=blk.get("weight"),
        blkio_throttle=throttle,
        pids_limit=(r.get("pids") or {}).get("limit"),
        devices=[
            DeviceRule(d.get("allow", False), d.get("type", "a"), d.get("major"),
                       d.get("minor"), d.get("access", "rwm"))
            for d in r.get("devices") or []
        ],
    )


def _str_list(v, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise UsageError(f"invalid OCI config: {where} must be a list of strings")
    return tuple(v)


def hooks_from_spec(h) -> Hooks:
    """Resolve an OCI ``hooks`` object; every hook needs an absolute ``path``."""
    if h is None:
        return Hooks()
    if not isinstance(h, dict):
        raise UsageError("invalid OCI config: hooks must be an object")
    out = Hooks()
    for key, value in h.items():
        attr = HOOK_PHASES.get(key)
        if attr is None:
            raise UsageError(f"invalid OCI config: unknown hook phase {key!r}")
        if value is None:
            continue
        if not isinstance(value, list):
            raise UsageError(f"invalid OCI config: hooks.{key} must be a list")
        for i, item in enumerate(value):
            where = f"hooks.{key}[{i}]"
            if not isinstance(item, dict):
                raise UsageError(f"invalid OCI config: {where} must be an object")
            path = item.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise UsageError(f"invalid OCI config: {where}.path must be an absolute path")
            timeout = item.get("timeout")
            if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                        or timeout <= 0):
                raise UsageError(f"invalid OCI config: {where}.timeout must be a positive integer")
            getattr(out, attr).append(Hook(path, _str_list(item.get("args"), f"{where}.args"),
                                           _str_list(item.get("env"), f"{where}.env"), timeout))
    return out


def _swappiness(v) -> int | None:
    if v is None:
        return None
    if not _is_int(v) or not 0 <= v <= 100:
        raise UsageError(f"invalid OCI config: linux.resources.memory.swappiness {v!r} "
                         "is not in 0..100")
    return v


def _require(d: dict, key: str, where: str):
    if key not in d:
        raise UsageError(f"invalid OCI config: {where}.{key} is required")
    return d[key]


def process_from_spec(p: dict) -> ProcessConfig:
    """Resolve a runtime-spec ``process`` object (also used by ``exec --process``)."""
    args = _require(p, "args", "process")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise UsageError("invalid OCI config: process.args must be a non-empty list of strings")
    user = p.get("user") or {}
    caps = p.get("capabilities")
    capabilities = None
    if caps is not None:
        capabilities = Capabilities(**{k: frozenset(caps.get(k) or ()) for k in
                                       ("bounding", "effective", "permitted",
                                        "inheritable", "ambient")})
    cwd = p.get("cwd", "/")
    if not cwd.startswith("/"):
        raise UsageError(f"invalid OCI config: process.cwd {cwd!r} must be absolute")
    env = list(_str_list(p.get("env"), "process.env"))
    for e in env:
        if "=" not in e:
            raise UsageError(f"invalid OCI config: process.env entry {e!r} is not NAME=VALUE")
    umask = user.get("umask")
    if umask is not None and (not _is_int(umask) or not 0 <= umask <= 0o777):
        raise UsageError(f"invalid OCI config: process.user.umask {umask!r} is not in 0..0777")
    oom = p.get("oomScoreAdj")
    if oom is not None and (not _is_int(oom) or not -1000 <= oom <= 1000):
        raise UsageError(f"invalid OCI config: process.oomScoreAdj {oom!r} is not in -1000..1000")
    rlimits = []
    for i, r in enumerate(p.get("rlimits") or []):
        where = f"process.rlimits[{i}]"
        rtype = _require(r, "type", where) if isinstance(r, dict) else None
        if not isinstance(rtype, str) or not rtype.startswith("RLIMIT_"):
            raise UsageError(f"invalid OCI config: {where}.type {rtype!r} is not an RLIMIT_* name")
        soft, hard = _require(r, "soft", where), _require(r, "hard", where)
        if not (_is_int(soft) and _is_int(hard)) or soft < 0 or hard < 0:
            raise UsageError(f"invalid OCI config: {where} ({rtype}) limits must be integers >= 0")
        if soft > hard:
            raise UsageError(f"invalid OCI config: {where} ({rtype}) soft limit {soft} "
                             f"exceeds hard limit {hard}")
        rlimits.append(Rlimit(rtype, soft, hard))
    return ProcessConfig(
        args=list(args),
        env=env,
        cwd=cwd,
        uid=_id(user.get("uid", 0), "process.user.uid"),
        gid=_id(user.get("gid", 0), "process.user.gid"),
        additional_gids=[_id(g, "process.user.additionalGids[]")
                         for g in user.get("additionalGids") or []],
        umask=umask,
        terminal=bool(p.get("terminal", False)),
        capabilities=capabilities,
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        rlimits=rlimits,
        oom_score_adj=oom,
    )


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _id(v, where: str) -> int:
    if not _is_int(v) or not 0 <= v < 2**32 - 1:
        raise UsageError(f"invalid OCI config: {where} {v!r} is not a valid id")
    return v


def from_spec(spec: dict, container_id: str, bundle: str) -> RuntimeConfig:
    """Validate an OCI runtime-spec document and resolve it into a RuntimeConfig."""
    if not isinstance(spec, dict):
        raise UsageError("invalid OCI config: not a JSON object")
    root = _require(spec, "root", "")
    root_path = _require(root, "path", "root")
    if not os.path.isabs(root_path):
        root_path = os.path.join(bundle, root_path)
    linux = spec.get("linux") or {}
    namespaces = []
    seen = set()
    for ns in linux.get("namespaces") or []:
        t = ns.get("type")
        if t not in NAMESPACE_TYPES:
            raise UsageError(f"invalid OCI config: unknown namespace type {t!r}")
        if t in seen:
            raise UsageError(f"invalid OCI config: namespace {t!r} listed twice")
        seen.add(t)
        path = ns.get("path") or None
        if path is not None and not (isinstance(path, str) and path.startswith("/")):
            raise UsageError(f"invalid OCI config: namespace {t!r} path {path!r} must be absolute")
        namespaces.append(Namespace(t, path))
    mounts = []
    for m in spec.get("mounts") or []:
        dest = _require(m, "destination", "mounts[]")
        if not dest.startswith("/"):
            raise UsageError(f"invalid OCI config: mount destination {dest!r} must be absolute")
        opts = list(m.get("options") or [])
        flags, prop, data = parse_mount_options(opts)
        mtype = m.get("type") or ("bind" if flags & MS_BIND else "")
        if mtype == "bind":
            flags |= MS_BIND
        rec_set, rec_clr = recursive_attrs(opts)
        if (rec_set or rec_clr) and not flags & MS_BIND:
            raise UsageError(f"invalid OCI config: mount {dest}: recursive options "
                             "(rro, rnosuid, ...) apply to bind mounts only")
        mounts.append(Mount(dest, mtype, m.get("source", ""), flags, prop, data, tuple(opts),
                            rec_set, rec_clr))
    devices = [_device(d, i) for i, d in enumerate(linux.get("devices") or [])]
    rprop = 0
    if linux.get("rootfsPropagation"):
        rprop = PROPAGATION.get(linux["rootfsPropagation"])
        if rprop is None:
            raise UsageError("invalid OCI config: linux.rootfsPropagation "
                             f"{linux['rootfsPropagation']!r} is not one of {', '.join(PROPAGATION)}")
    resources = resources_from_spec(linux.get("resources"))
    if resources.devices:
        _allow_container_devices(resources.devices, devices)
    return RuntimeConfig(
        id=container_id,
        bundle=bundle,
        root_path=root_path,
        root_readonly=bool(root.get("readonly", False)),
        process=process_from_spec(_require(spec, "process", "")),
        hostname=_name(spec.get("hostname"), "hostname"),
        mounts=mounts,
        namespaces=namespaces,
        uid_mappings=_ids(linux.get("uidMappings")),
        gid_mappings=_ids(linux.get("gidMappings"), "linux.gidMappings"),
        devices=devices,
        masked_paths=list(linux.get("maskedPaths") or []),
        readonly_paths=list(linux.get("readonlyPaths") or []),
        sysctl=dict(linux.get("sysctl") or {}),
        rootfs_propagation=rprop,
        resources=resources,
        cgroups_path=linux.get("cgroupsPath"),
        annotations=dict(spec.get("annotations") or {}),
        hooks=hooks_from_spec(spec.get("hooks")),
        domainname=_name(spec.get("domainname"), "domainname"),
        personality=_personality(linux.get("personality")),
        seccomp=_seccomp(linux.get("seccomp")),
        time_offsets=_time_offsets(linux.get("timeOffsets"), namespaces),
    )


def _time_offsets(t, namespaces) -> dict[str, tuple[int, int]]:
    """linux.timeOffsets: ``{"monotonic"|"boottime": {"secs": N, "nanosecs": N}}``; they
    need a new time namespace (offsets are set before its first process starts)."""
    if t is None:
        return {}
    if not isinstance(t, dict):
        raise UsageError("invalid OCI config: linux.timeOffsets must be an object")
    out = {}
    for clock, offset in t.items():
        where = f"linux.timeOffsets.{clock}"
        if clock not in ("monotonic", "boottime"):
            raise UsageError(f"invalid OCI config: {where}: the clocks are monotonic and boottime")
        if not isinstance(offset, dict) or set(offset) - {"secs", "nanosecs"}:
            raise UsageError(f"invalid OCI config: {where} must be an object with secs and nanosecs")
        secs, nsecs = offset.get("secs", 0), offset.get("nanosecs", 0)
        if not (_is_int(secs) and _is_int(nsecs)) or not 0 <= nsecs < 10**9:
            raise UsageError(f"invalid OCI config: {where}: secs must be an integer and "
                             "nanosecs one from 0 to 999999999")
        out[clock] = (secs, nsecs)
    if out and not any(ns.type == "time" and ns.path is None for ns in namespaces):
        raise UsageError("invalid OCI config: linux.timeOffsets needs a new time namespace "
                         "(linux.namespaces: {\"type\": \"time\"} without a path)")
    return out


def _name(v, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or len(v.encode()) > 64:
        raise UsageError(f"invalid OCI config: {where} must be a string of at most 64 bytes")
    return v


def _device(d, i: int) -> Device:
    where = f"linux.devices[{i}]"
    if not isinstance(d, dict):
        raise UsageError(f"invalid OCI config: {where} must be an object")
    path = _require(d, "path", where)
    if not isinstance(path, str) or not path.startswith("/"):
        raise UsageError(f"invalid OCI config: {where}.path {path!r} must be absolute")
    dtype = _require(d, "type", where)
    if dtype not in ("c", "b", "u", "p"):
        raise UsageError(f"invalid OCI config: {where}.type {dtype!r} is not one of c, b, u, p")
    try:
        major, minor = int(d.get("major", 0)), int(d.get("minor", 0))
        mode = int(d["fileMode"]) if d.get("fileMode") is not None else 0o666
        uid, gid = int(d.get("uid") or 0), int(d.get("gid") or 0)
    except (TypeError, ValueError):
        raise UsageError(f"invalid OCI config: {where} has a non-numeric field") from None
    if dtype != "p" and ("major" not in d or "minor" not in d):
        raise UsageError(f"invalid OCI config: {where} ({path}) needs major and minor numbers")
    return Device(path, dtype, major, minor, mode, uid, gid)


def _personality(p) -> str | None:
    if p is None:
        return None
    if not isinstance(p, dict):
        raise UsageError("invalid OCI config: linux.personality must be an object")
    domain = p.get("domain")
    if domain not in ("LINUX", "LINUX32"):
        raise UsageError(f"invalid OCI config: linux.personality.domain {domain!r} "
                         "is not LINUX or LINUX32")
    return domain


def _seccomp(s):
    """linux.seccomp resolved by :mod:`.spec_seccomp` (imported only for a config with one)."""
    if s is None:
        return None
    from .spec_seccomp import seccomp_from_spec

    return seccomp_from_spec(s)
