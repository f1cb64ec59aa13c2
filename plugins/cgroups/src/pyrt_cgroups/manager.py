"""Choosing a cgroup manager: for a host, by name, or from a container's record.

:func:`select` picks the implementation for a host, or the one named by
``PYRT_CGROUP_MANAGER`` (``cgroupfs-v1``, ``cgroupfs-v2``, ``none`` or ``auto``;
the config file's ``[cgroups] manager`` reaches it through that variable, see
:mod:`pyrt_cgroups.settings`); :func:`from_record` rebuilds the manager a state
record describes.  The implementations (:mod:`.v1`, :mod:`.v2`) are imported only
when chosen; they build on :mod:`.base` and never import this module.
"""
from __future__ import annotations

import os

from pyrt_core.errors import UsageError

from . import detect
from .base import Manager
from .cgfs import CgroupFS
from .errors import CgroupError
from .settings import ENV_MANAGER

MANAGER_NAMES = ("cgroupfs-v1", "cgroupfs-v2")


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
