"""The ContainerProcess handle returned by create and join."""
from __future__ import annotations

import _signal  # signal.py would import enum
import os

from pyrt_core.errors import ExecError, RuntimeError_
from pyrt_core.api import ContainerProcess, wait_status_to_exit_code

from . import channel


class NamespacedProcess(ContainerProcess):
    """A process in a container's namespaces, a child of the caller (subreaper).

    ``sock`` is the parent's end of the control channel while the process waits
    for ``start`` (None once started, or for a joined process).
    """

    def __init__(self, pid: int, sock: int | None, started: bool = False):
        self.pid = pid
        self._sock = sock
        self._started = started
        self._exit_code: int | None = None

    def __repr__(self):
        state = "exited" if self._exit_code is not None else ("running" if self._started else "created")
        return f"<NamespacedProcess pid={self.pid} {state}>"

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        sock, self._sock = self._sock, None
        try:
            try:
                channel.send(sock, b"start")
            except OSError:  # nobody holds the other end: the process is gone
                code = self.wait()
                raise RuntimeError_(f"container process {self.pid} exited before it was "
                                    f"started (exit code {code})") from None
            # EOF (the socket closed by a successful execve) is success.  A process
            # killed before exec also gives EOF; its exit status will tell.
            msg = channel.recv(sock)
        finally:
            os.close(sock)
        if not msg:
            return
        err = channel.parse_error(msg)
        self.wait()
        code, text = err if err else (channel.EXIT_SETUP, msg.decode(errors="replace"))
        if code in (channel.EXIT_CANNOT_EXECUTE, channel.EXIT_NOT_FOUND):
            raise ExecError(text, code)
        raise RuntimeError_(text)

    def detach_start(self, fifo_path: str, status_path: str | None = None) -> None:
        """Hand the wait for ``start`` over to a FIFO, so another process can start it.

        For a CLI whose ``create`` exits before ``start`` (the OCI flow): the
        container process keeps the FIFO open and execs when a byte is written
        to it (see :func:`start_fifo`).  With ``status_path`` (a second FIFO),
        the process reports a failed exec there (``error CODE TEXT``) and the
        starter sees EOF once the exec succeeded; without it, exec errors are
        only seen in the exit status (127/126).  After this, this handle may no
        longer be used to start.
        """
        if self._started or self._sock is None:
            raise RuntimeError_("container process already started")
        fds = [os.open(fifo_path, os.O_RDWR | os.O_CLOEXEC)]
        try:
            if status_path is not None:
                fds.append(os.open(status_path, os.O_RDWR | os.O_CLOEXEC))
            channel.send_fds(self._sock, b"detach", fds)
        finally:
            for fd in fds:
                os.close(fd)
        os.close(self._sock)
        self._sock = None
        self._started = True

    def poll(self) -> int | None:
        """The exit code if the process has ended (reaping it), else None."""
        if self._exit_code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                self._exit_code = wait_status_to_exit_code(status)
        return self._exit_code

    def wait(self) -> int:
        if self._exit_code is None:
            while True:
                try:
                    _, status = os.waitpid(self.pid, 0)
                    break
                except InterruptedError:  # only if a signal handler raised it
                    continue
                except ChildProcessError:
                    raise RuntimeError_(f"process {self.pid} is not a child of this process "
                                        "(was it reaped elsewhere?)") from None
            self._exit_code = wait_status_to_exit_code(status)
            self._close()
        return self._exit_code

    def kill(self, sig: int) -> None:
        if self._exit_code is not None:
            return  # reaped: the pid may belong to someone else now
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def destroy(self) -> None:
        if self._exit_code is None:
            self.kill(_signal.SIGKILL)
            try:
                self.wait()
            except RuntimeError_:
                pass
        self._close()

    def _close(self):
        if self._sock is not None:
            os.close(self._sock)
            self._sock = None


from .fifo import start_fifo  # noqa: E402,F401 - its home, kept lean for pyrt-runtime start
