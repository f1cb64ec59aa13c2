"""Resolved runtime configuration: the OCI runtime-spec, validated and typed.

:func:`from_spec` is the single place where a bundle's ``config.json`` is
read; every mechanism (namespaces, mounts, cgroups) receives these objects.
Mount options are already turned into flags and data here.

These types are plain classes (:mod:`pyrt_core.records`), not attrs:
``pyrt-runtime`` imports this module on every create, where attrs cost ~35 ms.
They keep what attrs gave: the same ``__init__`` parameters (a list or dict
default, given as None, is a fresh one per instance), ``==`` by value, a
readable repr; the ones attrs made ``frozen`` are immutable and hashable, the
others mutable and unhashable; :func:`evolve` stands in for ``attrs.evolve``.
Keep it so: no module-level import heavier than ``os``.
"""
from __future__ import annotations

import os

from ..errors import UsageError
from ..records import FrozenRecord, Record, evolve  # noqa: F401 - evolve: for callers


#: the annotation naming the directory where compiled seccomp filters are cached (pyrt's
#: engine sets it to ``<runroot>/seccomp``; see pyrt_namespaces.seccomp)
SECCOMP_CACHE_ANNOTATION = "io.pyrt.seccomp-cache"

#: a stdio entry (of pyrt_isolation_create/_join's ``stdio``) meaning "the container's own
#: /dev/null", opened by the process inside the container: never the host's node
NULL_STDIO = "null"

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


# mount_setattr(2) attributes, for the recursive options (runc's "rro" and friends; docker
# 25 asks "rro" for a read-only bind): option -> (attributes to set, to clear)
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME = 0x70, 0x10, 0x20
MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOSYMFOLLOW = 0x80, 0x200000
_RECURSIVE = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rrelatime": (0, MOUNT_ATTR__ATIME), "ratime": (0, MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, MOUNT_ATTR__ATIME), "rnorelatime": (0, MOUNT_ATTR__ATIME),
}


def recursive_attrs(options) -> tuple[int, int]:
    """The recursive options (``rro``, ``rnosuid``, ...) as mount attributes (set, clear)."""
    attr_set = attr_clr = 0
    for opt in options:
        if opt in _RECURSIVE:
            on, off = _RECURSIVE[opt]
            attr_set = (attr_set & ~off) | on
            attr_clr = (attr_clr & ~on) | off
    return attr_set, attr_clr


def parse_mount_options(options: list[str]) -> tuple[int, int, str]:
    """Split OCI mount options into (flags, propagation flags, data string); the
    recursive options are :func:`recursive_attrs`'s and are left out."""
    flags = 0
    prop = 0
    data = []
    for opt in options:
        if opt in _RECURSIVE:
            continue
        if opt in _MOUNT_FLAGS:
            on, bit = _MOUNT_FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in _PROPAGATION:
            prop |= _PROPAGATION[opt]
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


class Mount(FrozenRecord):
    __slots__ = ("destination", "type", "source", "flags", "propagation", "data", "options",
                 "rec_set", "rec_clr")
    destination: str
    type: str
    source: str
    flags: int
    propagation: int
    data: str
    options: tuple[str, ...]
    rec_set: int  # mount attributes for the whole tree of a bind (recursive options)
    rec_clr: int

    def __init__(self, destination: str, type: str, source: str, flags: int = 0,
                 propagation: int = 0, data: str = "", options: tuple[str, ...] = (),
                 rec_set: int = 0, rec_clr: int = 0):
        self._set(destination, type, source, flags, propagation, data, options, rec_set, rec_clr)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


class Namespace(FrozenRecord):
    __slots__ = ("type", "path")
    type: str
    path: str | None

    def __init__(self, type: str, path: str | None = None):
        self._set(type, path)


class IdMapping(FrozenRecord):
    __slots__ = ("container_id", "host_id", "size")
    container_id: int
    host_id: int
    size: int

    def __init__(self, container_id: int, host_id: int, size: int):
        self._set(container_id, host_id, size)


class Device(FrozenRecord):
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")
    path: str
    type: str  # c, b, u, p
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int

    def __init__(self, path: str, type: str, major: int = 0, minor: int = 0,
                 file_mode: int = 0o666, uid: int = 0, gid: int = 0):
        self._set(path, type, major, minor, file_mode, uid, gid)


#: Devices every container gets in /dev (runtime-spec "default devices"), unless
#: /dev is a bind mount; a linux.devices entry with the same path replaces one.
DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3),
    Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7),
    Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9),
    Device("/dev/tty", "c", 5, 0),
)


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


class Rlimit(FrozenRecord):
    __slots__ = ("type", "soft", "hard")
    type: str  # RLIMIT_NOFILE ...
    soft: int
    hard: int

    def __init__(self, type: str, soft: int, hard: int):
        self._set(type, soft, hard)


class Capabilities(Record):
    __slots__ = ("bounding", "effective", "permitted", "inheritable", "ambient")

    def __init__(self, bounding: frozenset[str] = frozenset(),
                 effective: frozenset[str] = frozenset(),
                 permitted: frozenset[str] = frozenset(),
                 inheritable: frozenset[str] = frozenset(),
                 ambient: frozenset[str] = frozenset()):
        self.bounding = bounding
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.ambient = ambient


