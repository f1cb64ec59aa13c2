"""Media types of image documents (the OCI image spec and Docker's schema 2), and
the index annotations that name an image.

``load``, ``save``, ``pull`` and ``push`` accept and write exactly these; schema 1
(:data:`SCHEMA1`) is recognised only to be refused with a clear message.
"""
from __future__ import annotations

__all__ = [
    "OCI_INDEX", "OCI_MANIFEST", "DOCKER_LIST", "DOCKER_MANIFEST", "SCHEMA1", "INDEX_TYPES",
    "MANIFEST_TYPES", "CONFIG_TYPES", "LAYER_TYPES", "REF_NAME", "CONTAINERD_NAME", "media_type",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def media_type(desc, doc) -> str | None:
    """The media type of a manifest-like document: its descriptor's ``mediaType``,
    else the document's own, else guessed from its shape (a ``manifests`` list is an
    OCI index; ``config`` and ``layers`` an OCI manifest); None when none of these."""
    mt = desc.get("mediaType") if isinstance(desc, dict) else None
    if not mt and isinstance(doc, dict):
        mt = doc.get("mediaType")
    if not mt and isinstance(doc, dict):
        if isinstance(doc.get("manifests"), list):
            mt = OCI_INDEX
        elif "config" in doc and "layers" in doc:
            mt = OCI_MANIFEST
    return mt
