"""Resolved runtime configuration: the OCI runtime-spec, validated and typed.

:func:`from_spec` is the single place where a bundle's ``config.json`` is
read; every mechanism (namespaces, mounts, cgroups) receives these objects.
Mount options are already turned into flags and data here.
"""
from __future__ import annotations

import os

import attrs
from attrs import define, field, frozen

from ..errors import UsageError

NAMESPACE_TYPES = ("mount", "pid", "network", "ipc", "uts", "user", "cgroup", "time")

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (set?, flag)
_MOUNT_FLAGS = {
    "ro": (True, MS_RDONLY), "rw": (False, MS_RDONLY),
    "nosuid": (True, MS_NOSUID), "suid": (False, MS_NOSUID),
    "nodev": (True, MS_NODEV), "dev": (False, MS_NODEV),
    "noexec": (True, MS_NOEXEC), "exec": (False, MS_NOEXEC),
    "sync": (True, MS_SYNCHRONOUS), "async": (False, MS_SYNCHRONOUS),
    "dirsync": (True, MS_DIRSYNC),
    "remount": (True, MS_REMOUNT),
    "mand": (True, MS_MANDLOCK), "nomand": (False, MS_MANDLOCK),
    "atime": (False, MS_NOATIME), "noatime": (True, MS_NOATIME),
    "diratime": (False, MS_NODIRATIME), "nodiratime": (True, MS_NODIRATIME),
    "bind": (True, MS_BIND), "rbind": (True, MS_BIND | MS_REC),
    "relatime": (True, MS_RELATIME), "norelatime": (False, MS_RELATIME),
    "strictatime": (True, MS_STRICTATIME), "nostrictatime": (False, MS_STRICTATIME),
    "nosymfollow": (True, MS_NOSYMFOLLOW), "symfollow": (False, MS_NOSYMFOLLOW),
    "lazytime": (True, MS_LAZYTIME), "nolazytime": (False, MS_LAZYTIME),
}
_PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}


def parse_mount_options(options: list[str]) -> tuple[int, int, str]:
    """Split OCI mount options into (flags, propagation flags, data string)."""
    flags = 0
    prop = 0
    data = []
    for opt in options:
        if opt in _MOUNT_FLAGS:
            on, bit = _MOUNT_FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in _PROPAGATION:
            prop |= _PROPAGATION[opt]
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


@frozen
class Mount:
    destination: str
    type: str
    source: str
    flags: int = 0
    propagation: int = 0
    data: str = ""
    options: tuple[str, ...] = ()

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


@frozen
class Namespace:
    type: str
    path: str | None = None


@frozen
class IdMapping:
    container_id: int
    host_id: int
    size: int


@frozen
class Device:
    path: str
    type: str  # c, b, u, p
    major: int = 0
    minor: int = 0
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


@frozen
class Rlimit:
    type: str  # RLIMIT_NOFILE ...
    soft: int
    hard: int


@define
class Capabilities:
    bounding: frozenset[str] = frozenset()
    effective: frozenset[str] = frozenset()
    permitted: frozenset[str] = frozenset()
    inheritable: frozenset[str] = frozenset()
    ambient: frozenset[str] = frozenset()


@define
class ProcessConfig:
    args: list[str]
    env: list[str] = field(factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(factory=list)
    umask: int | None = None
    terminal: bool = False
    capabilities: Capabilities | None = None
    no_new_privileges: bool = False
    rlimits: list[Rlimit] = field(factory=list)
    oom_score_adj: int | None = None


@define
class DeviceRule:
    allow: bool
    type: str = "a"  # a, c, b
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"


@define
class Resources:
    """Resource limits, in runtime-spec units (bytes, shares, microseconds)."""

    memory_limit: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None
    disable_oom_killer: bool = False
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    blkio_weight: int | None = None
    blkio_throttle: dict[str, list[tuple[int, int, int]]] = field(factory=dict)
    pids_limit: int | None = None
    devices: list[DeviceRule] = field(factory=list)

    def is_empty(self) -> bool:
        """True when no limit is set (device rules alone do not count)."""
        d = attrs.asdict(self, recurse=False)
        d.pop("devices")
        return not any(v for v in d.values())


@define
class RuntimeConfig:
    """A bundle's configuration, resolved: what the mechanisms act on."""

    id: str
    bundle: str
    root_path: str
    root_readonly: bool
    process: ProcessConfig
    hostname: str | None = None
    mounts: list[Mount] = field(factory=list)
    namespaces: list[Namespace] = field(factory=list)
    uid_mappings: list[IdMapping] = field(factory=list)
    gid_mappings: list[IdMapping] = field(factory=list)
    devices: list[Device] = field(factory=list)
    masked_paths: list[str] = field(factory=list)
    readonly_paths: list[str] = field(factory=list)
    sysctl: dict[str, str] = field(factory=dict)
    rootfs_propagation: int = 0
    resources: Resources = field(factory=Resources)
    cgroups_path: str | None = None
    annotations: dict[str, str] = field(factory=dict)

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


def _ids(maps) -> list[IdMapping]:
    return [IdMapping(m["containerID"], m["hostID"], m["size"]) for m in maps or []]


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
    return ProcessConfig(
        args=list(args),
        env=list(p.get("env") or []),
        cwd=cwd,
        uid=int(user.get("uid", 0)),
        gid=int(user.get("gid", 0)),
        additional_gids=[int(g) for g in user.get("additionalGids") or []],
        umask=user.get("umask"),
        terminal=bool(p.get("terminal", False)),
        capabilities=capabilities,
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        rlimits=[Rlimit(r["type"], int(r["soft"]), int(r["hard"])) for r in p.get("rlimits") or []],
        oom_score_adj=p.get("oomScoreAdj"),
    )


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
        namespaces.append(Namespace(t, ns.get("path") or None))
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
        mounts.append(Mount(dest, mtype, m.get("source", ""), flags, prop, data, tuple(opts)))
    devices = [
        Device(d["path"], d["type"], int(d.get("major", 0)), int(d.get("minor", 0)),
               int(d.get("fileMode", 0o666)), int(d.get("uid", 0)), int(d.get("gid", 0)))
        for d in linux.get("devices") or []
    ]
    _, rprop, _ = parse_mount_options([linux["rootfsPropagation"]]) if linux.get("rootfsPropagation") else (0, 0, "")
    return RuntimeConfig(
        id=container_id,
        bundle=bundle,
        root_path=root_path,
        root_readonly=bool(root.get("readonly", False)),
        process=process_from_spec(_require(spec, "process", "")),
        hostname=spec.get("hostname"),
        mounts=mounts,
        namespaces=namespaces,
        uid_mappings=_ids(linux.get("uidMappings")),
        gid_mappings=_ids(linux.get("gidMappings")),
        devices=devices,
        masked_paths=list(linux.get("maskedPaths") or []),
        readonly_paths=list(linux.get("readonlyPaths") or []),
        sysctl=dict(linux.get("sysctl") or {}),
        rootfs_propagation=rprop,
        resources=resources_from_spec(linux.get("resources")),
        cgroups_path=linux.get("cgroupsPath"),
        annotations=dict(spec.get("annotations") or {}),
    )
