"""Process identity that survives pid reuse and reboots.

A pid alone does not name a process for long: after it exits the kernel
hands the number out again, and after a reboot every recorded pid is
meaningless.  pyrt records a process as ``(pid, start time, boot id)``:
the start time is field 22 of ``/proc/PID/stat`` (clock ticks since boot)
and the boot id is ``/proc/sys/kernel/random/boot_id``.  A process is
*alive* only when all three match and it is not a zombie.
"""
from __future__ import annotations

import os
import time

_boot_id: str | None = None


def boot_id() -> str:
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()
        except OSError:
            _boot_id = ""
    return _boot_id


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = data[data.rfind(b")") + 2:].split()
    return [x.decode() for x in rest]  # rest[0] is field 3 (state)


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot), or None if gone."""
    if not pid or pid <= 0:
        return None
    f = _stat_fields(pid)
    if f is None or len(f) < 20:
        return None
    return int(f[19])


def state(pid: int) -> str | None:
    """The one-letter process state (R, S, D, Z, ...), or None when there is no such pid."""
    f = _stat_fields(pid)
    return f[0] if f else None


def ppid(pid: int) -> int | None:
    f = _stat_fields(pid)
    return int(f[1]) if f else None


def identity(pid: int) -> dict:
    """What to record to find ``pid`` again: ``{"pid", "start", "boot"}``."""
    return {"pid": pid, "start": start_time(pid), "boot": boot_id()}


def alive(pid: int, start: int | None = None, boot: str | None = None) -> bool:
    """True if ``pid`` runs, is not a zombie, and (when given) has the recorded
    start time and boot id."""
    if not pid or pid <= 0:
        return False
    if boot and boot != boot_id():
        return False
    f = _stat_fields(pid)
    if f is None or f[0] in ("Z", "X", "x"):
        return False
    if start is not None and int(f[19]) != start:
        return False
    return True


def signal_verified(pid: int, start: int | None, boot: str | None, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it still is the recorded process.  Returns
    whether it was sent."""
    if not alive(pid, start, boot):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pid: int, start: int | None, boot: str | None, timeout: float) -> bool:
    """Wait until the process is gone (or a zombie); True if it went within ``timeout``.

    Through a pidfd (pidfd_open(2), Linux 5.3): readable the moment the process exits,
    where polling /proc woke up to twice as late (stop's latency); the identity is checked
    once the pidfd is held, so the pidfd names the recorded process and not a reuse of
    its pid.  Polling /proc is the fallback where pidfds are missing."""
    try:
        fd = os.pidfd_open(pid) if pid and pid > 0 else -1
    except (AttributeError, OSError):  # gone already (ESRCH), or no pidfds here
        fd = -1
    if fd >= 0:
        try:
            if not alive(pid, start, boot):
                return True
            import select

            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if poller.poll(max(int(timeout * 1000), 0)):
                return True
            return not alive(pid, start, boot)
        finally:
            os.close(fd)
    deadline = time.monotonic() + timeout
    delay = 0.002
    while alive(pid, start, boot):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def pids_in_namespace_of(pid: int) -> list[int]:
    """Host pids of every process in the pid namespace of ``pid`` (for ``top``)."""
    ns = pid_namespace(pid)
    if ns is None:
        return []
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            if pid_namespace(int(name)) == ns:
                out.append(int(name))
    return sorted(out)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            data = f.read()
    except OSError:
        return ""
    if not data:
        f = _stat_fields(pid)
        try:
            with open(f"/proc/{pid}/comm") as fh:
                return f"[{fh.read().strip()}]"
        except OSError:
            return ""
    return " ".join(a.decode(errors="replace") for a in data.rstrip(b"\0").split(b"\0"))
