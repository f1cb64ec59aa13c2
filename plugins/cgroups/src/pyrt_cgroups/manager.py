"""The cgroup manager interface, shared checks, and the per-host factory.

A :class:`Manager` is one cgroup (in every hierarchy it spans) handled by one
implementation: ``cgroupfs-v1`` (:mod:`pyrt_cgroups.v1`, legacy and hybrid
hosts) or ``cgroupfs-v2`` (:mod:`pyrt_cgroups.v2`, unified hosts).
:func:`select` picks the implementation for a host, or the one named by
``PYRT_CGROUP_MANAGER`` (``cgroupfs-v1``, ``cgroupfs-v2``, ``none`` or
``auto``).

Paths: a cgroup path is absolute inside its hierarchy (``/pyrt/pyrt-<id>``).
A relative path -- what the engine writes as ``cgroupsPath`` -- is placed
under :data:`DEFAULT_PARENT`, so every container of pyrt lives in
``<hierarchy>/pyrt/``.  An absolute path is taken as is (``--cgroup-parent``
makes one).

A manager's :meth:`Manager.record` is a JSON-able mapping stored in the
container's state; :func:`from_record` rebuilds the manager from it so
release, stats and OOM checks use the cgroups that were really made.
"""
from __future__ import annotations

import _signal  # signal.py would import enum (~3 ms) on delete's path
import abc
import errno
import os
import time

from pyrt_core.errors import UsageError

from . import detect
from . import cgfs
from .cgfs import CgroupFS, procs
from .errors import CgroupError

#: signal.SIGKILL, without importing signal (and enum) on delete's path
SIGKILL = 9

DEFAULT_PARENT = "/pyrt"
ENV_MANAGER = "PYRT_CGROUP_MANAGER"
MANAGER_NAMES = ("cgroupfs-v1", "cgroupfs-v2")

MIN_MEMORY = 6 * 1024 * 1024  # docker's minimum (linuxMinMemory)
MIN_SHARES, MAX_SHARES = 2, 262144


# -- paths ---------------------------------------------------------------------------


def resolve_path(cgroups_path: str | None, name: str | None = None) -> str:
    """The absolute cgroup path for an OCI ``cgroupsPath`` (or a bare name).

    ``None`` -> ``/pyrt/<name>``; ``"x/y"`` -> ``/pyrt/x/y``; ``"/a/b"`` ->
    ``/a/b``.  ``..`` components, the root itself and systemd's
    ``slice:prefix:name`` form are refused.
    """
    p = cgroups_path or name
    if not p:
        raise UsageError("a cgroup needs a name or a path")
    if ":" in p:
        raise UsageError(f"cgroup path {p!r} looks like a systemd slice path: the cgroupfs "
                         "managers need a plain path")
    parts = [c for c in p.split("/") if c not in ("", ".")]
    if ".." in parts:
        raise UsageError(f"cgroup path {p!r} must not contain '..'")
    if not parts:
        raise UsageError(f"cgroup path {p!r} names the root cgroup")
    if p.startswith("/"):
        return "/" + "/".join(parts)
    return DEFAULT_PARENT + "/" + "/".join(parts)


# -- checks that do not depend on the host ---------------------------------------------


def _mib(n: int) -> str:
    return f"{n / 1048576:g}MiB"


