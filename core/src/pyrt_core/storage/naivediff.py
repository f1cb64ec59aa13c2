"""Diffs for drivers that cannot make them natively: compare the mounted directories.

:class:`~pyrt_core.storage.driver.NaiveDiffDriver` calls :func:`changes` and
:func:`diff`: they mount a layer and its parent with the driver's ``get``,
compare the trees (:func:`pyrt_core.archive.changes.compare_trees`, which
documents what counts as a change), tar the changes
(:func:`pyrt_core.archive.pack.pack_paths`) and release the mounts with
``put``.
"""
from __future__ import annotations

from typing import Iterator

from ..archive.changes import Change, compare_trees
from ..archive.pack import pack_paths

__all__ = ["changes", "diff"]


def changes(driver, id: str, parent: str | None) -> list[Change]:
    """Changes of layer ``id`` against layer ``parent``, comparing their
    mounted directories."""
    new_root = driver.get(id)
    try:
        if parent is None:
            return compare_trees(new_root, None)
        old_root = driver.get(parent)
        try:
            return compare_trees(new_root, old_root)
        finally:
            driver.put(parent)
    finally:
        driver.put(id)


def diff(driver, id: str, parent: str | None) -> Iterator[bytes]:
    """The layer tar of ``id`` against ``parent`` in chunks; ``id`` stays
    mounted while the tar is produced and is released when the generator
    ends, fails or is closed."""
    chs = changes(driver, id, parent)
    root = driver.get(id)
    try:
        yield from pack_paths(root, chs)
    finally:
        driver.put(id)
