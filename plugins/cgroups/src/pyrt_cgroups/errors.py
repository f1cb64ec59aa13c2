"""The one error type cgroup operations raise."""
from __future__ import annotations

from pyrt_core.errors import RuntimeError_


class CgroupError(RuntimeError_):
    """A cgroup could not be created, configured, read or removed."""
