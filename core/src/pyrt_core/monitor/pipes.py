"""The stdio of a container run in the foreground without ``-t``: pipes the CLI copies.

Handing the CLI's own stdio to a container would hand it host files: a
terminal it could reconfigure (termios, window size, job control of the
caller's session), a redirected file it could fchmod or reopen through
``/proc/self/fd``, the host's ``/dev/null`` it could chmod.  docker and podman
give such a container pipes; so does pyrt.  Only an anonymous pipe of the
caller (``pyrt run ... | grep``) is passed on as it is: it names no file, and
copying it would only cost time.  Without ``-i`` the container's stdin is
its own ``/dev/null`` (:data:`pyrt_core.runtime.config.NULL_STDIO`).

Lean on purpose (``pyrt run --rm`` takes this path): ``_thread`` and
``select``, no ``threading``.
"""
from __future__ import annotations

import _thread
import errno
import os
import select
import stat

from ..runtime.config import NULL_STDIO


def anonymous_pipe(fd: int) -> bool:
    """Whether ``fd`` is an anonymous pipe (not a named FIFO, a file, a terminal...)."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        return os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:
        return False


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError:
            return False  # our reader is gone: the rest is dropped, the container goes on
        view = view[n:]
    return True


class PipeProxy:
    """Pipes as a container's stdio; :meth:`start` once it runs, :meth:`finish` after."""

    def __init__(self, interactive: bool, stdin_fd: int = 0, stdout_fd: int = 1,
                 stderr_fd: int = 2, logged: bool = False):
        self._theirs: list[int] = []   # the container's ends, closed here once it runs
        self._outputs: list[tuple[int, int]] = []  # (our read end, where it goes)
        self._stdin = None             # (our stdin, the pipe's write end)
        self._done = _thread.allocate_lock()
        #: the container's log (monitor.logfile.LogFile), set before start: what is
        #: copied is written there too; ``logged`` copies even to an anonymous pipe
        self.log = None
        self._streams: dict[int, str] = {}
        stdio = [NULL_STDIO, stdout_fd, stderr_fd]
        try:
            if interactive:
                r, w = os.pipe2(os.O_CLOEXEC)
                stdio[0] = r
                self._theirs.append(r)
                self._stdin = (stdin_fd, w)
            for i, target in ((1, stdout_fd), (2, stderr_fd)):
                if not logged and anonymous_pipe(target):
                    continue
                r, w = os.pipe2(os.O_CLOEXEC)
                stdio[i] = w
                self._theirs.append(w)
                self._outputs.append((r, target))
                self._streams[r] = "stdout" if i == 1 else "stderr"
        except BaseException:
            self._close_all()
            raise
        self.stdio = tuple(stdio)

    def start(self) -> None:
        """The container has its copies of the pipes: close ours, copy in threads."""
        for fd in self._theirs:
            os.close(fd)
        self._theirs = []
        if self._outputs:
            self._done.acquire()
            _thread.start_new_thread(self._copy_out, ())
        if self._stdin is not None:
            _thread.start_new_thread(self._copy_in, self._stdin)

    def _copy_out(self) -> None:
        try:
            open_fds = {r: target for r, target in self._outputs}
            while open_fds:
                try:
                    ready, _, _ = select.select(list(open_fds), [], [])
                except InterruptedError:
                    continue
                except (OSError, ValueError):
                    return  # finish() gave up waiting and closed our ends
                for r in ready:
                    try:
                        data = os.read(r, 65536)
                    except OSError as e:
                        if e.errno == errno.EINTR:
                            continue
                        data = b""
                    if data:
                        _write_all(open_fds[r], data)
                        if self.log is not None:
                            self.log.write(self._streams[r], data)
                    else:
                        del open_fds[r]  # every writer in the container is gone
        finally:
            self._done.release()

    @staticmethod
    def _copy_in(src: int, dst: int) -> None:
        try:
            while True:
                try:
                    data = os.read(src, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not data or not _write_all(dst, data):
                    break
        finally:
            try:
                os.close(dst)  # the container's stdin sees EOF
            except OSError:
                pass

    def finish(self, timeout: float = 10.0) -> None:
        """After the container exited: copy what is left of its output (idempotent)."""
        if self._done.locked():
            self._done.acquire(timeout=timeout)
            self._done.release()
        self._close_all()
        if self.log is not None:
            self.log.close()

    def _close_all(self) -> None:
        for fd in self._theirs + [r for r, _ in self._outputs]:
            try:
                os.close(fd)
            except OSError:
                pass
        self._theirs = []
        self._outputs = []
