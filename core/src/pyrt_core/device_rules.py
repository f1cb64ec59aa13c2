"""Device rules nothing enforces: the refusal shared by the core's ``none`` resource
manager (:mod:`pyrt_core.builtin`, at validation) and the runtime's executor (once
the container is placed and no manager applied them).

Device rules are a limit too (engines always send "deny all, allow these"): without
a device cgroup a container with CAP_MKNOD opens any host device.  So a container
whose rules deny some device is refused unless the operator chose to run without
cgroups (``PYRT_CGROUP_MANAGER=none`` or ``[cgroups] manager = "none"``, which the
engine exports): a cache that left the resource plugin out, or a plugin that failed
to load, cannot make containers lose their device rules silently.

It lives at the bottom of the core, below both: the runtime must not import the
plugin module (which fetches images too, a layer the runtime does not depend on),
and the plugin sits above the runtime (``.importlinter``).  Lean: ``os`` and the
core's errors, for the runtime's hot path.
"""
from __future__ import annotations

import os

from .errors import UsageError

#: True for type checkers only (importing typing would cost the runtime's hot path)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .runtime.config import Resources

#: the operator's choice of cgroup manager (the resource plugin's setting, which
#: ``pyrt_core.config`` reads from the config file and the engine exports)
CGROUP_MANAGER_ENV = "PYRT_CGROUP_MANAGER"


def no_cgroups_chosen() -> bool:
    """Whether the operator explicitly chose to run containers without cgroups."""
    return os.environ.get(CGROUP_MANAGER_ENV, "").strip() == "none"


def unenforced_devices_warning(container_id: str) -> str:
    return (f"warning: container {container_id} runs without a device cgroup: its device "
            f"rules are not enforced (cgroup manager \"none\" chosen by {CGROUP_MANAGER_ENV} "
            "or [cgroups] manager)")


def check_device_rules(resources: Resources) -> None:
    """Refuse ``resources`` whose device rules nothing will enforce (the ``none``
    manager takes them), unless the operator chose no cgroups (:func:`no_cgroups_chosen`)."""
    if resources.restricts_devices() and not no_cgroups_chosen():
        raise UsageError(
            "refusing to run the container without its device cgroup: no resource manager "
            "applies its device rules (is pyrt-cgroups installed and enabled?); to run "
            f"without cgroups deliberately set {CGROUP_MANAGER_ENV}=none or [cgroups] "
            "manager = \"none\"")
