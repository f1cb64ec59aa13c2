"""Hook implementations: fetch (pull) and push for registry references."""
from __future__ import annotations

from pyrt_core.hookspecs import hookimpl

#: True for type checkers only: the annotations' types are not imported at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt_core.api import FetchOptions, Image, ImageReference, ImageStore


@hookimpl
def pyrt_info() -> dict[str, dict[str, object]] | None:
    return {"image_registry": {"transports": ["registry"], "push": True,
                               "compression": ["gzip", "zstd", "none"]}}


@hookimpl
def pyrt_image_fetch(reference: ImageReference, store: ImageStore,
                     options: FetchOptions) -> Image | None:
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
def pyrt_image_push(image: Image, reference: ImageReference, store: ImageStore,
                    options: FetchOptions) -> str | None:
    if reference.transport != "registry":
        return None
    from .options import from_settings
    from .progress import Progress, for_settings
    from .push import push

    settings = dict(getattr(options, "settings", None) or {})
    opts = from_settings(settings)
    progress = Progress("quiet") if getattr(options, "quiet", False) else for_settings(settings)
    return push(image, reference, store, opts, progress=progress, settings=settings)
