"""Hook implementations: fetch (pull) and push for registry references."""
from __future__ import annotations

from pyrt_core.hookspecs import hookimpl


@hookimpl
def pyrt_info():
    return {"image_registry": {"transports": ["registry"], "push": True,
                               "compression": ["gzip", "zstd", "none"]}}


@hookimpl
def pyrt_image_fetch(reference, store, options):
    if reference.transport != "registry":
        return None
    from .options import from_settings
    from .progress import Progress, for_settings
    from .pull import pull

    settings = dict(getattr(options, "settings", None) or {})
    opts = from_settings(settings)
    progress = Progress("quiet") if getattr(options, "quiet", False) else for_settings(settings)
    return pull(reference, store, opts, platform=getattr(options, "platform", None),
                progress=progress, stats=settings.get("stats"))


@hookimpl
def pyrt_image_push(image, reference, store, options):
    if reference.transport != "registry":
        return None
    from .options import from_settings
    from .progress import Progress, for_settings
    from .push import push

    settings = dict(getattr(options, "settings", None) or {})
    opts = from_settings(settings)
    progress = Progress("quiet") if getattr(options, "quiet", False) else for_settings(settings)
    return push(image, reference, store, opts, progress=progress, settings=settings)