class ProcessConfig(Record):
    __slots__ = ("args", "env", "cwd", "uid", "gid", "additional_gids", "umask", "terminal",
                 "capabilities", "no_new_privileges", "rlimits", "oom_score_adj", "seccomp",
                 "preserve_fds", "console_socket", "on_console", "seccomp_cache")

    def __init__(self, args: list[str], env: list[str] | None = None, cwd: str = "/",
                 uid: int = 0, gid: int = 0, additional_gids: list[int] | None = None,
                 umask: int | None = None, terminal: bool = False,
                 capabilities: Capabilities | None = None, no_new_privileges: bool = False,
                 rlimits: list[Rlimit] | None = None, oom_score_adj: int | None = None,
                 seccomp: object | None = None, preserve_fds: int = 0,
                 console_socket: str | None = None, on_console: object | None = None,
                 seccomp_cache: str | None = None):
        self.args = args
        self.env = [] if env is None else env
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.additional_gids = [] if additional_gids is None else additional_gids
        self.umask = umask
        self.terminal = terminal
        self.capabilities = capabilities
        self.no_new_privileges = no_new_privileges
        self.rlimits = [] if rlimits is None else rlimits
        self.oom_score_adj = oom_score_adj
        # Not in the spec's process object: the container's linux.seccomp (a
        # SeccompConfig), set by whoever joins a process to a container (exec).
        self.seccomp = seccomp
        # Not in the spec either: runc's --preserve-fds N, fds 3..3+N-1 of the runtime
        # are passed on to the process (set by pyrt-runtime create/exec).
        self.preserve_fds = preserve_fds
        # Not in the spec: runc's exec --console-socket; the joined process opens a pty in
        # the container's devpts and its master is sent to this socket (set by pyrt-runtime
        # exec).
        self.console_socket = console_socket
        # In-process alternative (pyrt's own ``exec -t``): called with the master fd.
        self.on_console = on_console
        # Not in the spec: where the container's compiled seccomp filters are cached (its
        # SECCOMP_CACHE_ANNOTATION), for a process joined to it (exec).
        self.seccomp_cache = seccomp_cache


class Hook(FrozenRecord):
    """One OCI hook: an absolute path run with ``args``/``env``, state JSON on stdin."""

    __slots__ = ("path", "args", "env", "timeout")
    path: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    timeout: int | None

    def __init__(self, path: str, args: tuple[str, ...] = (), env: tuple[str, ...] = (),
                 timeout: int | None = None):
        self._set(path, args, env, timeout)


class Hooks(Record):
    __slots__ = ("prestart", "create_runtime", "create_container", "start_container",
                 "poststart", "poststop")

    def __init__(self, prestart: list[Hook] | None = None,
                 create_runtime: list[Hook] | None = None,
                 create_container: list[Hook] | None = None,
                 start_container: list[Hook] | None = None,
                 poststart: list[Hook] | None = None, poststop: list[Hook] | None = None):
        self.prestart = [] if prestart is None else prestart
        self.create_runtime = [] if create_runtime is None else create_runtime
        self.create_container = [] if create_container is None else create_container
        self.start_container = [] if start_container is None else start_container
        self.poststart = [] if poststart is None else poststart
        self.poststop = [] if poststop is None else poststop


HOOK_PHASES = {
    "prestart": "prestart", "createRuntime": "create_runtime",
    "createContainer": "create_container", "startContainer": "start_container",
    "poststart": "poststart", "poststop": "poststop",
}


class DeviceRule(Record):
    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type: str = "a", major: int | None = None,
                 minor: int | None = None, access: str = "rwm"):
        self.allow = allow
        self.type = type  # a, c, b
        self.major = major
        self.minor = minor
        self.access = access


