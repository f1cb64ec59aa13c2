"""The standalone API: cgroups without containers.

cgroups do not depend on namespaces.  This module creates a cgroup with
limits, places any process in it, reads its statistics, pauses it, changes
its limits and removes it, on whichever cgroup version the host runs::

    from pyrt_cgroups import Cgroup, Resources

    with Cgroup.create("batch-job", Resources(memory_limit=64 << 20,
                                              cpu_quota=50000, cpu_period=100000)) as cg:
        proc = cg.popen(["python3", "job.py"])   # joins the cgroup before it runs
        proc.wait()
        print(cg.stats()["cpu"]["usage_ns"], cg.oom_killed())
    # leaving the block kills what is left in the cgroup and removes it

Limits are :class:`pyrt_core.runtime.config.Resources` (runtime-spec units:
bytes, CFS microseconds, shares) or an OCI ``linux.resources`` mapping.
"""
from __future__ import annotations

import os
import signal
import subprocess

from pyrt_core.api import Resources

from . import detect
from .cgfs import CgroupFS
from .errors import CgroupError
from .base import DEFAULT_PARENT, Manager, resolve_path
from .manager import from_record, select

__all__ = ["Cgroup", "Resources", "CgroupError", "as_resources", "DEFAULT_PARENT"]


def as_resources(resources) -> Resources:
    """``None``, a Resources, or an OCI ``linux.resources`` dict -> Resources."""
    if resources is None:
        return Resources()
    if isinstance(resources, Resources):
        return resources
    if isinstance(resources, dict):
        from pyrt_core.api import resources_from_spec

        return resources_from_spec(resources)
    raise TypeError(f"resources must be a Resources or an OCI linux.resources dict, not {type(resources).__name__}")


class Cgroup:
    """One cgroup, in every hierarchy the host's manager uses.

    Make one with :meth:`create` (new) or :meth:`from_record` (one made
    earlier, e.g. by another process).  Usable as a context manager that
    removes it on exit.
    """

    def __init__(self, manager: Manager):
        self._m = manager

    # -- making and finding ----------------------------------------------------------
    @classmethod
    def create(cls, name: str, resources=None, parent: str | None = None, *,
               manager: str | None = None, mountinfo: str | None = None,
               fs: CgroupFS | None = None) -> "Cgroup":
        """Create cgroup ``name`` with ``resources`` applied.

        ``parent`` is a cgroup path from the hierarchy root; without it the
        cgroup is made under ``/pyrt`` (a ``name`` starting with ``/`` is
        taken from the root as is).  ``manager`` forces ``cgroupfs-v1`` or
        ``cgroupfs-v2`` (default: ``$PYRT_CGROUP_MANAGER``, then the host's).
        Invalid or unsupported limits raise :class:`pyrt_core.errors.UsageError`
        before anything is made; an existing cgroup of that name raises
        :class:`CgroupError`.
        """
        host = detect.find_hierarchies(mountinfo)
        mcls = select(host, manager)
        if mcls is None:
            raise CgroupError("cgroups are disabled (cgroup manager 'none')")
        r = as_resources(resources)
        mcls.validate(host, r, fs)
        if parent is not None:
            if name.startswith("/"):
                raise CgroupError(f"an absolute cgroup name {name!r} cannot have a parent")
            path = resolve_path("/" + parent.strip("/") + "/" + name)
        else:
            path = resolve_path(name)
        m = mcls(host, path, fs)
        if m.exists():
            raise CgroupError(f"cgroup {path} already exists")
        try:
            m.create()
            m.set(r)
        except BaseException:
            try:
                m.destroy(kill=False)
            except CgroupError:
                pass
            raise
        return cls(m)

    @classmethod
    def from_record(cls, record: dict, *, mountinfo: str | None = None,
                    fs: CgroupFS | None = None) -> "Cgroup":
        """The cgroup a :meth:`record` (or a container's state) describes."""
        return cls(from_record(record, detect.find_hierarchies(mountinfo), fs))

    # -- facts -------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The cgroup's path inside its hierarchies, e.g. ``/pyrt/batch-job``."""
        return self._m.path

    @property
    def manager(self) -> str:
        """``"cgroupfs-v1"`` or ``"cgroupfs-v2"``."""
        return self._m.name

    @property
    def paths(self) -> dict[str, str]:
        """Controller (``"unified"`` on v2) -> directory."""
        return dict(self._m.paths)

    def record(self) -> dict:
        """A JSON-able description to find this cgroup again (:meth:`from_record`)."""
        return self._m.record()

    def exists(self) -> bool:
        return self._m.exists()

    def pids(self) -> list[int]:
        """Processes in the cgroup (and in cgroups below it)."""
        return self._m.pids()

    # -- processes ---------------------------------------------------------------------
    def add(self, pid: int) -> None:
        """Move process ``pid`` (every thread of it) into the cgroup."""
        self._m.add(pid)

    def popen(self, args, **kwargs) -> subprocess.Popen:
        """Start ``args`` (as :class:`subprocess.Popen`) inside the cgroup: the
        child joins it after fork, before exec, so no instruction of the new
        program runs outside the limits."""
        if "preexec_fn" in kwargs:
            raise TypeError("popen() sets preexec_fn itself")
        m = self._m

        def join():
            m.add(os.getpid())

        return subprocess.Popen(args, preexec_fn=join, **kwargs)

    # -- control -----------------------------------------------------------------------
    def update(self, resources) -> None:
        """Change limits; fields left unset keep their current values."""
        r = as_resources(resources)
        type(self._m).validate(self._m.host, r, self._m.fs)
        self._m.set(r)

    def freeze(self, timeout: float = 10.0) -> None:
        """Stop every process in the cgroup (``pyrt pause``); returns once frozen."""
        self._m.freeze(timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        """Resume the processes (``pyrt unpause``)."""
        self._m.thaw(timeout)

    @property
    def state(self) -> str:
        """The freezer state: ``THAWED``, ``FREEZING`` or ``FROZEN``."""
        return self._m.freezer_state()

    def stats(self) -> dict:
        """Usage figures, the same shape on v1 and v2::

            {"cpu": {"usage_ns", "user_ns", "system_ns", "nr_periods", "nr_throttled",
                     "throttled_ns", ...},
             "memory": {"usage", "max_usage", "limit", "oom_kill", ...},
             "pids": {"current", "limit"},
             "blkio": {"read_bytes", "write_bytes", "read_ios", "write_ios"},
             "freezer": {"state"}, ...}

        (a section is missing when the host lacks its controller).
        """
        return self._m.stats()

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process in this cgroup."""
        return self._m.oom_kill_count() > 0

    def kill_all(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signal every process in the cgroup; with SIGKILL, wait until none is left.
        Only processes the kernel lists in this cgroup are signalled."""
        self._m.kill_all(sig, timeout)

    def remove(self, kill: bool = True) -> None:
        """Remove the cgroup in every hierarchy, and the parents :meth:`create`
        made if they are empty.  With ``kill`` (default) processes still in
        it are killed first; without, a busy cgroup raises CgroupError."""
        self._m.destroy(kill=kill)

    def __enter__(self) -> "Cgroup":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<Cgroup {self.path} ({self.manager})>"
