"""``--ipc/--pid/--uts/--cgroupns container:NAME``: joining another container's
namespaces.

:func:`check` (create) resolves NAME to the id of a container of the same store and
refuses one that does not run (docker's rule: only a running container has
namespaces to join; for ``--ipc``, only a ``shareable`` one, as docker's default
``private`` IPC mode is not joinable).  :func:`paths` (each start) gives the runtime
the namespace files of that container's init, ``/proc/PID/ns/TYPE``, after checking
again that it runs and that the pid is still its init's (procutil.alive: start time
and boot), so a pid reused by another process is never joined.

POSIX shared memory lives in /dev/shm, not in the IPC namespace: as docker does, a
``shareable`` container's /dev/shm is a tmpfs mounted on the host in its bundle
(:func:`mount_shm`, unmounted by teardown.cleanup_locked), and a container joining its
IPC namespace binds that same tmpfs (``paths()["/dev/shm"]``); one joining a ``--ipc
host`` container binds the host's /dev/shm, as ``--ipc host`` does.
"""
from __future__ import annotations

import os

from ..errors import NotFoundError, UsageError

#: the bundle's mount point of a ``shareable`` container's /dev/shm (docker's ShmPath)
SHM_NAME = "shm"

#: docker's default /dev/shm size (64 MiB)
DEFAULT_SHM_SIZE = 64 << 20

#: ContainerConfig field -> (flag, OCI namespace type)
FIELDS = (("ipc_mode", "ipc", "ipc"), ("pid_mode", "pid", "pid"),
          ("uts_mode", "uts", "uts"), ("cgroupns_mode", "cgroupns", "cgroup"))


def check(engine, config, cid: str | None = None) -> None:
    """Resolve ``container:NAME`` modes in ``config`` to ids (in place), refusing a
    missing, stopped or non-shareable (``--ipc``) container with one line."""
    for field, flag, _ in FIELDS:
        mode = getattr(config, field, None)
        if not mode or not mode.startswith("container:"):
            continue
        target = _running(engine, mode[len("container:"):], flag)
        if target.id == cid:
            raise UsageError(f"invalid --{flag} {mode}: a container cannot join itself")
        if flag == "ipc" and target.config.ipc_mode not in ("shareable", "host"):
            raise UsageError(f"cannot join the IPC namespace of container "
                             f"{target.name or target.short_id}: it is not shareable "
                             "(start it with --ipc shareable)")
        setattr(config, field, f"container:{target.id}")


def _running(engine, ref: str, flag: str):
    try:
        target = engine.containers.get(ref)
    except NotFoundError:
        raise NotFoundError(f"no such container: {ref} (--{flag} container:NAME)") from None
    if not engine.is_running(target) or not target.state.pid or not engine.process_alive(target):
        raise UsageError(f"cannot join the {flag} namespace of container "
                         f"{target.name or target.short_id}: it is not running")
    return target


def paths(engine, container) -> dict[str, str]:
    """namespace type -> ``/proc/PID/ns/TYPE`` of each container this one joins."""
    out = {}
    for field, flag, nstype in FIELDS:
        mode = getattr(container.config, field, None)
        if mode and mode.startswith("container:"):
            target = _running(engine, mode[len("container:"):], flag)
            out[nstype] = f"/proc/{target.state.pid}/ns/{nstype}"
            if nstype == "ipc":
                out["/dev/shm"] = _shm_of(engine, target)
    if getattr(container.config, "ipc_mode", None) == "shareable":
        out["/dev/shm"] = os.path.join(engine.paths(container.id).bundle, SHM_NAME)
    return out


def _shm_of(engine, target) -> str:
    """The /dev/shm a container joining ``target``'s IPC namespace binds."""
    if target.config.ipc_mode == "host":
        return "/dev/shm"
    from ..volumes.sysmount import is_mount_point

    path = os.path.join(engine.paths(target.id).bundle, SHM_NAME)
    if not is_mount_point(path):
        raise UsageError(f"cannot join the ipc namespace of container "
                         f"{target.name or target.short_id}: its /dev/shm is not shared "
                         "(restart it)")
    return path


def mount_shm(engine, container, bundle: str) -> None:
    """A ``shareable`` container's /dev/shm: a fresh tmpfs at ``bundle``/shm (a stale
    one, from a start that failed before its clean-up, unmounted first)."""
    if getattr(container.config, "ipc_mode", None) != "shareable":
        return
    from ..volumes import sysmount

    target = os.path.join(bundle, SHM_NAME)
    os.makedirs(target, mode=0o700, exist_ok=True)
    sysmount.umount(target)
    size = container.config.shm_size or DEFAULT_SHM_SIZE
    sysmount.mount("shm", target, "tmpfs",
                   sysmount.MS_NOSUID | sysmount.MS_NODEV | sysmount.MS_NOEXEC,
                   f"mode=1777,size={size}")


def unmount_shm(engine, c, errors: list) -> None:
    """teardown: the tmpfs :func:`mount_shm` made, if any (before the bundle goes)."""
    target = os.path.join(engine.paths(c.id).bundle, SHM_NAME)
    if not os.path.isdir(target):
        return
    from ..volumes import sysmount

    try:
        sysmount.umount(target)
    except OSError as e:
        errors.append(f"unmounting /dev/shm: {e}")
