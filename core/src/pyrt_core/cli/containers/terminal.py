"""The stdio of a process the CLI runs in the foreground (``run``, ``exec``)."""
from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def terminal_stdio(tty: bool, interactive: bool, detach: bool = False, logged: bool = False):
    """The stdio of a process the CLI runs in the foreground: a pty pyrt owns for
    ``-t``, else pipes pyrt copies to and from ours (never our own terminal or files:
    monitor/pipes.py says why), the container's /dev/null as stdin without ``-i``.
    A detached process (``exec -d``) gets the container's /dev/null for all three.
    Yields ``(stdio, proxy)``; ``proxy`` (PtyProxy, PipeProxy or None) is started
    with the container and finished after it.  ``logged``: the output will be written to
    the container's log as well (``proxy.log``), so it is copied even when it could go
    straight to an anonymous pipe of ours."""
    proxy = None
    try:
        if detach:
            from ...runtime.config import NULL_STDIO

            stdio = (NULL_STDIO,) * 3
        elif tty:
            from ...monitor.attach import PtyProxy

            proxy = PtyProxy(stdin_fd=0 if interactive else None, stdout_fd=1)
            stdio = proxy.stdio
        else:
            from ...monitor.pipes import PipeProxy

            proxy = PipeProxy(interactive, logged=logged)
            stdio = proxy.stdio
        sys.stdout.flush()
        yield stdio, proxy
    finally:
        if proxy is not None:
            proxy.finish()
