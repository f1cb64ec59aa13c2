"""The parent's side of a container's processes: forking them, reaping them, reading
their failures, being their subreaper, handing a console on (shared by create and join).
"""
from __future__ import annotations

import _socket  # socket.py would import enum and selectors (~7 ms); see channel
import os

from pyrt_core.errors import ExecError, RuntimeError_

from . import channel, syscalls

_subreaper = False


def become_subreaper() -> None:
    """Make the calling process a child subreaper for good (orphaned descendants come to it)."""
    global _subreaper
    if not _subreaper:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1, what="PR_SET_CHILD_SUBREAPER")
        _subreaper = True


def subreaper_begin() -> None:
    """Be a child subreaper while a container's intermediate process exits, so that
    the process it forked (the container's init, or an exec'd process) becomes ours."""
    if not _subreaper:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1, what="PR_SET_CHILD_SUBREAPER")


def subreaper_end() -> None:
    """Undo :func:`subreaper_begin` once the intermediate is reaped: the caller
    (pytest, a long-lived tool) must not collect unrelated orphans afterwards."""
    if not _subreaper:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 0, what="PR_SET_CHILD_SUBREAPER")


def reap(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def kill_and_reap(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    reap(pid)


def failure(msg: bytes, what: str, status: int | None = None) -> RuntimeError_:
    """The exception for a child's ``error`` message (or for its silent death)."""
    err = channel.parse_error(msg)
    if err is None:
        detail = f" (exit code {os.waitstatus_to_exitcode(status)})" if status else ""
        return RuntimeError_(f"{what}: the process ended without saying why{detail}")
    code, text = err
    if code in (channel.EXIT_CANNOT_EXECUTE, channel.EXIT_NOT_FOUND):
        return ExecError(text, code)
    return RuntimeError_(f"{what}: {text}")


def fork_child(target, *args) -> tuple[int, int]:
    """Fork a child running ``target(*args, child_sock)``; return (pid, parent's socket)."""
    parent_sock, child_sock = channel.socketpair()
    try:
        pid = os.fork()
    except BaseException:
        os.close(parent_sock)
        os.close(child_sock)
        raise
    if pid == 0:
        os.close(parent_sock)
        channel.run_child(child_sock, target, *args, child_sock)
    os.close(child_sock)
    return pid, parent_sock


def send_console(path: str, master: int) -> None:
    """Hand the pty master to the caller's console socket (as runc: SCM_RIGHTS)."""
    try:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.connect(path)
            channel.send_fds(s.fileno(), b"/dev/ptmx", [master])
        finally:
            s.close()
    except OSError as e:
        raise RuntimeError_(f"sending the console to {path}: {e.strerror or e}") from None