def check_values(r) -> None:
    """Refuse values no manager can honour (raises UsageError); docker's rules."""
    mem = r.memory_limit or 0
    if mem < -1:
        raise UsageError(f"invalid memory limit {mem}")
    if 0 < mem < MIN_MEMORY:
        raise UsageError(f"memory limit {_mib(mem)} is too small: the minimum allowed is 6MiB")
    res = r.memory_reservation or 0
    if res < -1:
        raise UsageError(f"invalid memory reservation {res}")
    if 0 < res < MIN_MEMORY:
        raise UsageError(f"memory reservation {_mib(res)} is too small: the minimum allowed is 6MiB")
    if mem > 0 and res > mem:
        raise UsageError("the memory limit must not be less than the memory reservation")
    swap = r.memory_swap or 0
    if swap < -1:
        raise UsageError(f"invalid memory+swap limit {swap}")
    if swap and mem <= 0:
        raise UsageError("a memory+swap limit (--memory-swap) needs a memory limit (--memory) too")
    if swap > 0 and swap < mem:
        raise UsageError("the memory+swap limit (--memory-swap) must be at least the memory limit "
                         "(--memory)")
    shares = r.cpu_shares or 0
    if shares and not MIN_SHARES <= shares <= MAX_SHARES:
        raise UsageError(f"cpu shares {shares} out of range: {MIN_SHARES} to {MAX_SHARES}")
    period = r.cpu_period or 0
    if period and not 1000 <= period <= 1000000:
        raise UsageError(f"cpu period {period} out of range: 1000 (1ms) to 1000000 (1s)")
    quota = r.cpu_quota or 0
    if quota < -1 or 0 < quota < 1000:
        raise UsageError(f"cpu quota {quota} is invalid: -1 (unlimited) or at least 1000 (1ms)")
    for what, text in (("cpus", r.cpuset_cpus), ("mems", r.cpuset_mems)):
        if text:
            try:
                detect.parse_cpu_list(text)
            except ValueError:
                raise UsageError(f"invalid cpuset {what} {text!r}: expected a list such as 0-3,5") from None
    w = r.blkio_weight or 0
    if w and not 10 <= w <= 1000:
        raise UsageError(f"blkio weight {w} out of range: 10 to 1000")
    for key, entries in (r.blkio_throttle or {}).items():
        if key not in THROTTLE_KEYS:
            raise UsageError(f"unknown block I/O throttle {key!r}")
        for major, minor, rate in entries:
            if major < 0 or minor < 0 or rate < 0:
                raise UsageError(f"invalid {key} entry {major}:{minor} {rate}")
    for d in r.devices:
        if d.type not in ("a", "b", "c"):
            raise UsageError(f"invalid device rule type {d.type!r}: a, b or c")
        if not d.access or set(d.access) - set("rwm"):
            raise UsageError(f"invalid device rule access {d.access!r}: a combination of r, w and m")


#: OCI blockIO throttle keys -> (v1 file, v2 io.max key)
THROTTLE_KEYS = {
    "throttleReadBpsDevice": ("blkio.throttle.read_bps_device", "rbps"),
    "throttleWriteBpsDevice": ("blkio.throttle.write_bps_device", "wbps"),
    "throttleReadIOPSDevice": ("blkio.throttle.read_iops_device", "riops"),
    "throttleWriteIOPSDevice": ("blkio.throttle.write_iops_device", "wiops"),
}


def needed_controllers(r) -> dict[str, str]:
    """Generic controller -> the flag that needs it, for the limits set in ``r``."""
    need: dict[str, str] = {}
    if r.memory_limit or r.memory_reservation or r.memory_swap or r.disable_oom_killer:
        need["memory"] = "--memory/--memory-reservation/--memory-swap/--oom-kill-disable"
    if r.cpu_shares or r.cpu_quota or r.cpu_period:
        need["cpu"] = "--cpus/--cpu-shares/--cpu-quota/--cpu-period"
    if r.cpuset_cpus or r.cpuset_mems:
        need["cpuset"] = "--cpuset-cpus/--cpuset-mems"
    if r.blkio_weight or any(r.blkio_throttle.values()):
        need["blkio"] = "--blkio-weight/--device-read-bps/--device-write-bps/--device-read-iops/--device-write-iops"
    if r.pids_limit:
        need["pids"] = "--pids-limit"
    return need


