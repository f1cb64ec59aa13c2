"""The parent <-> child control channel and the child-side error discipline.

One ``SOCK_SEQPACKET`` socket pair per container (messages keep their
boundaries; EOF means every child-side copy is closed).  The child's end is
close-on-exec, so after ``start`` the parent reads to EOF: EOF alone means the
exec succeeded, ``error CODE TEXT`` means it did not.

Messages, child -> parent: ``userns`` (maps wanted), ``pid N`` (host pid of the
container process), ``hooks`` (run prestart and createRuntime now), ``console``
(with the pty master as SCM_RIGHTS), ``created``, ``error CODE TEXT``, and from
the exec helper ``errno PATH`` + NUL + the errno (4 bytes) when the last execve failed.
Parent -> child: ``maps``, ``go`` (placed in its cgroup) or ``go JSON`` (join the cgroups
the JSON record describes), ``hooks done``, ``start``.
"""
from __future__ import annotations

import _signal  # signal.py and socket.py would import enum (and selectors): ~7 ms
import _socket  # the C modules are all the channel needs
import os
import sys

EXIT_SETUP = 125
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
MAX_MESSAGE = 65536


class ChildError(Exception):
    """A failure inside a child, with the exit code it maps to."""

    def __init__(self, message: str, exit_code: int = EXIT_SETUP):
        super().__init__(message)
        self.exit_code = exit_code


def socketpair() -> tuple[int, int]:
    """(parent end, child end), both close-on-exec."""
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    return a.detach(), b.detach()


def send(fd: int, msg: bytes) -> None:
    os.write(fd, msg)


def recv(fd: int) -> bytes:
    """Next message; b"" when the other side is gone."""
    try:
        return os.read(fd, MAX_MESSAGE)
    except ConnectionResetError:
        return b""


def recv_fds(fd: int, max_fds: int = 4) -> tuple[bytes, list[int]]:
    """Next message and the file descriptors sent with it (SCM_RIGHTS)."""
    try:
        msg, fds = recvmsg_fds(fd, MAX_MESSAGE, max_fds)
    except ConnectionResetError:
        return b"", []
    for passed in fds:
        os.set_inheritable(passed, False)
    return msg, fds


_FD_SIZE = 4  # sizeof(int): SCM_RIGHTS carries an int array


def send_fds(fd: int, msg: bytes, fds) -> None:
    """Send ``msg`` with the file descriptors ``fds`` (SCM_RIGHTS) on the socket ``fd``."""
    data = b"".join(f.to_bytes(_FD_SIZE, sys.byteorder, signed=True) for f in fds)
    s = _socket.socket(fileno=fd)
    try:
        s.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, data)])
    finally:
        s.detach()  # the fd stays the caller's


def recvmsg_fds(fd: int, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    """One message of at most ``size`` bytes from the socket ``fd`` and up to ``max_fds``
    file descriptors sent with it (as received: inheritable); OSError as recvmsg."""
    s = _socket.socket(fileno=fd)
    try:
        msg, ancdata, _, _ = s.recvmsg(size, _socket.CMSG_LEN(max_fds * _FD_SIZE))
    finally:
        s.detach()  # the fd stays the caller's
    fds = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            for i in range(0, len(data) - len(data) % _FD_SIZE, _FD_SIZE):
                fds.append(int.from_bytes(data[i:i + _FD_SIZE], sys.byteorder, signed=True))
    return msg, fds


def parse_error(msg: bytes) -> tuple[int, str] | None:
    """(exit code, text) for an ``error`` message or the exec helper's failure report
    (``errno PATH\\0`` + 4 bytes, see :mod:`.exechelper`), else None."""
    if msg.startswith(b"errno ") and len(msg) > 11 and msg[-5:-4] == b"\0":
        err = int.from_bytes(msg[-4:], "little")
        code = EXIT_NOT_FOUND if err in (2, 20) else EXIT_CANNOT_EXECUTE  # ENOENT, ENOTDIR
        return code, f"exec {msg[6:-5].decode(errors='replace')}: {os.strerror(err)}"
    if not msg.startswith(b"error "):
        return None
    parts = msg[6:].split(b" ", 1)
    try:
        code = int(parts[0])
    except ValueError:
        return EXIT_SETUP, msg[6:].decode(errors="replace")
    return code, (parts[1] if len(parts) > 1 else b"").decode(errors="replace")


def describe(exc: BaseException) -> str:
    """One line for an exception: OSError as 'what: reason', others with their type."""
    if isinstance(exc, ChildError):
        text = str(exc)
    elif isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        text = f"{reason}: {exc.filename}" if exc.filename else reason
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


class stage:
    """``with stage("mount /proc"):`` turns any failure into ChildError("mount /proc: ...")."""

    __slots__ = ("what", "exit_code")

    def __init__(self, what: str, exit_code: int = EXIT_SETUP):
        self.what = what
        self.exit_code = exit_code

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        if exc is None or isinstance(exc, ChildError) or not isinstance(exc, Exception):
            return False
        raise ChildError(f"{self.what}: {describe(exc)}", self.exit_code) from None


def run_child(sock: int, fn, *args) -> None:
    """Run ``fn(*args)`` in a forked child and leave with ``os._exit``, never returning.

    A failure is reported on ``sock`` as ``error CODE TEXT`` and becomes the exit
    status; the caller's Python stack (pytest, atexit, finalizers) never runs.
    """
    code = EXIT_SETUP
    try:
        try:
            fn(*args)
            code = 0
        except BaseException as e:  # noqa: BLE001 - everything is reported, then _exit
            code = e.exit_code if isinstance(e, ChildError) else EXIT_SETUP
            try:
                # The exec steps reset SIGPIPE to default: a parent that is gone
                # (detached start) must not turn exit code 127 into a signal death.
                _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
                text = describe(e)[:MAX_MESSAGE - 32]
                send(sock, b"error %d %s" % (code, text.encode(errors="replace")))
            except BaseException:  # noqa: BLE001
                pass
    finally:
        os._exit(code)
