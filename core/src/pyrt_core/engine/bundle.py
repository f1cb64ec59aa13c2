"""Mount a container's root filesystem, give it its network (engine.network), and write
its OCI bundle (``config.json``, ``hostname``, ``hosts``, ``resolv.conf``): what both a
foreground run and a start under conmon do before the runtime creates the container."""
from __future__ import annotations

import os

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..models import Container, Image


def mount_and_write_bundle(engine, container: Container, image: Image, load: bool = True):
    """Mount the root (the driver's ``get``), fire ``pyrt_storage_rootfs_mounted``, write
    the bundle.  With ``load``, returns the runtime's configuration of it (a foreground
    run executes that in this process); else None (pyrt-runtime reads the bundle)."""
    from ..containers import spec as specmod
    from ..fsutil import atomic_write
    from ..images.configcheck import check_image

    check_image(image)

    with engine.storage_lock():
        rootfs = engine.driver.get(container.layer_id)
    engine.pm.hook.pyrt_storage_rootfs_mounted(container=container, rootfs=rootfs)
    bundle = engine.containers.bundle_dir(container.id)
    os.makedirs(bundle, mode=0o700, exist_ok=True)  # root's only: config.json holds the env
    hostname = container.config.hostname or container.id[:12]
    if container.config.uts_mode == "host":  # docker: the host's name in /etc/hostname
        hostname = os.uname().nodename
    from .network import networking_dict, prepare

    # the network first: /etc/hosts and resolv.conf are written from its record
    netns_path = prepare(engine, container)
    specmod.write_bundle_files(bundle, hostname, networking_dict(container.config),
                               container.state.network)
    if networking_dict(container.config).get("mode") == "container":
        from .network import share_files

        share_files(engine, container, bundle)  # the joined container's hosts, resolv.conf
    from .volumes import mount_volumes

    sources = mount_volumes(engine, container, rootfs)  # released by teardown.cleanup_locked
    if container.config.init:  # a copy of the init's contents, never the host's inode
        from ..containers.init import copy_into

        copy_into(bundle, container.config.init_path)
    from .namespaces import mount_shm, paths as namespace_paths

    mount_shm(engine, container, bundle)  # --ipc shareable: a tmpfs joiners bind too

    spec = specmod.build_spec(container, image, rootfs, bundle, sources, netns=netns_path,
                              joined=namespace_paths(engine, container))
    if "seccomp" in spec["linux"]:  # compiled filters are cached per runroot
        from ..runtime.config import SECCOMP_CACHE_ANNOTATION

        spec["annotations"][SECCOMP_CACHE_ANNOTATION] = os.path.join(engine.settings.runroot,
                                                                     "seccomp")
    ensure_workdir(rootfs, spec["process"]["cwd"], spec["process"]["user"])
    from ..containers.store import RECORD_MODE

    # it holds the -e values: root's only (and so is the bundle directory)
    from ..jsonlean import dumps_indented, loads  # json's, without its import (run's path)

    text = dumps_indented(spec, indent=1)
    atomic_write(os.path.join(bundle, "config.json"), text, RECORD_MODE, durable=False)
    if not load:
        return None
    from ..runtime.spec import from_spec

    # what pyrt-runtime reads from config.json, without reading it back
    return from_spec(loads(text), container.id, bundle)


def ensure_workdir(rootfs: str, cwd: str, user: dict) -> None:
    """Create the working directory in the rootfs if missing, as docker does: resolved
    inside the rootfs (containers.inroot), owned by the container's user.  A path that
    cannot be made is left to the runtime, which reports the missing directory."""
    if cwd == "/":
        return
    from ..containers.inroot import make_dirs

    try:
        make_dirs(rootfs, cwd, user.get("uid", 0), user.get("gid", 0))
    except OSError:
        pass
