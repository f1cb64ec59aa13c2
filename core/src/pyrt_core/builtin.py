"""The core's built-in plugin, registered like any other.

* image fetch for local archive transports (``oci:DIR``,
  ``oci-archive:FILE``, ``docker-archive:FILE``);
* the ``local`` volume driver (:mod:`pyrt_core.volumes.local`);
* the ``none`` resource manager, used when no resource-control plugin
  takes part: it accepts a container with no limits and refuses any limit
  with a message naming the plugin to install.  Device rules are a limit too
  (engines always send "deny all, allow these"): without a device cgroup a
  container with CAP_MKNOD opens any host device.  So the ``none`` manager
  refuses a container whose rules deny some device, unless the operator chose
  to run without cgroups (:func:`pyrt_core.device_rules.check_device_rules`,
  which the runtime's executor applies too): a cache that left the resource
  plugin out, or a plugin that failed to load, cannot make containers lose
  their device rules silently.  runc errors when it cannot apply
  device rules too; crun refuses restricting rules with its cgroups disabled.
"""
from __future__ import annotations

from .errors import UsageError
from .hookspecs import hookimpl
from .device_rules import check_device_rules

#: True for type checkers only: the hooks' annotations name these types (the models, the image
#: store), which the runtime's hot path must not import
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .images.store import ImageStore
    from .models import FetchOptions, Image, ImageReference
    from .runtime.config import Resources


@hookimpl
def pyrt_info() -> dict[str, dict[str, object]] | None:
    from . import __version__

    return {"core": {"version": __version__}}


@hookimpl(trylast=True)
def pyrt_image_fetch(reference: ImageReference, store: ImageStore,
                     options: FetchOptions) -> Image | None:
    if reference.transport == "registry":
        return None
    from .images.load import load_archive

    images = load_archive(reference.repository, store)
    return images[0] if images else None


@hookimpl(trylast=True)
def pyrt_resources_validate(resources: Resources) -> str | None:
    if not resources.is_empty():
        raise UsageError(
            "resource limits need a resource-control plugin; install pyrt-cgroups "
            "(no plugin implements pyrt_resources_apply)"
        )
    check_device_rules(resources)
    return "none"


@hookimpl(trylast=True)
def pyrt_resources_apply(container_id: str, pid: int, resources: Resources,
                         cgroups_path: str | None) -> dict[str, object] | None:
    return {"manager": "none"}


@hookimpl(trylast=True)
def pyrt_resources_oom_killed(container_id: str, record: dict[str, object] | None) -> bool | None:
    if (record or {}).get("manager", "none") == "none":
        return False
    return None


def _none_manager(record: dict[str, object] | None) -> bool:
    return (record or {}).get("manager", "none") == "none"


@hookimpl(trylast=True)
def pyrt_resources_freeze(container_id: str, record: dict[str, object] | None,
                          frozen: bool) -> bool | None:
    if _none_manager(record):
        raise UsageError("pause and unpause need a resource-control plugin (install pyrt-cgroups); "
                         "this container runs without one")
    return None


@hookimpl(trylast=True)
def pyrt_resources_stats(container_id: str, record: dict[str, object] | None,
                         ) -> dict[str, dict[str, object]] | None:
    return {} if _none_manager(record) else None


@hookimpl(trylast=True)
def pyrt_resources_update(container_id: str, record: dict[str, object] | None,
                          resources: Resources) -> bool | None:
    if _none_manager(record):
        raise UsageError("update needs a resource-control plugin (install pyrt-cgroups); "
                         "this container runs without one")
    return None


@hookimpl(trylast=True)
def pyrt_resources_release(container_id: str, record: dict[str, object] | None) -> bool | None:
    if (record or {}).get("manager", "none") == "none":
        return True
    return None


# -- the ``local`` volume driver (pyrt_core.volumes.local, imported when called) ---------


@hookimpl
def pyrt_volume_drivers() -> list[str] | None:
    return ["local"]


@hookimpl
def pyrt_volume_capabilities(driver: str) -> dict[str, Any] | None:
    return {"Scope": "local"} if driver == "local" else None


@hookimpl
def pyrt_volume_create(driver: str, name: str, options: dict[str, str],
                       root: str) -> dict[str, Any] | None:
    if driver != "local":
        return None
    from .volumes import local

    return local.create(root, name, options)


@hookimpl
def pyrt_volume_remove(driver: str, name: str, root: str) -> bool | None:
    if driver != "local":
        return None
    from .volumes import local

    return local.remove(root, name)


@hookimpl
def pyrt_volume_mount(driver: str, name: str, container_id: str, root: str) -> str | None:
    if driver != "local":
        return None
    from .volumes import local

    return local.mount(root, name, container_id)


@hookimpl
def pyrt_volume_unmount(driver: str, name: str, container_id: str, root: str) -> bool | None:
    if driver != "local":
        return None
    from .volumes import local

    return local.unmount(root, name, container_id)


@hookimpl
def pyrt_volume_path(driver: str, name: str, root: str) -> str | None:
    if driver != "local":
        return None
    from .volumes import local

    return local.data_path(root, name)


@hookimpl
def pyrt_volume_get(driver: str, name: str, root: str) -> dict[str, Any] | None:
    if driver != "local":
        return None
    from .volumes import local

    return local.get(root, name)


@hookimpl
def pyrt_volume_list(driver: str, root: str) -> list[dict[str, Any]] | None:
    if driver != "local":
        return None
    from .volumes import local

    return [{"Name": n, "Mountpoint": local.data_path(root, n)} for n in local.names(root)]
