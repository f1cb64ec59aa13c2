"""The thin seam between the managers and the cgroup filesystem.

Every read, write, mkdir and rmdir a manager does goes through a
:class:`CgroupFS`.  The real one talks to the kernel; unit tests pass a
subclass that fills a new directory with the files the kernel would create
and records each write, so they can check exactly what was written where.

Writes follow the kernel's rules for cgroup files: the file must already
exist (no ``O_CREAT``), and each value is written with a single ``write``.
"""
from __future__ import annotations

import errno
import os
import time

from .errors import CgroupError


class CgroupFS:
    """Kernel cgroup filesystem access (one instance is shared: :data:`REAL`)."""

    def read(self, path: str) -> str:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CgroupError(f"cannot read {path}: {e.strerror}") from None
        # bytes.decode: a text-mode open(encoding="ascii") imports the codec's module
        return data.decode("ascii", "replace")

    def read_int(self, path: str) -> int | None:
        """An integer file; ``None`` for ``max``."""
        text = self.read(path).strip()
        if text == "max":
            return None
        try:
            return int(text)
        except ValueError:
            raise CgroupError(f"unexpected content in {path}: {text!r}") from None

    def read_kv(self, path: str) -> dict[str, int]:
        """A flat keyed file (``key value`` per line) such as ``cpu.stat``."""
        out: dict[str, int] = {}
        for line in self.read(path).splitlines():
            parts = line.split()
            if len(parts) == 2:
                try:
                    out[parts[0]] = int(parts[1])
                except ValueError:
                    pass
        return out

    def write(self, path: str, value) -> None:
        data = str(value).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(f"cannot open {path} to write {str(value)!r}: {e.strerror}") from None
        try:
            os.write(fd, data)
        except OSError as e:
            raise CgroupError(f"cannot write {str(value)!r} to {path}: {e.strerror}") from None
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def mkdir(self, path: str) -> bool:
        """Make a cgroup directory; False if it already existed."""
        try:
            os.mkdir(path, 0o755)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            err = CgroupError(f"cannot create cgroup {path}: {e.strerror}")
            err.errno = e.errno
            raise err from None

    def rmdir(self, path: str, timeout: float = 5.0) -> bool:
        """Remove a cgroup directory; False if it was already gone.

        ``EBUSY`` is retried for ``timeout`` seconds: a cgroup whose last task
        just exited stays busy for a moment.
        """
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                os.rmdir(path)
                return True
            except FileNotFoundError:
                return False
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {path}: {e.strerror}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


REAL = CgroupFS()


def procs(fs: CgroupFS, path: str) -> list[int]:
    """The pids listed in a cgroup's ``cgroup.procs`` (empty if the cgroup is gone)."""
    try:
        text = fs.read(os.path.join(path, "cgroup.procs"))
    except CgroupError:
        if not fs.isdir(path):
            return []
        raise
    return [int(p) for p in text.split()]
