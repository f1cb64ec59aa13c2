"""The handle an isolation plugin returns for a container or exec process."""
from __future__ import annotations

import abc


def wait_status_to_exit_code(status: int) -> int:
    """Turn a ``waitpid`` status into a shell-style exit code (128+N for signal N)."""
    if hasattr(__import__("os"), "waitstatus_to_exitcode"):
        import os

        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code
    return status  # pragma: no cover


class ContainerProcess(abc.ABC):
    """A process created inside a container's namespaces.

    ``pid`` is its pid in the host's (the caller's) pid namespace.  The
    process is a child of the caller, or reparented to it (the caller is made
    a child subreaper), so ``wait`` can reap it.
    """

    pid: int

    @abc.abstractmethod
    def start(self) -> None:
        """Let the process exec the user's command.

        Returns once the exec succeeded.  Raises
        :class:`pyrt_core.errors.ExecError` (exit code 127 when the command
        is not found, 126 when it cannot be run) after reaping the process.
        """

    def detach_start(self, fifo: str, status_fifo: str) -> None:
        """Hand the wait for :meth:`start` over to the FIFOs, for a start by another process.

        The OCI runtime's ``create`` exits before ``start``: it calls this, and a later
        ``start`` calls ``pyrt_isolation_start(container_id, fifo, status_fifo)``, which
        the same plugin implements (it alone knows what to write and read there).  After
        this, :meth:`start` may no longer be called on this handle.
        """
        from ..errors import RuntimeError_

        raise RuntimeError_(f"{type(self).__name__} cannot be started by another process")

    @abc.abstractmethod
    def wait(self) -> int:
        """Block until the process ends; return its exit code (128+N for signal N)."""

    @abc.abstractmethod
    def kill(self, sig: int) -> None:
        """Send a signal to the process (no error if it is already gone)."""

    @abc.abstractmethod
    def destroy(self) -> None:
        """Kill and reap the process if it is still there (used on failed setup)."""
