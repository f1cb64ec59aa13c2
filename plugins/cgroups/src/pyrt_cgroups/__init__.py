"""pyrt-cgroups: resource control with Linux cgroups, v1 (and hybrid) or v2.

Two faces:

* a pyrt plugin (:mod:`pyrt_cgroups.plugin`) implementing the
  ``pyrt_resources_*`` hooks for containers;
* a standalone Python API (:mod:`pyrt_cgroups.api`, re-exported here) that
  creates a cgroup with limits, places any process in it, reads its
  statistics and removes it; no namespaces or containers involved.

Importing this package is cheap: the API is loaded on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Cgroup", "CgroupError", "Resources"]


def __getattr__(name):
    if name == "Cgroup":
        from .api import Cgroup

        return Cgroup
    if name == "CgroupError":
        from .errors import CgroupError

        return CgroupError
    if name == "Resources":
        from pyrt_core.api import Resources

        return Resources
    raise AttributeError(name)
