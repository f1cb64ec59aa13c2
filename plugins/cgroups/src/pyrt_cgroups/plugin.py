"""The pyrt plugin: resource-control hooks backed by cgroups.

Registered through the ``pyrt.plugins`` entry point ``cgroups``.  Its hooks
run before the core's ``none`` manager (which is ``trylast``), so with this
plugin installed limits are applied; ``PYRT_CGROUP_MANAGER=none`` (or
blocking the plugin) hands containers back to the ``none`` manager, which
refuses any limit with a clear error.

Import-cheap on purpose: everything but the hook markers is imported inside
the hooks.

Besides the hooks, :func:`oom_killed`, :func:`stats`, :func:`freeze`,
:func:`thaw` and :func:`update` act on the record ``pyrt_resources_apply``
returned (as stored in the container's state); the engine can call them
through hooks once the lifecycle hook specs exist.
"""
from __future__ import annotations

from pyrt_core.hookspecs import hookimpl

#: True for type checkers only: the hooks' annotations name these types, which the
#: runtime's hot path must not import (docs/architecture.md, "The hot path")
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt_core.api import Resources

_MINE = ("cgroupfs-v1", "cgroupfs-v2")

#: what the hooks below import on first call, for callers with time to spare
#: (pyrt_core.hookspecs, "declarations"): the manager choice and what it builds on
WARM_UP = {"pyrt_resources_validate": ("pyrt_cgroups.manager",),
           "pyrt_resources_apply": ("pyrt_cgroups.manager",)}


def _select():
    """(host, manager class or None, why None)."""
    from pyrt_core.errors import UsageError

    from . import detect, manager

    host = detect.find_hierarchies()
    try:
        cls = manager.select(host)
    except UsageError as e:
        return host, None, str(e)
    if cls is None:
        return host, None, (f"cgroups are disabled ({manager.ENV_MANAGER}=none): "
                            "resource limits cannot be applied and device rules are not "
                            "enforced")
    return host, cls, None


@hookimpl
def pyrt_info() -> dict[str, dict[str, object]] | None:
    from .base import DEFAULT_PARENT

    host, cls, why = _select()
    mode = {"v2": "v2", "hybrid": "v1 (hybrid)", "v1": "v1", "none": "none"}[host.mode]
    info = {
        "manager": cls.name if cls else "none",
        "cgroup version": mode,
        "controllers": cls.controllers(host) if cls else [],
        "parent": DEFAULT_PARENT,
    }
    if why:
        info["reason"] = why
    return {"cgroups": info}


@hookimpl
def pyrt_runtime_features() -> dict[str, object] | None:
    # both versions (the systemd driver is not implemented)
    return {"cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False}}


@hookimpl
def pyrt_resources_validate(resources: Resources) -> str | None:
    from pyrt_core.errors import UsageError

    host, cls, why = _select()
    if cls is None:
        if resources.is_empty():
            return None  # the core's "none" manager takes the container
        raise UsageError(why)
    cls.validate(host, resources)
    return cls.name


@hookimpl
def pyrt_resources_apply(container_id: str, pid: int, resources: Resources,
                         cgroups_path: str | None, self_join: bool) -> dict[str, object] | None:
    from pyrt_core.errors import UsageError

    from .cgfs import procs
    from .base import resolve_path

    host, cls, why = _select()
    if cls is None:
        if resources.is_empty():
            return None
        raise UsageError(why)
    cls.validate(host, resources)
    m = cls(host, resolve_path(cgroups_path, f"pyrt-{container_id}"))
    busy = [d for d in m.dirs() if procs(m.fs, d)]
    if busy:
        raise UsageError(f"cgroup {m.path} already holds processes ({busy[0]})")
    joins_itself = m.apply(pid, resources, self_join=self_join)
    record = m.record()
    if joins_itself:
        record["self_join"] = True
    return record


@hookimpl
def pyrt_resources_join(container_id: str, record: dict[str, object] | None) -> bool | None:
    if record is None or record.get("manager") not in _MINE:
        return None
    from .manager import from_record

    from_record(record).join_self()
    return True


@hookimpl
def pyrt_resources_release(container_id: str, record: dict[str, object] | None) -> bool | None:
    if record is None or record.get("manager") not in _MINE:
        return None
    from .release import release

    return release(container_id, record)


# -- record-based operations (for the lifecycle hooks to come) ---------------------------------


def _manager(record: dict[str, object] | None):
    if record is None or record.get("manager") not in _MINE:
        return None
    from .manager import from_record

    return from_record(record)


def oom_killed(record: dict[str, object] | None) -> bool | None:
    """Whether the kernel OOM-killed a process of the container whose state
    ``record`` is given (``memory.oom_control``/``memory.events`` ``oom_kill``).

    Call it after the container's init was reaped and *before*
    ``pyrt_resources_release`` (which removes the cgroup and its counters).
    ``None`` when the record is not this plugin's.
    """
    m = _manager(record)
    if m is None:
        return None
    try:
        return m.oom_kill_count() > 0
    except Exception:
        return False


def stats(record: dict[str, object] | None) -> dict[str, dict[str, object]] | None:
    """Usage figures of the container's cgroup (see :meth:`pyrt_cgroups.api.Cgroup.stats`)."""
    m = _manager(record)
    return None if m is None else m.stats()


def freeze(record: dict[str, object] | None, timeout: float = 10.0) -> bool | None:
    """Pause: freeze the container's cgroup."""
    m = _manager(record)
    if m is None:
        return None
    m.freeze(timeout)
    return True


def thaw(record: dict[str, object] | None, timeout: float = 10.0) -> bool | None:
    """Unpause: thaw the container's cgroup."""
    m = _manager(record)
    if m is None:
        return None
    m.thaw(timeout)
    return True


def update(record: dict[str, object] | None, resources: Resources) -> bool | None:
    """Change a running container's limits (``pyrt update``): validated, then written."""
    m = _manager(record)
    if m is None:
        return None
    type(m).validate(m.host, resources)
    m.set(resources)
    return True


@hookimpl
def pyrt_resources_oom_killed(container_id: str, record: dict[str, object] | None) -> bool | None:
    return oom_killed(record)


@hookimpl
def pyrt_resources_freeze(container_id: str, record: dict[str, object] | None,
                          frozen: bool) -> bool | None:
    return freeze(record) if frozen else thaw(record)


@hookimpl
def pyrt_resources_stats(container_id: str, record: dict[str, object] | None,
                         ) -> dict[str, dict[str, object]] | None:
    return stats(record)


@hookimpl
def pyrt_resources_update(container_id: str, record: dict[str, object] | None,
                          resources: Resources) -> bool | None:
    return update(record, resources)
