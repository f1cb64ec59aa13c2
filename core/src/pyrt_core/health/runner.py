"""The health check runner of one container run: a lean Python process (run as a script
with ``python -I -S``: no site, no pyrt import, only os, time, select, fcntl and _signal),
started with the container by pyrt_core.health.control and ended by its cleanup.

Every interval it runs ``pyrt healthcheck run --run N ID`` (the check: an exec into the
container, recorded in health.json) and waits for it, at most Timeout + 10 s (the check
enforces Timeout itself; past that the runner kills the check's process group).  It
waits on a pidfd of the container's init, so it ends the moment the container does.
One runner per run: it holds ``health-runner.lock`` (flock) in the run's directory and
writes its pid and start time next to it, where ``cleanup`` finds it.  The intervals are
moby's: the first check after one interval; during the start period, until a check
succeeds, ``StartInterval`` (docker 25).

Command line: LOCK PIDFILE INIT_PID INIT_START STARTED INTERVAL START_INTERVAL
START_PERIOD TIMEOUT -- PYRT_ARGV...  (durations in nanoseconds, STARTED in seconds
since the epoch).
"""
import os
import sys
import time

NS = 1_000_000_000
_child = 0


def _stat_start(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2:].split()[19])


def _kill_child():
    if _child:
        try:
            os.killpg(_child, 9)
        except OSError:
            pass


def _on_term(signum, frame):
    _kill_child()
    os._exit(0)


def _run_check(argv, limit, init_fd):
    """Run one check; its exit code, or None when the container's init ended meanwhile."""
    global _child
    import select

    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _child = pid
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    child_fd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(child_fd, select.POLLIN)
        poller.register(init_fd, select.POLLIN)
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            events = poller.poll(max(int(left * 1000), 0)) if left > 0 else []
            fds = [fd for fd, _ in events]
            if init_fd in fds and child_fd not in fds:
                _kill_child()
                os.waitpid(pid, 0)
                return None
            if child_fd in fds:
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
            if left <= 0:
                _kill_child()
                os.waitpid(pid, 0)
                return -1
    finally:
        _child = 0
        os.close(child_fd)


def main(args):
    import fcntl
    import select
    from _signal import SIGTERM, signal

    sep = args.index("--")
    lock, pidfile, init_pid, init_start, started, interval, start_interval, start_period, \
        timeout = args[:sep]
    argv = args[sep + 1:]
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another runner has this run
    signal(SIGTERM, _on_term)
    try:
        init_fd = os.pidfd_open(int(init_pid))
    except OSError:
        return 0  # the container is gone already
    if str(_stat_start(int(init_pid))) != init_start:
        return 0  # a reused pid: not our container
    tmp = pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {_stat_start(os.getpid())}\n")
    os.rename(tmp, pidfile)
    interval, start_interval = int(interval) / NS, int(start_interval) / NS
    start_period, timeout = int(start_period) / NS, int(timeout) / NS
    started = float(started)
    healthy_once = False
    poller = select.poll()
    poller.register(init_fd, select.POLLIN)
    while True:
        in_start = time.time() - started < start_period
        delay = start_interval if in_start and not healthy_once else interval
        if poller.poll(int(delay * 1000)):
            return 0  # the container's init ended
        code = _run_check(argv, timeout + 10, init_fd)
        if code is None:
            return 0
        if code == 0:
            healthy_once = True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
