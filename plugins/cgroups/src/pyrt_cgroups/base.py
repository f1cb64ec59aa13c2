"""The cgroup manager interface, its shared behaviour, and cgroup paths.

A :class:`Manager` is one cgroup (in every hierarchy it spans) handled by one
implementation: ``cgroupfs-v1`` (:mod:`pyrt_cgroups.v1`, legacy and hybrid hosts) or
``cgroupfs-v2`` (:mod:`pyrt_cgroups.v2`, unified hosts); :mod:`pyrt_cgroups.manager`
picks one for a host or rebuilds one from a record.  The implementations build on this
module and :mod:`pyrt_cgroups.limits`; neither imports them back.

Paths: a cgroup path is absolute inside its hierarchy (``/pyrt/pyrt-<id>``).
A relative path -- what the engine writes as ``cgroupsPath`` -- is placed
under :data:`DEFAULT_PARENT`, so every container of pyrt lives in
``<hierarchy>/pyrt/``.  An absolute path is taken as is (``--cgroup-parent``
makes one).

A manager's :meth:`Manager.record` is a JSON-able mapping stored in the
container's state; :func:`pyrt_cgroups.manager.from_record` rebuilds the manager from
it so release, stats and OOM checks use the cgroups that were really made.
"""
from __future__ import annotations

import _signal  # signal.py would import enum (~3 ms) on delete's path
import abc
import errno
import os
import time

from pyrt_core.errors import UsageError

from . import cgfs, detect
from .cgfs import CgroupFS, procs
from .errors import CgroupError

#: signal.SIGKILL, without importing signal (and enum) on delete's path
SIGKILL = 9

DEFAULT_PARENT = "/pyrt"


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
            for sub in cgroup_tree(self.fs, d):
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
            for sub in reversed(cgroup_tree(self.fs, d)):
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


def cgroup_tree(fs: CgroupFS, top: str) -> list[str]:
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