class Resources(Record):
    """Resource limits, in runtime-spec units (bytes, shares, microseconds)."""

    __slots__ = ("memory_limit", "memory_reservation", "memory_swap", "disable_oom_killer",
                 "memory_swappiness", "cpu_shares", "cpu_quota", "cpu_period", "cpuset_cpus",
                 "cpuset_mems", "blkio_weight", "blkio_throttle", "pids_limit", "devices")

    def __init__(self, memory_limit: int | None = None, memory_reservation: int | None = None,
                 memory_swap: int | None = None, disable_oom_killer: bool = False,
                 memory_swappiness: int | None = None, cpu_shares: int | None = None,
                 cpu_quota: int | None = None, cpu_period: int | None = None,
                 cpuset_cpus: str | None = None, cpuset_mems: str | None = None,
                 blkio_weight: int | None = None,
                 blkio_throttle: dict[str, list[tuple[int, int, int]]] | None = None,
                 pids_limit: int | None = None, devices: list[DeviceRule] | None = None):
        self.memory_limit = memory_limit
        self.memory_reservation = memory_reservation
        self.memory_swap = memory_swap
        self.disable_oom_killer = disable_oom_killer
        self.memory_swappiness = memory_swappiness  # 0..100 (cgroup v1 memory.swappiness)
        self.cpu_shares = cpu_shares
        self.cpu_quota = cpu_quota
        self.cpu_period = cpu_period
        self.cpuset_cpus = cpuset_cpus
        self.cpuset_mems = cpuset_mems
        self.blkio_weight = blkio_weight
        self.blkio_throttle = {} if blkio_throttle is None else blkio_throttle
        self.pids_limit = pids_limit
        self.devices = [] if devices is None else devices

    def is_empty(self) -> bool:
        """True when no limit is set (device rules alone do not count)."""
        return (not any(getattr(self, k) for k in self.__slots__ if k != "devices")
                and self.memory_swappiness is None)

    def restricts_devices(self) -> bool:
        """Whether the device rules deny some device: then a resource manager must enforce
        them (a device cgroup).  As the managers apply them: over "deny all" unless the
        first rule covers every device and access, later rules winning; only rules that
        end in "allow everything" (``--privileged``) or no rules at all deny nothing."""
        if not self.devices:
            return False
        allow_all = False
        for rule in self.devices:
            if rule.type == "a" and set(rule.access) >= set("rwm"):
                allow_all = bool(rule.allow)
            elif not rule.allow:
                allow_all = False
        return not allow_all


class RuntimeConfig(Record):
    """A bundle's configuration, resolved: what the mechanisms act on."""

    __slots__ = ("id", "bundle", "root_path", "root_readonly", "process", "hostname", "mounts",
                 "namespaces", "uid_mappings", "gid_mappings", "devices", "masked_paths",
                 "readonly_paths", "sysctl", "rootfs_propagation", "resources", "cgroups_path",
                 "annotations", "hooks", "domainname", "personality", "no_pivot", "seccomp",
                 "console_socket", "on_console", "time_offsets")

    def __init__(self, id: str, bundle: str, root_path: str, root_readonly: bool,
                 process: ProcessConfig, hostname: str | None = None,
                 mounts: list[Mount] | None = None, namespaces: list[Namespace] | None = None,
                 uid_mappings: list[IdMapping] | None = None,
                 gid_mappings: list[IdMapping] | None = None,
                 devices: list[Device] | None = None, masked_paths: list[str] | None = None,
                 readonly_paths: list[str] | None = None, sysctl: dict[str, str] | None = None,
                 rootfs_propagation: int = 0, resources: Resources | None = None,
                 cgroups_path: str | None = None, annotations: dict[str, str] | None = None,
                 hooks: Hooks | None = None, domainname: str | None = None,
                 personality: str | None = None, no_pivot: bool = False,
                 seccomp: object | None = None, console_socket: str | None = None,
                 on_console: object | None = None,
                 time_offsets: dict[str, tuple[int, int]] | None = None):
        self.id = id
        self.bundle = bundle
        self.root_path = root_path
        self.root_readonly = root_readonly
        self.process = process
        self.hostname = hostname
        self.mounts = [] if mounts is None else mounts
        self.namespaces = [] if namespaces is None else namespaces
        self.uid_mappings = [] if uid_mappings is None else uid_mappings
        self.gid_mappings = [] if gid_mappings is None else gid_mappings
        self.devices = [] if devices is None else devices
        self.masked_paths = [] if masked_paths is None else masked_paths
        self.readonly_paths = [] if readonly_paths is None else readonly_paths
        self.sysctl = {} if sysctl is None else sysctl
        self.rootfs_propagation = rootfs_propagation
        self.resources = Resources() if resources is None else resources
        self.cgroups_path = cgroups_path
        self.annotations = {} if annotations is None else annotations
        self.hooks = Hooks() if hooks is None else hooks
        self.domainname = domainname
        self.personality = personality  # "LINUX" or "LINUX32"
        self.no_pivot = no_pivot  # runtime option (create --no-pivot): MS_MOVE + chroot
        self.seccomp = seccomp  # resolved by seccomp_config (helper module)
        # runtime option (create --console-socket): a pty opened inside the container
        # goes to this socket
        self.console_socket = console_socket
        # In-process alternative to console_socket (pyrt's own foreground ``run -t``):
        # called with the master fd of the pty opened inside the container; the callee
        # owns the fd.
        self.on_console = on_console
        # linux.timeOffsets: clock ("monotonic", "boottime") -> (seconds, nanoseconds),
        # for the container's new time namespace
        self.time_offsets = {} if time_offsets is None else time_offsets

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


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
        rprop = _PROPAGATION.get(linux["rootfsPropagation"])
        if rprop is None:
            raise UsageError("invalid OCI config: linux.rootfsPropagation "
                             f"{linux['rootfsPropagation']!r} is not one of {', '.join(_PROPAGATION)}")
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
    """linux.seccomp resolved by seccomp_config (when that module is present)."""
    if s is None:
        return None
    try:
        from .seccomp_config import seccomp_from_spec
    except ImportError:
        return None
    return seccomp_from_spec(s)
