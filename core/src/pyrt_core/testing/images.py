"""Session-scoped fixtures with real test images (built once per session with
umoci and skopeo, see ``pyrt_core.testing.imagebuilder``).

Use them from a test module with ``from pyrt_core.testing.images import *``, or
for a whole suite with ``pytest_plugins = ["pyrt_core.testing.images"]`` in its
top-level ``conftest.py``.

The built files are shared by every test of the session: copy them before
damaging them (``copy_image_dir``/``shutil.copy``).

Every fixture skips when umoci, skopeo or busybox is missing.
"""
from __future__ import annotations

import os
import shutil

import pytest

from pyrt_core.testing import imagebuilder as ib

__all__ = [
    "image_tools", "images_dir", "busybox_oci_layout", "busybox_oci_archive",
    "busybox_docker_archive", "busybox_zstd_oci_archive", "busybox_zstd_oci_layout",
    "layered_oci_layout", "layered_docker_archive", "shared_base_layout",
    "synthetic_oci_layout", "copy_image_dir",
]


@pytest.fixture(scope="session")
def image_tools():
    missing = ib.missing_tools()
    if missing:
        pytest.skip("image tools missing: " + ", ".join(missing))
    return ib


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory, image_tools):
    """A session directory for built images."""
    return str(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def busybox_oci_layout(images_dir):
    """``(layout_dir, "latest")``: a one-layer busybox image (gzip), Cmd /bin/sh."""
    layout = os.path.join(images_dir, "busybox-oci")
    rootfs = ib.busybox_rootfs(os.path.join(images_dir, "rootfs-busybox"))
    ib.build_oci_layout(layout, rootfs, tag="latest")
    return layout, "latest"


@pytest.fixture(scope="session")
def busybox_oci_archive(images_dir, busybox_oci_layout):
    """An oci-archive tar of the busybox image (index ref.name "latest")."""
    layout, tag = busybox_oci_layout
    return ib.to_oci_archive(layout, tag, os.path.join(images_dir, "busybox-oci.tar"), ref="latest")


@pytest.fixture(scope="session")
def busybox_docker_archive(images_dir, busybox_oci_layout):
    """A docker-archive tar of the busybox image named busybox:latest
    (skopeo records it as docker.io/library/busybox:latest)."""
    layout, tag = busybox_oci_layout
    return ib.to_docker_archive(layout, tag, os.path.join(images_dir, "busybox-docker.tar"),
                                "busybox:latest")


@pytest.fixture(scope="session")
def busybox_zstd_oci_archive(images_dir, busybox_oci_layout):
    """An oci-archive tar of the busybox image with zstd layers."""
    layout, tag = busybox_oci_layout
    return ib.to_oci_archive(layout, tag, os.path.join(images_dir, "busybox-zstd.tar"),
                             compress="zstd", ref="latest")


@pytest.fixture(scope="session")
def busybox_zstd_oci_layout(images_dir, busybox_oci_layout):
    """``(layout_dir, "latest")``: the busybox image as an OCI layout with zstd layers."""
    layout, tag = busybox_oci_layout
    dest = os.path.join(images_dir, "busybox-zstd-oci")
    ib.to_oci_dir(layout, tag, dest, compress="zstd", ref="latest")
    return dest, "latest"


@pytest.fixture(scope="session")
def layered_oci_layout(images_dir):
    """``(layout_dir, "layered")``: 4 layers on busybox with a whiteout
    (``/data/gone.txt`` deleted), an opaque ``/opq`` (only ``fresh.txt``
    left), a hardlink ``/links/hard`` to ``/links/target.txt``, symlinks
    ``/links/sym`` (relative) and ``/links/abs`` (-> /etc/passwd), a
    setuid ``/data/keep.txt``."""
    layout = os.path.join(images_dir, "layered-oci")
    ib.build_layered_layout(layout, images_dir, tag="layered")
    return layout, "layered"


@pytest.fixture(scope="session")
def layered_docker_archive(images_dir, layered_oci_layout):
    layout, tag = layered_oci_layout
    return ib.to_docker_archive(layout, tag, os.path.join(images_dir, "layered-docker.tar"),
                                "layered:latest")


@pytest.fixture(scope="session")
def shared_base_layout(images_dir):
    """``(layout_dir, "base", "child")``: two images in one layout; "child"
    is "base" plus one layer (so they share the busybox base layer)."""
    layout = os.path.join(images_dir, "shared-oci")
    rootfs = ib.busybox_rootfs(os.path.join(images_dir, "rootfs-shared"))
    ib.build_oci_layout(layout, rootfs, tag="base")

    def add(r):
        with open(os.path.join(r, "etc/child"), "w") as f:
            f.write("child\n")

    ib.build_oci_layout(layout, None, tag="child", base_tag="base", extra_layers=[add],
                        cmd=("/bin/cat", "/etc/child"))
    return layout, "base", "child"


@pytest.fixture(scope="session")
def synthetic_oci_layout(images_dir):
    """An OCI layout (ref "latest") of about 50 MB in 5 gzip layers, 2000 small files."""
    return ib.build_synthetic_layout(os.path.join(images_dir, "synthetic-oci"))


def copy_image_dir(src: str, dest: str) -> str:
    """A private copy of a built layout, to damage in a test."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
