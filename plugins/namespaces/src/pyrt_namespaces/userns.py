"""User namespace id maps, written by the parent for a child that waits for them."""
from __future__ import annotations

import os


def format_map(mappings) -> str:
    """``/proc/PID/uid_map`` text for IdMapping objects: ``inside outside count`` lines."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def must_deny_setgroups() -> bool:
    """True when this process may write gid_map only after denying setgroups.

    The kernel requires ``setgroups`` = ``deny`` before a gid_map is written by a
    process without CAP_SETGID in the parent user namespace (rootless mode).
    """
    from . import syscalls

    cap_setgid = 6
    return not (syscalls.capget()[0] >> cap_setgid & 1)


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, f"writing {text.strip()!r} to {path}: {e.strerror}") from None


def write_maps(pid: int, uid_mappings, gid_mappings, deny_setgroups: bool | None = None) -> None:
    """Write the uid and gid maps (and setgroups when needed) of process ``pid``."""
    if deny_setgroups is None:
        deny_setgroups = must_deny_setgroups()
    _write(f"/proc/{pid}/uid_map", format_map(uid_mappings))
    if deny_setgroups:
        _write(f"/proc/{pid}/setgroups", "deny")
    _write(f"/proc/{pid}/gid_map", format_map(gid_mappings))
