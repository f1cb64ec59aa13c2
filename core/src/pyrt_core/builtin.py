"""The core's built-in plugin, registered like any other.

* image fetch for local archive transports (``oci:DIR``,
  ``oci-archive:FILE``, ``docker-archive:FILE``);
* the ``none`` resource manager, used when no resource-control plugin
  takes part: it accepts a container with no limits and refuses any limit
  with a message naming the plugin to install.
"""
from __future__ import annotations

from .errors import UsageError
from .hookspecs import hookimpl


@hookimpl
def pyrt_info():
    from . import __version__

    return {"core": {"version": __version__}}


@hookimpl(trylast=True)
def pyrt_image_fetch(reference, store, options):
    if reference.transport == "registry":
        return None
    from .images.load import load_archive

    images = load_archive(reference.repository, store)
    return images[0] if images else None


@hookimpl(trylast=True)
def pyrt_resources_validate(resources):
    if not resources.is_empty():
        raise UsageError(
            "resource limits need a resource-control plugin; install pyrt-cgroups "
            "(no plugin implements pyrt_resources_apply)"
        )
    return "none"


@hookimpl(trylast=True)
def pyrt_resources_apply(container_id, pid, resources, cgroups_path):
    return {"manager": "none"}


@hookimpl(trylast=True)
def pyrt_resources_oom_killed(container_id, record):
    if (record or {}).get("manager", "none") == "none":
        return False
    return None


def _none_manager(record) -> bool:
    return (record or {}).get("manager", "none") == "none"


@hookimpl(trylast=True)
def pyrt_resources_freeze(container_id, record, frozen):
    if _none_manager(record):
        raise UsageError("pause and unpause need a resource-control plugin (install pyrt-cgroups); "
                         "this container runs without one")
    return None


@hookimpl(trylast=True)
def pyrt_resources_stats(container_id, record):
    return {} if _none_manager(record) else None


@hookimpl(trylast=True)
def pyrt_resources_update(container_id, record, resources):
    if _none_manager(record):
        raise UsageError("update needs a resource-control plugin (install pyrt-cgroups); "
                         "this container runs without one")
    return None


@hookimpl(trylast=True)
def pyrt_resources_release(container_id, record):
    if (record or {}).get("manager", "none") == "none":
        return True
    return None
