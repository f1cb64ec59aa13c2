"""Several store changes that succeed or fail together: :class:`Batch`, what
:meth:`ImageStore.batch <pyrt_core.images.store.ImageStore.batch>` yields.

Everything happens under one hold of the store lock.  The batch remembers the
layers and blobs it created and the exact bytes of the index files before it
started; on an exception :meth:`Batch._rollback` removes what it made and puts
the index files back.  Layers of one image are applied up to
:data:`PARALLEL_LAYERS` at once on drivers that allow it.
"""
from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Sequence

from .. import fsutil
from ..errors import ImageError
from ..models import Image, ImageConfig, Layer
from .configcheck import parse_config
from .digests import chain_id, chain_ids
from .names import assign_name, normalize_name

if TYPE_CHECKING:
    from .store import ImageStore

__all__ = ["Batch", "LayerOpener", "PARALLEL_LAYERS"]

PARALLEL_LAYERS = 3

#: opener of one layer: returns the *uncompressed* layer tar as a stream
LayerOpener = Callable[[], BinaryIO]


class Batch:
    """Changes made under one hold of the store lock; see :meth:`ImageStore.batch`."""

    def __init__(self, store: ImageStore):
        self.store = store
        self._created_layers: list[str] = []
        self._created_blobs: list[str] = []
        self._raw_before = {p: _read_raw(p) for p in (store.images_path, store.layers_path)}

    # -- layers ---------------------------------------------------------------
    def add_layer(self, diff_id: str, parent: str | None, opener: LayerOpener) -> Layer:
        s = self.store
        cid = chain_id(parent, diff_id)
        found = s._prepare_layer(cid, diff_id, parent)
        if found is not None:
            return found
        self._created_layers.append(cid)
        size, tar_size = s._apply_layer(cid, diff_id, parent, opener)
        return s._finish_layer(cid, size, tar_size)

    def add_layers(self, layers: Sequence[tuple[str, LayerOpener]], parallel: bool | None = None) -> list[Layer]:
        """Apply a whole chain; layers already stored are reused.  With a
        driver that supports it, up to 3 layers are applied at once."""
        s = self.store
        if parallel is None:
            parallel = s.driver.supports_parallel_apply()
        if not parallel:
            out, parent = [], None
            for diff_id, opener in layers:
                layer = self.add_layer(diff_id, parent, opener)
                out.append(layer)
                parent = layer.chain_id
            return out
        cids = chain_ids([d for d, _ in layers])
        todo = []
        for i, (diff_id, opener) in enumerate(layers):
            parent = cids[i - 1] if i else None
            if s._prepare_layer(cids[i], diff_id, parent, parent_may_be_incomplete=True) is None:
                self._created_layers.append(cids[i])
                todo.append((cids[i], diff_id, parent, opener))
        if todo:
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(PARALLEL_LAYERS, thread_name_prefix="pyrt-layer") as ex:
                futs = {ex.submit(s._apply_layer, *t): t[0] for t in todo}
                first_error = None
                for fut in concurrent.futures.as_completed(futs):
                    try:
                        size, tar_size = fut.result()
                    except BaseException as e:
                        if first_error is None:
                            first_error = e
                            for f in futs:
                                f.cancel()
                        continue
                    if first_error is None:
                        s._finish_layer(futs[fut], size, tar_size)
                if first_error is not None:
                    raise first_error
        return [s.layer(c) for c in cids]

    # -- blobs and images -----------------------------------------------------------
    def put_blob(self, data, expected_digest: str | None = None) -> str:
        digest, created = self.store._put_blob(data, expected_digest)
        if created:
            self._created_blobs.append(digest)
        return digest

    def add_image(self, config_bytes: bytes, layers: Sequence[tuple[str, LayerOpener]],
                  manifest_bytes: bytes | None = None, names: Iterable[str] = (),
                  parallel: bool | None = None) -> Image:
        """Store an image: apply its layers (``(diff_id, opener)`` base first,
        matching the config's ``rootfs.diff_ids``), keep the config and
        manifest blobs, register it under ``names`` (taken from any other
        image that had them).  Loading an image that is already stored adds
        the names and reuses everything."""
        names = [normalize_name(n) for n in names]
        cfg = parse_config(config_bytes)
        diff_ids = list(cfg["rootfs"].get("diff_ids") or [])
        given = [d for d, _ in layers]
        if given != diff_ids:
            raise ImageError(
                f"the layers ({len(given)}) do not match the config's rootfs.diff_ids ({len(diff_ids)})"
                if len(given) != len(diff_ids) else
                "the layers do not match the config's rootfs.diff_ids"
            )
        stored = self.add_layers(layers, parallel=parallel)
        iid = self.put_blob(config_bytes)
        s = self.store
        with s._mutex:
            images = s._read_images()
            img = images.get(iid)
            digest = None
            if manifest_bytes is not None and (img is None or not img.digest):
                digest = self.put_blob(manifest_bytes)
            if img is None:
                img = Image(
                    id=iid,
                    names=[],
                    digest=digest,
                    layers=[l.chain_id for l in stored],
                    diff_ids=diff_ids,
                    config=ImageConfig.from_oci(cfg.get("config")),
                    architecture=str(cfg.get("architecture") or ""),
                    os=str(cfg.get("os") or "linux"),
                    created=str(cfg.get("created") or ""),
                    size=sum(l.size for l in stored),
                )
                images[iid] = img
            elif digest:
                img.digest = digest
            for n in names:
                assign_name(images, iid, n)
            s._write_images(images)
            return images[iid]

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        self.store.add_repo_digest(image_id, repo_digest)

    def adopt_blob(self, path: str, digest: str) -> None:
        """Move a verified file (same file system) into the blob store as ``digest``."""
        dest = self.store.blob_path(digest)
        if os.path.exists(dest):
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        os.chmod(path, 0o644)
        os.rename(path, dest)
        self._created_blobs.append(digest)

    # -- undo ----------------------------------------------------------------------------
    def _rollback(self) -> None:
        """Undo the batch; the index files get back their exact former bytes."""
        s = self.store
        errors = []
        try:
            _restore_raw(s.images_path, self._raw_before[s.images_path])
        except Exception as e:  # pragma: no cover - disk trouble
            errors.append(e)
        for cid in reversed(self._created_layers):
            try:
                s._drop_layer(cid)
            except Exception as e:  # pragma: no cover - driver trouble
                errors.append(e)
        for d in self._created_blobs:
            with contextlib.suppress(OSError):
                os.unlink(s.blob_path(d))
        if not errors:
            # every layer this batch made is gone: the old layer index is right again
            with contextlib.suppress(Exception):
                _restore_raw(s.layers_path, self._raw_before[s.layers_path])
        # with errors the pending mark stays, so recover() finishes the job later


def _read_raw(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _restore_raw(path: str, data: bytes | None) -> None:
    if data is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        fsutil.atomic_write(path, data)
