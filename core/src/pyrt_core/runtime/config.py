"""The runtime's configuration types: a bundle's ``config.json``, resolved and typed.

What every mechanism (the isolation and resource plugins, the runtime's own steps)
receives: :class:`RuntimeConfig` and the types it holds, with mount options already
turned into flags and data.  They are made from the runtime-spec JSON by
:mod:`pyrt_core.runtime.spec` (:func:`~pyrt_core.runtime.spec.from_spec`), the only
reader of ``config.json``; nothing here parses JSON, and mechanisms never see it.

Style: plain classes on :mod:`pyrt_core.records`, not attrs (the project's default, see
:mod:`pyrt_core.models`), because ``pyrt-runtime create`` imports this module on every
call and attrs costs ~35 ms of imports there (docs/architecture.md, "The hot path").
They keep what attrs gave: the same ``__init__`` parameters (a list or dict default,
given as None, is a fresh one per instance), ``==`` by value, a readable repr; the
ones attrs made ``frozen`` are immutable and hashable, the others mutable and
unhashable; :func:`evolve` stands in for ``attrs.evolve``.  Keep it so: no
module-level import heavier than ``os``.
"""
from __future__ import annotations

from ..records import FrozenRecord, Record, evolve  # noqa: F401 - evolve: for callers

#: the annotation naming the directory where the isolation plugin caches compiled seccomp
#: filters (pyrt's engine sets it to ``<runroot>/seccomp``)
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
        self.seccomp = seccomp  # a seccomp_config.SeccompConfig, or None
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
