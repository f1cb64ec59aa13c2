"""The vfs storage driver: every layer is a full copy of its parent.

Layers are plain directories ``<home>/dir/<id>``.  Creating a layer copies
its parent's whole tree (:func:`~pyrt_core.storage.copy.copy_tree`), so
nothing needs mounting and it works on any filesystem, at the cost of time
and space.  Diffs are computed by comparing trees (:class:`NaiveDiffDriver`).
"""
from __future__ import annotations

import os

from ..errors import ConflictError, NotFoundError, StorageError, UsageError
from .copy import copy_tree, remove_tree as _rmtree
from .driver import NaiveDiffDriver

_ID_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ID_CHARS = _ID_FIRST | frozenset("_.-")


def check_layer_id(id: str) -> None:
    """Layer ids become directory names: refuse anything else
    (``[A-Za-z0-9][A-Za-z0-9_.-]{0,127}``, without ``re``: every ``rm`` checks one)."""
    if (not isinstance(id, str) or not 0 < len(id) <= 128 or id[0] not in _ID_FIRST
            or not _ID_CHARS.issuperset(id)):
        raise UsageError(f"invalid layer id {id!r}")


class VfsDriver(NaiveDiffDriver):
    """Layers as plain directories, each a full copy of its parent."""

    name = "vfs"

    def __init__(self, home: str, options: dict[str, str] | None = None):
        super().__init__(home, options)
        if self.options:
            raise UsageError(
                "storage driver 'vfs' has no options (got " + ", ".join(sorted(self.options)) + ")"
            )
        self._dir = os.path.join(home, "dir")
        os.makedirs(self._dir, mode=0o700, exist_ok=True)

    def _path(self, id: str) -> str:
        check_layer_id(id)
        return os.path.join(self._dir, id)

    # -- layers -------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        path = self._path(id)
        if os.path.lexists(path):
            raise ConflictError(f"layer {id} already exists")
        tmp = os.path.join(self._dir, f".tmp-{id}-{os.getpid()}")
        _rmtree(tmp)
        try:
            if parent is None:
                os.mkdir(tmp, 0o755)
                os.chmod(tmp, 0o755)  # not subject to the umask
            else:
                ppath = self._path(parent)
                if not os.path.isdir(ppath):
                    raise NotFoundError(f"parent layer {parent} does not exist")
                try:
                    copy_tree(ppath, tmp)
                except OSError as e:
                    raise StorageError(f"vfs: copying layer {parent} for {id}: {e}") from e
            os.rename(tmp, path)
        except BaseException:
            _rmtree(tmp)
            raise

    def remove(self, id: str) -> None:
        path = self._path(id)
        if not os.path.lexists(path):
            return
        # rename first so a half-removed layer never looks like a layer
        doomed = os.path.join(self._dir, f".removing-{id}-{os.getpid()}")
        os.rename(path, doomed)
        _rmtree(doomed)

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._path(id))

    def get(self, id: str) -> str:
        path = self._path(id)
        if not os.path.isdir(path):
            raise NotFoundError(f"layer {id} does not exist")
        return path

    def put(self, id: str) -> None:
        pass

    def status(self) -> list[tuple[str, str]]:
        return [("Home", self.home)]

    def metadata(self, id: str) -> dict[str, str]:
        return {"Dir": self.get(id)}

    def cleanup(self) -> None:
        # leftovers of an interrupted create or remove
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return
        for n in names:
            if n.startswith((".tmp-", ".removing-")):
                _rmtree(os.path.join(self._dir, n))

    def supports_parallel_apply(self) -> bool:
        return False
