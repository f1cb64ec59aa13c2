"""``exec``: run another process in a running container, as runc.

The process comes from ``--process FILE`` (a runtime-spec ``process``
object, taken as is) or from the command line, starting from the
container's own ``process`` (as stored at create) with ``--tty``, ``--cwd``,
``--env``, ``--user``, ``--cap`` and ``--no-new-privs`` applied.  It joins
the namespaces and the cgroup of the container's init through the
``pyrt_isolation_join`` hook.  ``--detach`` returns at once and leaves the
process to the caller (a child subreaper such as conmon or containerd's shim
reaps it); otherwise ``exec`` waits and returns the process's exit code.
"""
from __future__ import annotations

import copy

from . import runlog
from .common import (RuntimeFailure, check_preserve_fds, console_socket as check_console, load,
                     plugin_manager, read_json_object, write_pid_file)
from .state import RuntimeState

_CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def read_process_file(path: str) -> dict:
    return read_json_object(path, "--process", "a runtime-spec process")


def _parse_user(text: str) -> tuple[int, int | None]:
    uid, _, gid = text.partition(":")
    try:
        return int(uid), (int(gid) if gid else None)
    except ValueError:
        raise RuntimeFailure(f"invalid --user {text!r}: expected UID[:GID] (numbers)") from None


def process_from_args(base: dict | None, args, *, tty: bool = False, cwd: str | None = None,
                      env=(), user: str | None = None, caps=(), no_new_privs: bool = False) -> dict:
    """runc's exec without ``--process``: the container's process with these changes."""
    if not args:
        raise RuntimeFailure("exec needs a command (or --process FILE)")
    p = copy.deepcopy(base) if isinstance(base, dict) else {}
    p.pop("consoleSize", None)
    p["args"] = list(args)
    p["terminal"] = bool(tty)
    if cwd:
        p["cwd"] = cwd
    if env:
        p["env"] = list(p.get("env") or []) + list(env)
    if user:
        uid, gid = _parse_user(user)
        u = dict(p.get("user") or {})
        u["uid"] = uid
        if gid is not None:
            u["gid"] = gid
        p["user"] = u
    if caps:
        c = dict(p.get("capabilities") or {})
        for name in caps:
            name = name.upper()
            if not name.startswith("CAP_"):
                name = "CAP_" + name
            for s in _CAP_SETS:
                lst = list(c.get(s) or [])
                if name not in lst:
                    lst.append(name)
                c[s] = lst
        p["capabilities"] = c
    if no_new_privs:
        p["noNewPrivileges"] = True
    return p


def _container_seccomp(raw):
    """The container's linux.seccomp (as stored at create), resolved for the exec'd process."""
    from ..errors import PyrtError

    try:
        from .spec_seccomp import seccomp_from_spec
    except ImportError:
        return None
    try:
        return seccomp_from_spec(raw)
    except PyrtError as e:
        raise RuntimeFailure(f"the container's seccomp profile: {e}") from None


def exec_(root: str, cid: str, process: dict, *, detach: bool = False,
          pid_file: str | None = None, console_socket: str | None = None,
          preserve_fds: int = 0, disabled: str | None = None, pm=None, stdio=(0, 1, 2)) -> int:
    """Run ``process`` (a runtime-spec process object) in container ``cid``.

    Returns 0 at once with ``detach``, else the process's exit code."""
    from ..errors import ExecError, PyrtError
    from .spec import process_from_spec

    _, data = load(root, cid)
    status = RuntimeState.status(data)
    if status in ("stopped", "creating"):
        raise RuntimeFailure(f"cannot exec in container {cid}: container not running")
    if status == "paused":
        raise RuntimeFailure(f"cannot exec in container {cid}: it is paused")
    check_preserve_fds(preserve_fds)
    try:
        pc = process_from_spec(process)
    except PyrtError as e:
        raise RuntimeFailure(str(e).replace("invalid OCI config: ", "invalid process: ")) from None
    if preserve_fds:
        pc.preserve_fds = preserve_fds
    if data.get("seccomp") and getattr(pc, "seccomp", None) is None:
        pc.seccomp = _container_seccomp(data["seccomp"])
        from .config import SECCOMP_CACHE_ANNOTATION

        pc.seccomp_cache = (data.get("annotations") or {}).get(SECCOMP_CACHE_ANNOTATION)
    namespaces = list(data.get("namespaces") or [])
    if "cgroup" not in namespaces:
        namespaces.append("cgroup")  # the init's own (the host's): joins its cgroup only
    # as runc: the process opens a pty in the container's own devpts and the
    # namespaces plugin sends its master to this socket
    pc.console_socket = check_console(console_socket, pc.terminal, stdio)
    pm = pm or plugin_manager(disabled)
    runlog.debug(f"exec in container {cid}: {pc.args}")
    try:
        proc = pm.hook.pyrt_isolation_join(pid=data["pid"], namespaces=namespaces,
                                           process=pc, stdio=tuple(stdio))
    except ExecError as e:
        raise RuntimeFailure(str(e), e.exit_code) from None
    except PyrtError as e:
        raise RuntimeFailure(str(e)) from None
    if proc is None:
        raise RuntimeFailure("no isolation plugin is installed (install pyrt-namespaces)")
    if pid_file:
        try:
            write_pid_file(pid_file, proc.pid)
        except BaseException:
            proc.destroy()
            raise
    if detach:
        return 0
    from .executor import forward_signals

    with forward_signals(proc):
        code = proc.wait()
    runlog.debug(f"exec in container {cid} exited with {code}")
    return code
