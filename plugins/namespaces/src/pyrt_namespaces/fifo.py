"""Start a container that waits on its exec FIFO (``pyrt-runtime start``).

Kept apart from :mod:`.handle` so that ``start`` imports nothing heavy (no
``socket``, no ``signal``): it is one of the four commands an engine runs for
every container.
"""
from __future__ import annotations

import os

from pyrt_core.errors import ExecError, RuntimeError_


def start_fifo(fifo_path: str, status_path: str | None = None, timeout: float = 60.0) -> None:
    """Start a container whose handle called :meth:`.handle.NamespacedProcess.detach_start`.

    With ``status_path`` (the same second FIFO), wait until the exec is done and
    raise :class:`ExecError` (127/126) or :class:`RuntimeError_` if it failed."""
    status = None
    if status_path is not None:
        try:
            status = os.open(status_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            status = None
        else:
            # A FIFO's reader gets POLLHUP once the writers are gone only if a writer
            # opened after the reader's own non-blocking open saw none: open (and close)
            # one now, so that the exec closing the init's copy wakes the poll below.
            try:
                os.close(os.open(status_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            except OSError:
                pass
    try:
        try:
            fd = os.open(fifo_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            import errno

            if e.errno in (errno.ENXIO, errno.ENOENT):
                raise RuntimeError_("container process is not running (nobody waits on "
                                    f"{fifo_path})") from None
            raise
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
        if status is None:
            return
        # Read until EOF (no writer left: the exec closed the init's copy), or an error
        # message from the init.
        import select
        import time

        poller = select.poll()
        poller.register(status, select.POLLIN)
        deadline = time.monotonic() + timeout
        msg = b""
        while True:
            try:
                chunk = os.read(status, 65536)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return  # not exec'd yet: do not hang the caller; the exit status will tell
                poller.poll(min(left, 0.5) * 1000)
                continue
            if not chunk:
                break
            msg += chunk
        if not msg:
            return
        from . import channel

        err = channel.parse_error(msg)
        code, text = err if err else (channel.EXIT_SETUP, msg.decode(errors="replace"))
        if code in (channel.EXIT_CANNOT_EXECUTE, channel.EXIT_NOT_FOUND):
            raise ExecError(text, code)
        raise RuntimeError_(text)
    finally:
        if status is not None:
            os.close(status)