def check_cpuset(r, cpus_avail: set[int] | None, mems_avail: set[int] | None) -> None:
    """Refuse a cpuset naming CPUs or memory nodes the host does not offer."""
    for what, text, avail in (("CPUs", r.cpuset_cpus, cpus_avail), ("memory nodes", r.cpuset_mems, mems_avail)):
        if not text or avail is None:
            continue
        want = detect.parse_cpu_list(text)
        if not want <= avail:
            raise UsageError(f"requested {what} are not available - requested {text}, available: "
                             f"{detect.format_cpu_list(avail)}")


def host_cpus(fallback: str = "/sys/devices/system/cpu/online") -> set[int] | None:
    try:
        with open(fallback) as f:
            return detect.parse_cpu_list(f.read())
    except (OSError, ValueError):
        return None


# -- the interface -----------------------------------------------------------------------


class Manager(abc.ABC):
    """One cgroup, in every hierarchy it spans, handled by one implementation."""

    name: str = ""
    version: int = 0

    def __init__(self, host: detect.Hierarchies, path: str, fs: CgroupFS | None = None):
        if not path.startswith("/") or path == "/":
            raise ValueError(f"cgroup path must be absolute and not the root: {path!r}")
        self.host = host
        self.path = path
        self.fs = fs or cgfs.REAL
        self.created: list[str] = []  # directories this manager made, parents first
        self._paths: dict[str, str] | None = None  # from a record, else computed

    # -- host facts (class level) --
    @classmethod
    @abc.abstractmethod
    def unusable(cls, host: detect.Hierarchies) -> str | None:
        """Why this implementation cannot run on ``host``; ``None`` when it can."""

    @classmethod
    @abc.abstractmethod
    def controllers(cls, host: detect.Hierarchies) -> list[str]:
        """The controllers this implementation can use on ``host``."""

    @classmethod
    @abc.abstractmethod
    def validate(cls, host: detect.Hierarchies, resources, fs: CgroupFS | None = None) -> None:
        """Raise UsageError for limits this host cannot honour."""

    # -- one cgroup --
    @property
    @abc.abstractmethod
    def paths(self) -> dict[str, str]:
        """Controller (or ``"unified"``) -> directory of this cgroup."""

    def _restore(self, record: dict) -> None:
        self._paths = dict(record.get("paths") or {})
        self.created = list(record.get("created") or [])

    def dirs(self) -> list[str]:
        """The distinct directories of this cgroup."""
        return sorted(set(self.paths.values()))

    def exists(self) -> bool:
        return any(self.fs.isdir(d) for d in self.dirs())

    @abc.abstractmethod
    def create(self) -> None:
        """Make the cgroup (and missing parents) in every hierarchy."""

    @abc.abstractmethod
    def set(self, resources) -> None:
        """Write the limits in ``resources`` (unset fields are left alone)."""

    @abc.abstractmethod
    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the cgroup."""

    @abc.abstractmethod
    def stats(self) -> dict:
        """Usage figures: ``{"cpu": {...}, "memory": {...}, "pids": {...}, "blkio": {...}, ...}``."""

    @abc.abstractmethod
    def freeze(self, timeout: float = 10.0) -> None:
        """Stop every process in the cgroup; returns once the kernel reports them frozen."""

    @abc.abstractmethod
    def thaw(self, timeout: float = 10.0) -> None:
        """Let the processes run again."""

    @abc.abstractmethod
    def freezer_state(self) -> str:
        """``"THAWED"``, ``"FREEZING"`` or ``"FROZEN"``."""

    @abc.abstractmethod
    def oom_kill_count(self) -> int:
        """How many processes the kernel's OOM killer killed in this cgroup."""

    @abc.abstractmethod
    def _signal_all(self, sig: int) -> None:
        """Send ``sig`` to every process in the cgroup (and its descendants)."""

    def join_self(self) -> None:
        """Move the calling process into the cgroup (see :meth:`apply`'s ``self_join``)."""
        raise CgroupError(f"{self.name} cannot have a process join its cgroup itself")

    #: whether :meth:`join_self` is cheaper than :meth:`add` (see :meth:`apply`)
    self_join = False

    # -- shared behaviour --
    def apply(self, pid: int, resources, self_join: bool = False) -> bool:
        """create + set + add; on failure put ``pid`` back and remove what was made.

        ``self_join``: the process offers to move itself (pyrt_resources_join); a
        manager for which that is cheaper (:attr:`self_join`) then skips :meth:`add`
        and returns True (the process joins with :meth:`join_self`)."""
        original = detect.own_cgroups(f"/proc/{pid}/cgroup")
        try:
            self.create()
            self.set(resources)
            if self_join and self.self_join:
                return True
            self.add(pid)
            return False
        except BaseException:
            self._move_back(pid, original)
            try:
                self.destroy(kill=False)
            except CgroupError:
                pass
            raise

    def _move_back(self, pid: int, original: dict[str, str]) -> None:
        """Best effort: return ``pid`` to the cgroups it was in."""

    def _makedirs(self, top: str, target: str, before_child=None) -> None:
        """Make every missing directory from mount point ``top`` down to
        ``target``, recording those made.  ``before_child(dir)`` runs on each
        existing level before its child is made.  A parent removed meanwhile
        by another container's release (``ENOENT``) restarts the walk."""
        for attempt in range(10):
            cur = top
            try:
                for comp in os.path.relpath(target, top).split(os.sep):
                    if before_child is not None:
                        before_child(cur)
                    cur = os.path.join(cur, comp)
                    if self.fs.mkdir(cur):
                        self.created.append(cur)
                return
            except CgroupError as e:
                if getattr(e, "errno", None) != errno.ENOENT or attempt == 9:
                    raise
                self.created = [c for c in self.created if self.fs.isdir(c)]

    def pids(self) -> list[int]:
        """Pids of the processes in the cgroup and its descendants."""
        out: set[int] = set()
        for d in self.dirs():
            for sub in _tree(self.fs, d):
                out.update(procs(self.fs, sub))
        return sorted(out)

    def kill_all(self, sig: int = SIGKILL, timeout: float = 10.0) -> None:
        """Signal every process in the cgroup; with SIGKILL, wait until it is empty."""
        if not self.exists():
            return
        if sig == SIGKILL and not self.pids():
            return  # empty (a stopped container's): no freezing and signalling round
        self._signal_all(sig)
        if sig != SIGKILL:
            return
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            left = self.pids()
            if not left:
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"processes {left} in cgroup {self.path} did not exit after SIGKILL")
            self._signal_all(sig)  # also catches a process forked meanwhile
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def destroy(self, kill: bool = True) -> None:
        """Remove the cgroup everywhere (killing what is left in it when ``kill``),
        then the parents this manager created, if empty."""
        if kill:
            self.kill_all()
        for d in self.dirs():
            for sub in reversed(_tree(self.fs, d)):
                self.fs.rmdir(sub)
        for parent in self._parents_to_remove():
            self._remove_if_unused(parent)

    def _parents_to_remove(self) -> list[str]:
        """Deepest first: the parents this manager made, and pyrt's own
        ``/pyrt`` in each hierarchy (pyrt owns it: the last cgroup to leave
        removes it, whoever made it)."""
        out = [p for p in self.created if p not in self.dirs()]
        if self.path.startswith(DEFAULT_PARENT + "/"):
            for d in self.dirs():
                top = d[: len(d) - len(self.path)] + DEFAULT_PARENT
                if top not in out:
                    out.append(top)
        return sorted(set(out), key=lambda p: p.count("/"), reverse=True)

    def _remove_if_unused(self, parent: str, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if any(e.is_dir() for e in os.scandir(parent)) or procs(self.fs, parent):
                    return  # another cgroup lives below it: leave it
            except (OSError, CgroupError):
                return  # gone already
            try:
                self.fs.rmdir(parent, timeout=0)
                return
            except CgroupError:
                # a child just removed keeps its parent busy while the kernel takes
                # it offline (v1 memory): retry for a moment
                if time.monotonic() > deadline:
                    return
            time.sleep(0.01)

    def record(self) -> dict:
        """What to store in the container's state to find this cgroup again."""
        return {"manager": self.name, "path": self.path, "paths": dict(self.paths),
                "created": [p for p in self.created if p not in self.dirs()]}


def _tree(fs: CgroupFS, top: str) -> list[str]:
    """``top`` and every cgroup below it, parents before children."""
    if not fs.isdir(top):
        return []
    out = [top]
    for dirpath, dirnames, _ in os.walk(top):
        dirnames.sort()
        out.extend(os.path.join(dirpath, d) for d in dirnames)
    return out


def signal_checked(pid: int, key: str, expected: str, sig: int, proc_root: str = "/proc") -> bool:
    """Signal ``pid`` -- but only after a pidfd pins the process and
    ``/proc/PID/cgroup`` confirms it is in cgroup ``expected`` under
    controller ``key`` (``""`` for v2): a pid that exited and was reused is
    never signalled.  True when the signal was sent."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if detect.own_cgroups(f"{proc_root}/{pid}/cgroup").get(key) != expected:
            return False
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return False
        return True
    finally:
        os.close(pidfd)


# -- choosing an implementation ------------------------------------------------------------


def manager_class(name: str) -> type[Manager]:
    if name == "cgroupfs-v1":
        from .v1 import V1Manager

        return V1Manager
    if name == "cgroupfs-v2":
        from .v2 import V2Manager

        return V2Manager
    raise UsageError(f"unknown cgroup manager {name!r}: use cgroupfs-v1, cgroupfs-v2, none or auto")


def auto_name(host: detect.Hierarchies) -> str | None:
    """The manager this host calls for: v1 controllers -> v1, unified only -> v2."""
    if host.version == 1:
        return "cgroupfs-v1"
    if host.version == 2:
        return "cgroupfs-v2"
    return None


def select(host: detect.Hierarchies | None = None, name: str | None = None) -> type[Manager] | None:
    """The manager class to use, or ``None`` when cgroups are disabled (``none``).

    ``name`` defaults to ``$PYRT_CGROUP_MANAGER`` and then ``auto``.  A
    named manager the host cannot run raises UsageError; ``auto`` on a host
    with no cgroup mounts raises UsageError too (nothing could be limited).
    """
    if host is None:
        host = detect.find_hierarchies()
    if name is None:
        name = os.environ.get(ENV_MANAGER) or "auto"
    if name == "none":
        return None
    if name == "auto":
        name = auto_name(host)
        if name is None:
            raise UsageError("this host has no cgroup hierarchy mounted (looked in "
                             f"{detect.MOUNTINFO}): resource limits cannot be applied")
    cls = manager_class(name)
    why = cls.unusable(host)
    if why:
        raise UsageError(f"cgroup manager {name} cannot be used on this host: {why}")
    return cls


def from_record(record: dict, host: detect.Hierarchies | None = None,
                fs: CgroupFS | None = None) -> Manager:
    """Rebuild the manager a state record describes.

    Refuses a record whose directories are not under a cgroup mount of this
    host, so a damaged state file can never make pyrt signal or remove
    anything else.
    """
    if host is None:
        host = detect.find_hierarchies()
    cls = manager_class(record.get("manager", ""))
    mounts = [os.path.normpath(m) for m in host.mountpoints()]
    dirs = list((record.get("paths") or {}).values()) + list(record.get("created") or [])
    for d in dirs:
        nd = os.path.normpath(d)
        if ".." in d.split("/") or not any(nd.startswith(m + "/") for m in mounts):
            raise CgroupError(f"refusing to use cgroup directory {d!r} from a state record: "
                              "it is not inside a cgroup mount of this host")
    m = cls(host, record["path"], fs)
    m._restore(record)
    return m
