"""Starting and stopping a container run's health check runner (pyrt_core.health.runner).

Started by the engine once a run's process runs (``run -d``, ``start``, ``restart``, a
restart policy's new run, a foreground ``run``), and again by the recovery pass for a
running container whose runner died (its flock is free); stopped by ``cleanup_locked``,
which every end of a run goes through.  The runner also ends on its own when the
container's init does (it waits on a pidfd).

Imports: os (the recovery pass and ``stop`` go through here).
"""
from __future__ import annotations

import os

LOCK = "health-runner.lock"
PIDFILE = "health-runner.pid"
LOGFILE = "health.log"


def _files(engine, cid: str) -> tuple[str, str, str]:
    d = engine.containers.bundle_dir(cid)
    return os.path.join(d, LOCK), os.path.join(d, PIDFILE), os.path.join(d, LOGFILE)


def wanted(c) -> bool:
    from ..health.config import enabled

    return enabled(c.config.healthcheck)


def start(engine, c) -> None:
    """Begin the run's health (``starting``) and start its runner (a detached process in
    a session of its own).  Never fails the container's start: a runner that cannot be
    started is reported on stderr, and the next command's recovery tries again."""
    if not wanted(c):
        return
    from ..health import state

    try:
        state.begin_run(engine.settings.root, c.id, c.state.run)
        spawn(engine, c)
    except OSError as e:
        import sys

        sys.stderr.write(f"pyrt: warning: cannot start the health checks of {c.name}: {e}\n")


def _epoch(text: str) -> float:
    import time

    from ..health.state import epoch

    t = epoch(text)

    return t if t is not None else time.time()


def spawn(engine, c) -> None:
    from ..health import config as hconf
    from ..monitor.conmon import find_pyrt

    s = engine.settings
    hc = hconf.effective(c.config.healthcheck)
    lock, pidfile, log = _files(engine, c.id)
    pyrt = [find_pyrt(), "--root", s.root, "--runroot", s.runroot,
            "--storage-driver", engine.driver_name]
    if s.config_file:
        pyrt += ["--config", s.config_file]
    pyrt += ["healthcheck", "run", "--run", str(c.state.run), c.id]
    import sys

    from ..health import runner as runner_module  # (its path: it runs as a script)

    runner = runner_module.__file__
    argv = [sys.executable, "-I", "-S", runner, lock, pidfile, str(c.state.pid),
            str(c.state.pid_start), repr(_epoch(c.state.started_at)), str(hc["Interval"]),
            str(hc["StartInterval"]), str(hc["StartPeriod"]), str(hc["Timeout"]), "--"] + pyrt
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: a session of its own, then the runner
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(out, 2)
                os.chdir("/")
                os.execve(argv[0], argv, env)
        finally:
            os._exit(0)
    try:
        os.waitpid(pid, 0)  # (EINTR is retried by Python itself: PEP 475)
    except ChildProcessError:
        pass


def running(engine, cid: str) -> bool:
    """Whether a runner holds the run's lock (a dead runner's lock is free)."""
    import fcntl

    lock, _, _ = _files(engine, cid)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def ensure(engine, c) -> bool:
    """For the recovery pass: start the runner of a running container whose runner died.
    True when it started one."""
    if not wanted(c) or running(engine, c.id):
        return False
    spawn(engine, c)
    return True


def stop(engine, c) -> None:
    """End the run's runner (and the check it runs) and mark the run's health over.
    Called by cleanup_locked: cheap when there is no check (one dict lookup)."""
    if not wanted(c):
        return
    from _signal import SIGKILL, SIGTERM

    from .. import procutil

    _, pidfile, _ = _files(engine, c.id)
    try:
        with open(pidfile) as f:
            pid_text, _, start_text = f.read().strip().partition(" ")
        pid, start = int(pid_text), int(start_text)
    except (OSError, ValueError):
        pid, start = 0, None
    if pid and procutil.alive(pid, start):
        procutil.signal_verified(pid, start, None, SIGTERM)
        if not procutil.wait_gone(pid, start, None, 2.0):
            procutil.signal_verified(pid, start, None, SIGKILL)
            procutil.wait_gone(pid, start, None, 2.0)
    from ..health import state

    state.end_run(engine.settings.root, c.id, c.state.run)
