"""``pyrt exec``: a new process joining a running container (the isolation plugin's
``pyrt_isolation_join``: its namespaces by setns, its cgroup), with the container's
process settings from its bundle unless overridden."""
from __future__ import annotations

import os

from ..models import Container


def exec_in(engine, ref: str | Container, args: list[str], *, env: list[str] | None = None,
            user: str | None = None, workdir: str | None = None, tty: bool = False,
            stdio=(0, 1, 2), detach: bool = False, on_started=None, on_console=None,
            privileged: bool = False) -> int:
    """``pyrt exec``: a new process in the container's namespaces (setns) and
    cgroup, with the container's environment, capabilities and user unless
    overridden (``privileged``: every capability, no seccomp filter and no
    no_new_privs for this process, as ``docker exec --privileged``).  Returns its exit
    code (0 at once with ``detach``)."""
    import json

    from ..containers.spec import resolve_user
    from ..errors import ConflictError, ExecError
    from ..runtime.spec import process_from_spec
    from ..runtime.executor import forward_signals

    c = engine.containers.get(ref) if isinstance(ref, str) else engine.full(ref)
    if c.state.status not in ("running", "starting") or not engine.process_alive(c):
        raise ConflictError(f"container {c.name} is not running: exec needs a running container")
    try:
        with open(os.path.join(engine.containers.bundle_dir(c.id), "config.json")) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        raise ConflictError(f"container {c.name} has no runtime configuration "
                            "(is it still starting?)") from None
    proc = dict(spec["process"])
    proc["args"] = list(args)
    proc["terminal"] = bool(tty)
    if env:
        merged = dict(e.partition("=")[::2] for e in proc.get("env") or [])
        for e in env:
            k, _, v = e.partition("=")
            merged[k] = v
        proc["env"] = [f"{k}={v}" for k, v in merged.items()]
    if tty and not any(e.startswith("TERM=") for e in proc.get("env") or []):
        proc["env"] = list(proc.get("env") or []) + ["TERM=xterm"]
    if user is not None:
        uid, gid, extra = resolve_user(spec["root"]["path"], user, exit_code=126)  # docker exec's
        proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra}
    if workdir:
        if not workdir.startswith("/"):
            raise ExecError(f"the working directory {workdir!r} is invalid, it needs to be an "
                            "absolute path", 125)
        proc["cwd"] = workdir
    if privileged:
        from ..capabilities import effective_set

        caps = effective_set([], [], True)
        proc["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        proc["noNewPrivileges"] = False
    if c.config.runtime:  # --runtime: that runtime's own exec
        from .teardown import other_runtime

        other = other_runtime(engine, c)
        if other is not None:
            return _exec_other(engine, c, other, proc, stdio, detach, on_started)
    pconf = process_from_spec(proc)
    if tty and on_console is not None:
        pconf.on_console = on_console  # the pty is opened inside (the container's devpts)
    from ..runtime.spec_seccomp import seccomp_from_spec

    pconf.seccomp = None if privileged else \
        seccomp_from_spec((spec.get("linux") or {}).get("seccomp"))  # as runc
    from ..runtime.config import SECCOMP_CACHE_ANNOTATION

    pconf.seccomp_cache = (spec.get("annotations") or {}).get(SECCOMP_CACHE_ANNOTATION)
    # every namespace the container is in, those it joined by path too (its network
    # namespace, which the engine made): the exec'd process joins them through the
    # container's init (/proc/PID/ns/*)
    namespaces = [ns["type"] for ns in (spec.get("linux") or {}).get("namespaces") or []]
    if c.state.resources.get("manager", "none") != "none" and "cgroup" not in namespaces:
        namespaces.append("cgroup")
    from .common import log_container_event

    # docker's exec events: the action names the command, execID ties them together
    exec_id = os.urandom(32).hex()
    command = " ".join(args)
    log_container_event(engine, c, f"exec_create: {command}", execID=exec_id)
    p = engine.pm.hook.pyrt_isolation_join(pid=c.state.pid, namespaces=namespaces,
                                           process=pconf, stdio=tuple(stdio))
    if p is None:
        raise ConflictError("no isolation plugin can join a container (install pyrt-namespaces)")
    log_container_event(engine, c, f"exec_start: {command}", execID=exec_id)
    if on_started is not None:
        on_started(p.pid)
    if detach:
        return 0
    try:
        with forward_signals(p):
            code = p.wait()
    except BaseException:
        p.destroy()
        raise
    log_container_event(engine, c, "exec_die", execID=exec_id, exitCode=code)
    return code


def _exec_other(engine, c: Container, other, proc: dict, stdio, detach: bool, on_started) -> int:
    """``exec`` in a container of another OCI runtime: ``RUNTIME exec --process FILE ID``
    with our stdio (``-t``: the runtime's own pty, copied through the one we give it),
    waited for here: the runtime returns the process's exit code and forwards the
    signals it gets, which we forward to it."""
    import json
    import subprocess
    import tempfile

    from ..errors import ExecError
    from ..monitor.ociruntime import why_untrusted
    from ..runtime.config import NULL_STDIO

    why = why_untrusted(other.path)
    if why:
        raise ExecError(f"refusing the OCI runtime {other.name}: {why}", 125)
    bundle = engine.containers.bundle_dir(c.id)
    fd, path = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=bundle)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(proc, f)
        argv = other.argv("exec", "--process", path)
        if proc.get("terminal"):
            argv.append("--tty")
        if detach:
            argv.append("--detach")
        argv.append(c.id)
        null = _container_null(c) if NULL_STDIO in tuple(stdio) else -1
        fds = [null if x == NULL_STDIO else x for x in stdio]
        try:
            p = subprocess.Popen(argv, stdin=fds[0], stdout=fds[1], stderr=fds[2],
                                 start_new_session=bool(proc.get("terminal")))
        finally:
            if null >= 0:
                os.close(null)
        if on_started is not None:
            on_started(p.pid)
        from ..runtime.executor import forward_signals

        class _Proc:  # what forward_signals needs of a process
            pid = p.pid

            @staticmethod
            def kill(sig):
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass

        try:
            with forward_signals(_Proc()):
                return p.wait()
        except BaseException:
            p.kill()
            p.wait()
            raise
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


_HINT = " (exec -i gives the process a pipe as its stdin instead)"


def _container_null(c: Container) -> int:
    """The container's own ``/dev/null`` (never the host's: docs/security.md, 12), opened
    inside its root with openat2(RESOLVE_IN_ROOT) through its init, and checked to be the
    null device: what ``NULL_STDIO`` means for pyrt's own exec."""
    import stat

    from ..containers.inroot import open_path
    from ..errors import ExecError

    try:
        opath = open_path(f"/proc/{c.state.pid}/root", "/dev/null")
    except OSError as e:
        raise ExecError(f"cannot open the container's /dev/null: {e.strerror}{_HINT}", 125) from None
    try:
        fd = os.open(f"/proc/self/fd/{opath}", os.O_RDWR | os.O_CLOEXEC | os.O_NOCTTY)
    finally:
        os.close(opath)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise ExecError(f"the container's /dev/null is not the null device{_HINT}", 125)
    return fd
