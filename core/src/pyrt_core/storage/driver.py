"""The storage driver contract.

A driver stores layers keyed by id, each optionally with a parent, and
gives out mounted directories for them.  Image layers are created with
``create`` and filled with ``apply_diff``; a container's writable layer is
made with ``create_rw``.  Drivers are classes registered in the
``pyrt.storage.drivers`` entry-point group under a short name ("overlay",
"btrfs", ...) and are constructed as ``Driver(home, options)``.

The constructor probes the host and raises
:class:`~pyrt_core.errors.DriverNotSupported` (the kernel or filesystem
cannot do it) or :class:`~pyrt_core.errors.DriverPrerequisitesMissing` (a
tool or filesystem is missing); automatic selection moves on to the next
driver only for those two errors.

Drivers that cannot produce diffs natively inherit :class:`NaiveDiffDriver`,
which compares files of a mounted layer against its parent (what the talk
calls "Docker compares the files by hand").

All methods are called with the store lock held by the engine, so a driver
need not guard its own files against concurrent pyrt processes.
"""
from __future__ import annotations

import abc

TYPE_CHECKING = False  # (not typing's: every command that touches a layer imports this)
if TYPE_CHECKING:
    from typing import BinaryIO, Iterator

    from ..archive.changes import Change

__all__ = ["Change", "StorageDriver", "NaiveDiffDriver"]


def __getattr__(name):
    """``Change``, the result type of ``changes``: part of this contract, so drivers import
    it from here; loaded when first asked for (it is an attrs class: ``rm`` and ``stop``,
    which unmount and remove layers, never need it)."""
    if name == "Change":
        from ..archive.changes import Change

        return Change
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class StorageDriver(abc.ABC):
    """Base class of every storage driver."""

    #: the entry-point name, set by subclasses
    name: str = ""

    def __init__(self, home: str, options: dict[str, str] | None = None):
        """Probe the host and prepare ``home`` (the driver's private directory).

        ``options`` are the driver's ``--storage-opt`` / config settings with
        the driver prefix stripped (``{"size": "10G"}``).  Unknown options
        raise :class:`~pyrt_core.errors.UsageError`.
        """
        self.home = home
        self.options = dict(options or {})

    # -- layers -----------------------------------------------------------
    @abc.abstractmethod
    def create(self, id: str, parent: str | None) -> None:
        """Create an (image) layer ``id`` on top of ``parent`` (None for a base)."""

    def create_rw(self, id: str, parent: str | None, options: dict[str, str] | None = None) -> None:
        """Create a container's writable layer.  ``options``: per-container
        storage options such as ``size``; drivers that cannot honour one raise
        :class:`~pyrt_core.errors.UsageError`."""
        if options:
            from ..errors import UsageError

            raise UsageError(
                f"storage driver {self.name!r} does not support storage options "
                f"{', '.join(sorted(options))}"
            )
        self.create(id, parent)

    @abc.abstractmethod
    def remove(self, id: str) -> None:
        """Remove layer ``id`` (unmounting it first).  Removing a missing layer is not an error."""

    @abc.abstractmethod
    def exists(self, id: str) -> bool:
        """Whether layer ``id`` exists."""

    @abc.abstractmethod
    def get(self, id: str) -> str:
        """Mount layer ``id`` (with its parents) and return the directory."""

    @abc.abstractmethod
    def put(self, id: str) -> None:
        """Release the mount made by ``get``.  A layer not mounted is not an error."""

    def status(self) -> list[tuple[str, str]]:
        """(key, value) pairs shown by ``pyrt info``."""
        return [("Home", self.home)]

    def metadata(self, id: str) -> dict[str, str]:
        """Driver-specific facts about one layer, shown by ``inspect``."""
        return {}

    def cleanup(self) -> None:
        """Release everything the driver holds (mounts), at engine shutdown."""

    # -- diffs --------------------------------------------------------------
    @abc.abstractmethod
    def diff(self, id: str, parent: str | None) -> Iterator[bytes]:
        """The changes of ``id`` against ``parent`` as an uncompressed layer tar
        (image format: whiteouts as ``.wh.`` entries), in chunks."""

    @abc.abstractmethod
    def changes(self, id: str, parent: str | None) -> list[Change]:
        """The list of changed paths of ``id`` against ``parent``, sorted by path."""

    @abc.abstractmethod
    def apply_diff(self, id: str, parent: str | None, tar: BinaryIO) -> int:
        """Apply an uncompressed image-format layer tar to layer ``id``
        (created with ``create(id, parent)`` and still empty); return the
        number of bytes of content written.  Entries that escape the layer
        raise :class:`~pyrt_core.errors.LayerError`."""

    def diff_size(self, id: str, parent: str | None) -> int:
        """Size in bytes of the files changed in ``id`` against ``parent``."""
        import os

        size = 0
        if not self.exists(id):
            return 0
        root = self.get(id)
        try:
            for ch in self.changes(id, parent):
                if ch.kind == "D":
                    continue
                try:
                    st = os.lstat(root + ch.path)
                except OSError:
                    continue
                if not (st.st_mode & 0o170000) == 0o040000:
                    size += st.st_size
        finally:
            self.put(id)
        return size

    # -- helpers for the engine -------------------------------------------------
    def supports_parallel_apply(self) -> bool:
        """Whether layers of one image can be applied concurrently (they do not
        depend on their parent's content on disk)."""
        return False


class NaiveDiffDriver(StorageDriver):
    """A driver whose diffs are computed by comparing mounted directories.

    Subclasses implement ``create``, ``remove``, ``exists``, ``get``, ``put``.
    A layer's ``create`` must make it start as a copy of (or snapshot of) its
    parent, so ``apply_diff`` applies the tar with deletions on top.
    """

    def diff(self, id, parent):
        from . import naivediff

        return naivediff.diff(self, id, parent)

    def changes(self, id, parent):
        from . import naivediff

        return naivediff.changes(self, id, parent)

    def apply_diff(self, id, parent, tar):
        from ..archive.unpack import apply_layer

        root = self.get(id)
        try:
            return apply_layer(tar, root, whiteouts="delete")
        finally:
            self.put(id)
