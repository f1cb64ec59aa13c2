"""``pyrt exec``: a new process joining a running container (the isolation plugin's
``pyrt_isolation_join``: its namespaces by setns, its cgroup), with the container's
process settings from its bundle unless overridden."""
from __future__ import annotations

import os

from ..models import Container


def exec_in(engine, ref: str | Container, args: list[str], *, env: list[str] | None = None,
            user: str | None = None, workdir: str | None = None, tty: bool = False,
            stdio=(0, 1, 2), detach: bool = False, on_started=None, on_console=None) -> int:
    """``pyrt exec``: a new process in the container's namespaces (setns) and
    cgroup, with the container's environment, capabilities and user unless
    overridden.  Returns its exit code (0 at once with ``detach``)."""
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
        uid, gid, extra = resolve_user(spec["root"]["path"], user)
        proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra}
    if workdir:
        if not workdir.startswith("/"):
            raise ExecError(f"the working directory {workdir!r} is invalid, it needs to be an "
                            "absolute path", 125)
        proc["cwd"] = workdir
    pconf = process_from_spec(proc)
    if tty and on_console is not None:
        pconf.on_console = on_console  # the pty is opened inside (the container's devpts)
    from ..runtime.spec_seccomp import seccomp_from_spec

    pconf.seccomp = seccomp_from_spec((spec.get("linux") or {}).get("seccomp"))  # as runc
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
