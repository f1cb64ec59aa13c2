"""One health check: ``pyrt healthcheck run`` (podman's command; the runner runs it at
every interval).  The check's command is an exec into the container through the
engine's exec path (:func:`pyrt_core.engine.exec.exec_in`: the init's namespaces by setns,
its cgroup, the container's user, environment, capabilities, seccomp filter), its output
captured (stdout and stderr together, as docker), its time limited by ``Timeout``: past
it the check's processes are killed (the exec'd process and what it started) and the
result is docker's ``Health check exceeded timeout (1s)`` with exit code -1."""
from __future__ import annotations

import os
import time

from ..health import config as hconf
from ..health import state as hstate


def run_check(engine, ref: str, run: int | None = None) -> tuple[int, dict | None]:
    """Run the container's check once and record the result; returns (0 healthy / 1
    not, the new health or None when the result was not recorded: the run is over)."""
    from ..errors import ConflictError, PyrtError

    c = engine.find(ref)
    hc = c.config.healthcheck
    if not hconf.enabled(hc):
        raise ConflictError(f"container {c.name} has no defined healthcheck")
    if c.state.status not in ("running", "starting"):
        raise ConflictError(f"container {c.name} is not running")
    if run is not None and c.state.run != run:
        return 1, None
    settings = hconf.effective(hc)
    root = engine.settings.root
    current = hstate.read(root, c.id) or {}
    if current.get("Run") != c.state.run:
        hstate.begin_run(root, c.id, c.state.run)  # a run whose runner never started
        current = {}
    before = current.get("Status", hstate.STARTING)
    start = time.time()
    try:
        code, output = _exec_with_timeout(engine, c, hconf.argv(hc), settings["Timeout"])
    except PyrtError as e:
        code, output = -1, str(e)
    end = time.time()
    result = {"Start": hstate.timestamp(start), "End": hstate.timestamp(end),
              "ExitCode": code, "Output": output}
    started = hstate.epoch(c.state.started_at)
    in_start = started is not None and (start - started) * 1e9 < settings["StartPeriod"]
    health = hstate.record_result(root, c.id, c.state.run, result, settings["Retries"], in_start)
    if health is not None and health.get("Status") != before:
        from .common import log_container_event

        # docker's event when the status changes: "health_status: healthy"
        log_container_event(engine, c, f"health_status: {health['Status']}")
    return (0 if code == 0 else 1), health


def _exec_with_timeout(engine, c, argv: list[str], timeout_ns: int) -> tuple[int, str]:
    import select

    from .exec import exec_in

    r, w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    pids: list[int] = []
    try:
        try:
            exec_in(engine, c.id, argv, stdio=(null, w, w), detach=True,
                    on_started=pids.append)
        finally:
            os.close(w)
            os.close(null)
        pid = pids[0]
        pidfd = os.pidfd_open(pid)
        out = bytearray()
        deadline = time.monotonic() + timeout_ns / 1e9
        timed_out = False
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(r, select.POLLIN)
            exited = False
            while not exited:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                for fd, _ in poller.poll(max(int(left * 1000), 1)):
                    if fd == pidfd:
                        exited = True
                    elif not _drain(r, out):
                        poller.unregister(r)
            if timed_out:
                kill_tree(pid)
            else:
                os.set_blocking(r, False)
                while _drain(r, out, once=False):
                    pass
        finally:
            os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        if timed_out:
            return -1, f"Health check exceeded timeout ({hconf.format_duration(timeout_ns)})"
        code = os.waitstatus_to_exitcode(status)
        return (128 - code if code < 0 else code), hstate.truncate_output(bytes(out))
    finally:
        os.close(r)


def _drain(fd: int, out: bytearray, once: bool = True) -> bool:
    """Read what ``fd`` has (keeping 1 byte past docker's cap, to know it was cut);
    False at EOF or when nothing is left (non-blocking)."""
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        return False
    if not chunk:
        return False
    room = hstate.MAX_OUTPUT + 1 - len(out)
    if room > 0:
        out += chunk[:room]
    return True


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process it started (found by parent pid in /proc, the host's
    view), children first frozen by stopping the parent: a check past its timeout must
    leave nothing behind in the container."""
    from _signal import SIGKILL, SIGSTOP

    seen: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            os.kill(p, SIGSTOP)  # no new children while we look
        except ProcessLookupError:
            continue
        todo += [q for q in _children(p) if q not in seen]
    for p in seen:
        try:
            os.kill(p, SIGKILL)
        except ProcessLookupError:
            pass


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        out = []
        from .. import procutil

        for name in os.listdir("/proc"):
            if name.isdigit() and procutil.ppid(int(name)) == pid:
                out.append(int(name))
        return out
