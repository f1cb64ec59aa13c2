"""Build a container's root inside its new mount namespace, in runc's order.

:func:`prepare` runs with the working directory at the root filesystem: make the
mount tree rslave, bind the root onto itself, mount the config's mounts in order,
create devices and the /dev symlinks.  Then (after the createRuntime and
createContainer hooks) :func:`enter` does pivot_root (or MS_MOVE + chroot).
:func:`finalize` runs after hostname and sysctls: read-only paths, masked paths,
read-only root.
"""
from __future__ import annotations

import os

from pyrt_core.api import TupleRecord

from .channel import stage
from . import mounts


class RootfsPlan(TupleRecord):
    mounts: list            # [mounts.PreparedMount]
    devices: list           # [(Device, detached mount of the host's node, or None)]
    dev_symlinks: bool      # /dev is not a bind mount: add fd, stdin, ..., core, ptmx
    ptmx_symlink: bool      # /dev/ptmx -> pts/ptmx
    core_symlink: bool      # the host has /proc/kcore
    in_userns: bool
    own_cgroupns: bool
    masked_paths: list
    readonly_paths: list
    root_readonly: bool
    rootfs_propagation: int
    no_pivot: bool = False  # MS_MOVE the root onto / and chroot instead of pivot_root

    @property
    def wants_cgroup_mount(self) -> bool:
        return any(pm.mount.type == "cgroup" and not pm.mount.is_bind for pm in self.mounts)


def prepare(plan: RootfsPlan, hierarchies=()) -> None:
    """Everything before pivot_root; the working directory is the rootfs.

    As runc: the mount tree becomes rslave (or the configured root
    propagation), the rootfs's parent mount private (pivot_root and MS_MOVE
    refuse a shared parent), the rootfs is bound onto itself, then the
    config's mounts, the devices and the /dev symlinks.
    """
    with stage("setting the propagation of the mount tree"):
        mounts.tree_propagation("/", plan.rootfs_propagation or mounts.ROOT_DEFAULT_PROPAGATION)
    with stage("making the root filesystem's parent mount private"):
        mounts.make_parent_private(".")
    with stage("binding the root filesystem onto itself"):
        mounts.bind_cwd_onto_itself()
    root_fd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for pm in plan.mounts:
            with stage(f"mounting {pm.mount.destination}"):
                mounts.mount_entry(root_fd, pm, in_userns=plan.in_userns,
                                   hierarchies=hierarchies, own_cgroupns=plan.own_cgroupns)
        for dev, host_fd in plan.devices:
            with stage(f"creating device {dev.path}"):
                mounts.make_device(root_fd, dev, host_fd)
        if plan.dev_symlinks:
            with stage("creating /dev symlinks"):
                mounts.dev_symlinks(root_fd, ptmx=plan.ptmx_symlink, core=plan.core_symlink)
    finally:
        os.close(root_fd)


def enter(plan: RootfsPlan) -> None:
    """Make the working directory the root (pivot_root, or MS_MOVE and chroot)."""
    if plan.no_pivot:
        with stage("moving the root filesystem onto / (no pivot_root)"):
            mounts.move_cwd_to_root()
    else:
        with stage("pivot_root into the root filesystem"):
            mounts.pivot_to_cwd()
    if plan.rootfs_propagation:
        with stage("setting the root's propagation"):
            mounts.tree_propagation("/", plan.rootfs_propagation)


def finalize(plan: RootfsPlan) -> None:
    """Read-only paths, masked paths, read-only root (container paths, after pivot)."""
    for path in plan.readonly_paths:
        with stage(f"making {path} read-only"):
            mounts.make_readonly(path)
    for path in plan.masked_paths:
        with stage(f"masking {path}"):
            mounts.mask(path)
    if plan.root_readonly:
        with stage("making the root read-only"):
            mounts.root_readonly()
