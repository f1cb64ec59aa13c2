"""The stdio of a process the CLI runs in the foreground (``run``, ``exec``)."""
from __future__ import annotations

import sys


class terminal_stdio:
    """The stdio of a process the CLI runs in the foreground: a pty pyrt owns for
    ``-t``, else pipes pyrt copies to and from ours (never our own terminal or files:
    monitor/pipes.py says why), the container's /dev/null as stdin without ``-i``.
    A detached process (``exec -d``) gets the container's /dev/null for all three.
    Yields ``(stdio, proxy)``; ``proxy`` (PtyProxy, PipeProxy or None) is started
    with the container and finished after it.  ``logged``: the output will be written to
    the container's log as well (``proxy.log``), so it is copied even when it could go
    straight to an anonymous pipe of ours.  ``streams`` (``run -a``): the output streams
    copied to ours (None: both); the others are still read (and logged), never shown.

    A class rather than ``contextlib.contextmanager``: contextlib (with collections and
    functools) costs ``run`` ~3 ms of start-up."""

    def __init__(self, tty: bool, interactive: bool, detach: bool = False,
                 logged: bool = False, streams: set[str] | None = None):
        self.args = (tty, interactive, detach, logged, streams)
        self.proxy = None
        self.null = -1

    def __enter__(self):
        tty, interactive, detach, logged, streams = self.args
        out_fd, err_fd = 1, 2
        if streams is not None and not ("stdout" in streams and "stderr" in streams):
            import os

            self.null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            out_fd = 1 if "stdout" in streams else self.null
            err_fd = 2 if "stderr" in streams else self.null
        try:
            if detach:
                from ...runtime.config import NULL_STDIO

                stdio = (NULL_STDIO,) * 3
            elif tty:
                from ...monitor.attach import PtyProxy

                self.proxy = PtyProxy(stdin_fd=0 if interactive else None, stdout_fd=out_fd)
                stdio = self.proxy.stdio
            else:
                from ...monitor.pipes import PipeProxy

                self.proxy = PipeProxy(interactive, stdout_fd=out_fd, stderr_fd=err_fd,
                                       logged=logged or self.null >= 0)
                stdio = self.proxy.stdio
            sys.stdout.flush()
        except BaseException:
            self._finish()
            raise
        return stdio, self.proxy

    def __exit__(self, *exc) -> bool:
        self._finish()
        return False

    def _finish(self) -> None:
        try:
            if self.proxy is not None:
                self.proxy.finish()
        finally:
            if self.null >= 0:
                import os

                os.close(self.null)
                self.null = -1


#: docker's names of the control characters (moby/term): ctrl-@ is 0, ctrl-a 1 ... ctrl-_ 31
_CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_"


def parse_detach_keys(text: str | None) -> bytes | None:
    """``--detach-keys``: docker's syntax, comma-separated keys, each one character or
    ``ctrl-<c>`` (``c`` in a-z, @, [, \\, ], ^, _), e.g. ``ctrl-p,ctrl-q`` (the default)
    or ``ctrl-a,d``.  None for the default (no flag, or an empty value as docker);
    UsageError (one line, exit 125) for anything else."""
    if text is None or text == "":
        return None
    from ...errors import UsageError

    out = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            out.append(ord(key))
            continue
        low = key.lower()
        if low.startswith("ctrl-") and len(low) == 6 and low[5] in _CTRL:
            out.append(_CTRL.index(low[5]))
            continue
        raise UsageError(f"invalid detach keys {text!r}: unknown key {key!r} "
                         "(keys are single characters or ctrl-<a-z@[\\]^_>, comma-separated)")
    return bytes(out)


STREAMS = ("stdin", "stdout", "stderr")


def parse_attach(values: list[str] | None) -> set[str] | None:
    """``-a/--attach`` values (docker's: stdin, stdout, stderr, any case): the streams to
    attach, None when the flag is not given (all of them)."""
    if not values:
        return None
    from ...errors import UsageError

    out = set()
    for v in values:
        if v.lower() not in STREAMS:
            raise UsageError(f"invalid argument {v!r} for \"-a, --attach\" flag: valid streams "
                             "are STDIN, STDOUT and STDERR")
        out.add(v.lower())
    return out


def parse_bool(text: str, flag: str) -> bool:
    """A docker boolean flag's value (``--sig-proxy=false``)."""
    low = text.lower()
    if low in ("true", "1", "t"):
        return True
    if low in ("false", "0", "f"):
        return False
    from ...errors import UsageError

    raise UsageError(f"invalid argument {text!r} for \"{flag}\" flag: expected true or false")
