"""Build a container's root inside its new mount namespace, in runc's order.

:func:`prepare` runs with the working directory at the root filesystem: make the
mount tree private, bind the root onto itself, mount the config's mounts in order,
create devices and the /dev symlinks, pivot_root.  :func:`finalize` runs after
hostname and sysctls: read-only paths, masked paths, read-only root.
"""
from __future__ import annotations

from typing import NamedTuple

from .channel import stage
from . import mounts


class RootfsPlan(NamedTuple):
    mounts: list            # [mounts.PreparedMount]
    devices: list           # [(Device, detached mount of the host's node, or None)]
    dev_symlinks: bool      # a /dev mount was configured: add fd, stdin, ..., core
    ptmx_symlink: bool      # a /dev/pts mount was configured
    core_symlink: bool      # the host has /proc/kcore
    in_userns: bool
    own_cgroupns: bool
    masked_paths: list
    readonly_paths: list
    root_readonly: bool
    rootfs_propagation: int

    @property
    def wants_cgroup_mount(self) -> bool:
        return any(pm.mount.type == "cgroup" and not pm.mount.is_bind for pm in self.mounts)


def prepare(plan: RootfsPlan, hierarchies=()) -> None:
    """Everything up to and including pivot_root; the working directory is the rootfs."""
    with stage("making the mount tree private"):
        mounts.make_private("/")
    with stage("binding the root filesystem onto itself"):
        mounts.bind_cwd_onto_itself()
    for pm in plan.mounts:
        with stage(f"mounting {pm.mount.destination}"):
            mounts.mount_entry(".", pm, in_userns=plan.in_userns, hierarchies=hierarchies,
                               own_cgroupns=plan.own_cgroupns)
    for dev, host_fd in plan.devices:
        with stage(f"creating device {dev.path}"):
            mounts.make_device(".", dev, host_fd)
    if plan.dev_symlinks:
        with stage("creating /dev symlinks"):
            mounts.dev_symlinks(".", ptmx=plan.ptmx_symlink, core=plan.core_symlink)
    with stage("pivot_root into the root filesystem"):
        mounts.pivot_to_cwd()
    if plan.rootfs_propagation:
        with stage("setting the root's propagation"):
            mounts.propagation("/", plan.rootfs_propagation, "/")


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
