"""Removing images (``rmi``, ``image prune``) and what they leave: the layers and
blobs no image uses any more, and (:func:`recover`) what an interrupted process left.

Functions of an :class:`~pyrt_core.images.store.ImageStore`, which calls them from
its ``remove``, ``prune`` and ``recover``; they use its index files and lock.  An
image record is dropped first, with the layer index marked "pending", then the layers
(children first) and blobs no other image uses; the mark is cleared at the end, so
an interrupted removal is finished by the next :func:`recover`.
"""
from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterable

from .. import fsutil
from ..errors import ConflictError, ImageError
from ..models import Image
from .digests import is_hex

if TYPE_CHECKING:
    from .store import ImageStore

__all__ = ["remove", "prune", "recover"]


def remove(store: ImageStore, ref: str | Image, force: bool = False) -> list[str]:
    """``rmi``: see :meth:`ImageStore.remove <pyrt_core.images.store.ImageStore.remove>`."""
    with store._locked():
        images = store._read_images()
        iid, by_name = store._resolve(images, ref)
        img = images[iid]
        out: list[str] = []
        if by_name and len(img.names) > 1:
            img.names.remove(by_name)
            store._write_images(images)
            store.event("untag", iid, by_name)
            return [f"Untagged: {by_name}"]
        if not by_name and len(img.names) > 1 and not force:
            raise ConflictError(
                f"unable to delete {img.short_id} (must be forced) - image is referenced "
                f"in multiple repositories ({', '.join(img.names)})"
            )
        users = store.in_use(iid) if store.in_use is not None else None
        if users:
            who = ""
            if not isinstance(users, bool) and isinstance(users, Iterable):
                users = sorted(str(u) for u in users)
                who = " " + ", ".join(users[:3]) + (" ..." if len(users) > 3 else "")
            if not force:
                what = f"repository reference {by_name!r}" if by_name else img.short_id
                raise ConflictError(
                    f"unable to remove {what} (must force) - image {img.short_id} "
                    f"is used by container(s){who}"
                )
            out = [f"Untagged: {n}" for n in img.names]
            names, img.names = img.names, []
            store._write_images(images)
            for n in names:
                store.event("untag", iid, n)
            return out
        out = [f"Untagged: {n}" for n in img.names]
        _delete_image(store, images, img)
        out.append(f"Deleted: {iid}")
        _deleted_events(store, img)
        return out


def _deleted_events(store: ImageStore, img: Image) -> None:
    """docker's events of a deleted image: ``untag`` per name, then ``delete``."""
    for n in img.names:
        store.event("untag", img.id, n)
    store.event("delete", img.id, img.id)


def _delete_image(store: ImageStore, images: dict[str, Image], img: Image) -> None:
    """Drop an image record, then the layers and blobs no other image uses (lock held)."""
    rds = store._read_repo_digests()
    blobs = store.image_blobs(img, rds)
    del images[img.id]
    store._update_layers(lambda data: data.__setitem__("pending", True))
    store._write_images(images, rds)
    _gc_layers(store, images, img.layers)
    _gc_blobs(store, images, blobs)
    store._update_layers(lambda data: data.__setitem__("pending", False))


def prune(store: ImageStore, all_images: bool = False, match=None) -> list[str]:
    """``image prune``: see :meth:`ImageStore.prune <pyrt_core.images.store.ImageStore.prune>`."""
    out: list[str] = []
    with store._locked():
        images = store._read_images()
        for img in list(images.values()):
            if img.names and not all_images:
                continue
            if store.in_use is not None and store.in_use(img.id):
                continue
            if match is not None and not match(img.created, img.config.labels):
                continue
            out += [f"Untagged: {n}" for n in img.names]
            _delete_image(store, images, img)
            out.append(f"Deleted: {img.id}")
            _deleted_events(store, img)
        ddir = os.path.join(store.images_dir, "downloads")
        if os.path.isdir(ddir):
            import shutil

            shutil.rmtree(ddir, ignore_errors=True)
        _gc_orphan_blobs(store, images)
    return out


def _gc_orphan_blobs(store: ImageStore, images: dict[str, Image]) -> None:
    """Remove blobs no image owns (left by an interrupted pull or removal)."""
    rds = store._read_repo_digests()
    used = set()
    for img in images.values():
        used |= store.image_blobs(img, rds)
    try:
        names = os.listdir(store.blobs_dir)
    except FileNotFoundError:
        return
    for n in names:
        if len(n) == 64 and is_hex(n) and "sha256:" + n not in used:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(store.blobs_dir, n))


def _gc_layers(store: ImageStore, images: dict[str, Image], candidates: Iterable[str] | None) -> list[str]:
    """Remove layers (of ``candidates``, or all) that no image uses; children first."""
    used = {c for img in images.values() for c in img.layers}
    recs = store._read_layers_file()["layers"]
    pool = set(recs) if candidates is None else set(candidates) & set(recs)
    doomed = [c for c in pool if c not in used]

    def depth(c):
        d = 0
        while c in recs and recs[c].get("parent"):
            c = recs[c]["parent"]
            d += 1
        return d

    doomed.sort(key=depth, reverse=True)
    # a doomed layer that is the parent of a kept layer must stay
    keep_parents = {recs[c].get("parent") for c in recs if c not in doomed}
    removed = []
    for c in doomed:
        if c in keep_parents:
            continue
        store._drop_layer(c)
        removed.append(c)
    return removed


def _gc_blobs(store: ImageStore, images: dict[str, Image], candidates: Iterable[str | None]) -> None:
    rds = store._read_repo_digests()
    used: set[str] = set()
    for i in images.values():
        used |= store.image_blobs(i, rds)
    for d in candidates:
        if d and d not in used:
            with contextlib.suppress(FileNotFoundError, ImageError):
                os.unlink(store.blob_path(d))


def recover(store: ImageStore) -> list[str]:
    """Undo what an interrupted process left: incomplete layers, and (after an
    interrupted batch or removal) layers no image uses.  Cheap when there is
    nothing to do; skipped when another process holds the store lock.
    Returns the removed chain ids."""
    data = store._read_layers_file()
    if not data.get("pending") and not any(r.get("incomplete") for r in data["layers"].values()):
        return []
    lock = fsutil.FileLock(store.lock_path)
    if not lock.acquire(blocking=False):
        return []  # someone is working; their state is consistent when they finish
    store._tls.depth = 1
    try:
        data = store._read_layers_file()
        removed = []
        incomplete = [c for c, r in data["layers"].items() if r.get("incomplete")]
        images = store._read_images()
        used = {c for img in images.values() for c in img.layers}
        # children first, so a driver never loses a parent under a child
        incomplete.sort(key=lambda c: c in used)
        for c in incomplete:
            store._drop_layer(c)
            removed.append(c)
        if data.get("pending"):
            removed += _gc_layers(store, images, None)
            for d in (store.images_dir, store.blobs_dir, os.path.dirname(store.layers_path)):
                fsutil.clean_temp_files(d)
            store._update_layers(lambda d: d.__setitem__("pending", False))
        return removed
    finally:
        store._tls.depth = 0
        lock.release()
