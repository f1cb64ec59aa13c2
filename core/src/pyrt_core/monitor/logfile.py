"""The log of a container run in the foreground: the CLI, its monitor, writes what it
copies to the terminal into the same file and format conmon writes for a detached one
(``containers/<id>/ctr.log``, k8s-file: ``TIME STREAM F|P DATA``), so ``pyrt logs``
reads both alike (docker logs every container, not only detached ones).

Lean on purpose (the ``pyrt run`` path): ``os`` and ``time`` only.  The file is capped as
conmon caps it (``--log-opt max-size``): when a record would pass the cap the file starts
again.  A write that fails (disk full) stops the logging, never the container's output.
"""
from __future__ import annotations

import os
import time

DEFAULT_SIZE_MAX = 10 * 1024 * 1024  # conmon's default (monitor.conmon.DEFAULT_LOG_SIZE_MAX)


class LogFile:
    """Appends k8s-file records to ``path`` (created 0600, never followed if a symlink)."""

    def __init__(self, path: str, size_max: int | None = None):
        self.path = path
        self.size_max = DEFAULT_SIZE_MAX if size_max is None else size_max
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        """Record ``data`` the container wrote on ``stream`` ("stdout" or "stderr")."""
        if self.fd < 0 or not data:
            return
        t = time.time_ns()
        ts = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000))
              + f".{t % 1_000_000_000:09d}+00:00").encode()
        head = ts + b" " + stream.encode() + b" "
        out = bytearray()
        restart = False
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            rec = head + (b"P " if last else b"F ") + line + b"\n"
            if self.size_max > 0 and (0 if restart else self.size) + len(out) + len(rec) > self.size_max:
                # as conmon, record by record: the log starts again, what it held is dropped
                restart, out = True, bytearray()
            out += rec
        try:
            if restart:
                os.ftruncate(self.fd, 0)
                self.size = 0
            os.write(self.fd, out)
            self.size += len(out)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
