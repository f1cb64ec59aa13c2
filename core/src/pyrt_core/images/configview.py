"""An image's config read without the image store, for the engine's hot commands.

``pyrt ps`` shows each container's command (the image's entrypoint and cmd under the
container's own), ``stop`` sends the image's ``StopSignal`` and ``inspect`` merges the
image's settings into a container's ``Config``: building the image store for that
imports json, typing and the models (:mod:`pyrt_core.images.store`) and the plugin
manager (the storage driver), ten times the rest of those commands' work.
:func:`image_config` reads the one image's config object from the index file
(``images/images.json``, as the store writes it: ``{"images": {id: {..., "config": OCI
config}}}``) with :mod:`pyrt_core.jsonlean`, and gives its fields as
:class:`pyrt_core.models.ImageConfig` names them.  Every other reader goes through
``ImageStore``.

Keep this module free of imports beyond fsutil (see docs/architecture.md, "The hot path").
"""
from __future__ import annotations

import os


class ImageConfigView:
    """An image's OCI config as :class:`pyrt_core.models.ImageConfig` gives it (``from_oci``;
    tests/unit/test_inspect_view.py compares them): ``entrypoint``, ``cmd``, ``env``,
    ``working_dir``, ``user``, ``exposed_ports``, ``volumes``, ``stop_signal``, ``labels``
    (an image that is gone reads as an empty config, as ``ImageConfig()``)."""

    __slots__ = ("entrypoint", "cmd", "env", "working_dir", "user", "exposed_ports", "volumes",
                 "stop_signal", "labels")

    def __init__(self, oci: dict | None = None):
        oci = oci if isinstance(oci, dict) else {}
        self.entrypoint = _str_slice(oci.get("Entrypoint"))
        self.cmd = _str_slice(oci.get("Cmd"))
        self.env = list(oci.get("Env") or [])
        self.working_dir = oci.get("WorkingDir") or ""
        self.user = oci.get("User") or ""
        self.exposed_ports = sorted(oci.get("ExposedPorts") or {})
        self.volumes = sorted(oci.get("Volumes") or {})
        labels = oci.get("Labels")
        self.labels = dict(labels) if isinstance(labels, dict) else {}
        self.stop_signal = oci.get("StopSignal")


def _str_slice(v):
    """docker's StrSlice (as ``ImageConfig.from_oci``): a string stands for a list of one."""
    if isinstance(v, str):
        return [v]
    return list(v) if isinstance(v, list) else None


def image_config(root: str, image_id: str) -> ImageConfigView:
    """The config of the image whose full id is ``image_id`` in the store under ``root``
    (an empty one when the image is not there or the index cannot be read)."""
    from ..fsutil import read_json

    try:
        data = read_json(os.path.join(root, "images", "images.json"), None)
    except (OSError, ValueError):
        data = None
    images = data.get("images") if isinstance(data, dict) else None
    image = images.get(image_id) if isinstance(images, dict) else None
    return ImageConfigView(image.get("config") if isinstance(image, dict) else None)
