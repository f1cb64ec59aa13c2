"""Image names: normalising them (``busybox`` is ``busybox:latest``) and the key
under which names docker treats as the same image compare equal.
"""
from __future__ import annotations

from ..errors import PyrtError, UsageError
from ..models import Image, ImageReference

__all__ = ["normalize_name", "name_key", "name_priority", "assign_name"]

_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def normalize_name(name: str) -> str:
    """``busybox`` -> ``busybox:latest``; registry kept as written.  Digests refused."""
    try:
        ref = ImageReference.parse(name)
    except UsageError as e:
        raise UsageError(str(e)) from None
    if ref.transport != "registry":
        raise UsageError(f"invalid image name {name!r}")
    if ref.digest:
        raise UsageError(f"invalid image name {name!r}: a name cannot carry a digest")
    return str(ref)


def name_key(name: str):
    """A key under which ``busybox``, ``docker.io/library/busybox`` and
    ``localhost/busybox`` compare equal (tag defaulting to latest)."""
    try:
        ref = ImageReference.parse(name)
    except PyrtError:
        return None
    if ref.transport != "registry":
        return None
    reg, repo = ref.registry, ref.repository
    if reg in _HUB and repo.startswith("library/") and repo.count("/") == 1:
        repo = repo[len("library/"):]
    if reg in _HUB or reg == "localhost":
        reg = None
    return (reg, repo, ref.tag, ref.digest)


def name_priority(name: str) -> int:
    """Among names with the same :func:`name_key`, the one a lookup prefers (lowest)."""
    if name.startswith("localhost/"):
        return 1
    if name.startswith(_HUB):
        return 2
    return 0


def assign_name(images: dict[str, Image], iid: str, name: str) -> None:
    """Give ``name`` to image ``iid`` of ``images``, taking it from any other image."""
    for other in images.values():
        if other.id != iid and name in other.names:
            other.names.remove(name)
    if name not in images[iid].names:
        images[iid].names.append(name)
