"""``--ipc/--pid/--uts/--cgroupns container:NAME``: joining another container's
namespaces.

:func:`check` (create) resolves NAME to the id of a container of the same store and
refuses one that does not run (docker's rule: only a running container has
namespaces to join; for ``--ipc``, only a ``shareable`` one, as docker's default
``private`` IPC mode is not joinable).  :func:`paths` (each start) gives the runtime
the namespace files of that container's init, ``/proc/PID/ns/TYPE``, after checking
again that it runs and that the pid is still its init's (procutil.alive: start time
and boot), so a pid reused by another process is never joined.
"""
from __future__ import annotations

from ..errors import NotFoundError, UsageError

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
    return out
