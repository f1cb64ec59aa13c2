"""The local image store: content-addressed blobs, the image index and the
layer index, on top of a storage driver.

Layout under ``root``::

    images/blobs/sha256/<hex>   config and manifest blobs (content addressed)
    images/images.json          {"images": {id: Image.to_dict()}, "names": {name: id}}
    storage/layers.json         {"layers": {chain_id: record}, "pending": bool, "driver": name}
    storage.lock                the store lock (flock)

An image's id is its config blob's digest; its layers are chain ids
(:mod:`pyrt_core.images.digests`), so a layer shared by several images is stored
once.  Layer records carry
the diff id, the parent chain id, the content size the driver reported, the
uncompressed tar size and an ``incomplete`` mark that is set before any
driver work and cleared when the diff has been applied and verified.

Every change takes the store lock (:class:`~pyrt_core.fsutil.FileLock`,
exclusive) and writes the index files atomically.  Driver calls happen with
the lock held, as the driver contract requires.  Lookups (``get``, ``list``,
``layers_of``) read the index files without the lock: they are only ever
replaced by rename, so a reader sees one whole version.

Several changes that must succeed or fail together go through
:meth:`ImageStore.batch`: on an exception everything made inside the batch
(layers, blobs, image index changes) is undone.
"""
from __future__ import annotations

import _thread
import os

from .. import fsutil
from ..errors import (
    ConflictError,
    ImageError,
    LayerError,
    NotFoundError,
    PyrtError,
    StorageError,
)
from ..models import Image, Layer
from .digests import HashingReader, check_digest, is_digest, is_hex, sha256, sha256_digest
from .names import assign_name, name_key, name_priority, normalize_name

TYPE_CHECKING = False  # (not typing's: run opens the store, see docs/architecture.md)
if TYPE_CHECKING:
    from typing import BinaryIO, Callable, Iterable, Sequence

    from ..storage.driver import StorageDriver
    from .batch import LayerOpener

_CHUNK = 1 << 20


class ImageStore:
    """Images and layers under ``root`` on top of ``driver``.

    ``in_use(image_id)`` (optional) tells :meth:`remove` whether containers
    use an image: it returns something falsy when none does, else ``True``
    or the ids/names of the containers.
    """

    def __init__(self, root: str, driver: StorageDriver, driver_name: str,
                 in_use: Callable[[str], object] | None = None):
        self.root = os.path.abspath(root)
        self.driver = driver
        self.driver_name = driver_name
        self.in_use = in_use
        self.images_dir = os.path.join(self.root, "images")
        self.blobs_dir = os.path.join(self.images_dir, "blobs", "sha256")
        self.images_path = os.path.join(self.images_dir, "images.json")
        self.layers_path = os.path.join(self.root, "storage", "layers.json")
        self.lock_path = os.path.join(self.root, "storage.lock")
        self._tls = _thread._local()  # threading's local and RLock, without threading
        self._mutex = _thread.RLock()  # index read-modify-write between threads of one batch
        os.makedirs(self.blobs_dir, exist_ok=True)
        os.makedirs(os.path.dirname(self.layers_path), exist_ok=True)
        data = self._read_layers_file()
        recorded = data.get("driver")
        if recorded and recorded != driver_name and data.get("layers"):
            raise StorageError(
                f"the layer store at {self.root} belongs to storage driver {recorded!r}, "
                f"not {driver_name!r}"
            )

    # -- locking ------------------------------------------------------------
    def _locked(self) -> _StoreLock:
        """The store lock, re-entrant within one thread (a ``with`` block)."""
        return _StoreLock(self)

    # -- index files -----------------------------------------------------------
    def _read_json(self, path: str, default):
        try:
            return fsutil.read_json(path, default)
        except ValueError as e:
            raise StorageError(f"{path} is corrupt: {e}") from None

    def _read_layers_file(self) -> dict:
        data = self._read_json(self.layers_path, None) or {}
        data.setdefault("layers", {})
        return data

    def _write_layers_file(self, data: dict) -> None:
        data["driver"] = self.driver_name
        data["version"] = 1
        fsutil.write_json(self.layers_path, data)

    def _read_images(self) -> dict[str, Image]:
        data = self._read_json(self.images_path, None) or {}
        return {i: Image.from_dict(d) for i, d in (data.get("images") or {}).items()}

    def _read_repo_digests(self) -> dict[str, list[str]]:
        data = self._read_json(self.images_path, None) or {}
        return {i: list(v) for i, v in (data.get("repo_digests") or {}).items()}

    def _write_images(self, images: dict[str, Image],
                      repo_digests: dict[str, list[str]] | None = None) -> None:
        names = {}
        for img in images.values():
            for n in img.names:
                names[n] = img.id
        if repo_digests is None:
            repo_digests = self._read_repo_digests()
        fsutil.write_json(self.images_path, {
            "version": 1,
            "images": {i: img.to_dict() for i, img in images.items()},
            "names": names,
            "repo_digests": {i: v for i, v in repo_digests.items() if i in images and v},
        })

    def repo_digests(self, image: str | Image) -> list[str]:
        """``registry/repo@digest`` references the image was pulled or pushed by
        (the digest of the manifest, or of the manifest list the reference named)."""
        img = image if isinstance(image, Image) else self.get(image)
        out = list(self._read_repo_digests().get(img.id, []))
        if img.digest:
            for n in img.names:
                base = n.rsplit(":", 1)[0] if ":" in n.rsplit("/", 1)[-1] else n
                rd = f"{base}@{img.digest}"
                if rd not in out and not any(r.startswith(base + "@") for r in out):
                    out.append(rd)
        return out

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record that ``repo@digest`` names the image (lock taken)."""
        with self._locked(), self._mutex:
            rds = self._read_repo_digests()
            lst = rds.setdefault(image_id, [])
            if repo_digest not in lst:
                lst.append(repo_digest)
            self._write_images(self._read_images(), rds)

    def image_blobs(self, img: Image, repo_digests: dict[str, list[str]] | None = None) -> set[str]:
        """Every blob an image owns in the blob store: its config, manifest,
        the compressed layer blobs the manifest lists (when kept) and the
        manifest lists of its repo digests."""
        out = {img.id}
        if img.digest:
            out.add(img.digest)
            import json  # (rmi and prune: not run's path)

            try:
                doc = json.loads(self.read_blob(img.digest))
                for ld in doc.get("layers") or []:
                    if isinstance(ld, dict) and isinstance(ld.get("digest"), str) \
                            and is_digest(ld["digest"]):
                        out.add(ld["digest"])
            except (PyrtError, ValueError, AttributeError, UnicodeDecodeError):
                pass
        rds = self._read_repo_digests() if repo_digests is None else repo_digests
        for rd in rds.get(img.id, []):
            d = rd.rpartition("@")[2]
            if is_digest(d):
                out.add(d)
        return out

    @staticmethod
    def _layer_from_record(cid: str, rec: dict) -> Layer:
        return Layer(chain_id=cid, diff_id=rec["diff_id"], parent=rec.get("parent"),
                     size=rec.get("size", 0), incomplete=bool(rec.get("incomplete")))

    def _update_layers(self, fn) -> None:
        with self._mutex:
            data = self._read_layers_file()
            fn(data)
            self._write_layers_file(data)

    # -- blobs -------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        check_digest(digest, "blob digest")
        return os.path.join(self.blobs_dir, digest.split(":", 1)[1])

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found in the image store") from None

    def put_blob(self, data: bytes | BinaryIO, expected_digest: str | None = None) -> str:
        """Store a blob, verifying ``expected_digest`` while streaming; return its digest.
        A mismatch raises :class:`ImageError` and stores nothing."""
        with self._locked():
            digest, _ = self._put_blob(data, expected_digest)
            return digest

    def _put_blob(self, data, expected_digest=None) -> tuple[str, bool]:
        """Returns (digest, created)."""
        if expected_digest is not None:
            check_digest(expected_digest, "blob digest")
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
            digest = sha256_digest(data)
            if expected_digest and digest != expected_digest:
                raise ImageError(f"blob digest mismatch: expected {expected_digest}, got {digest}")
            path = self.blob_path(digest)
            if os.path.exists(path):
                return digest, False
            fsutil.atomic_write(path, data)
            return digest, True
        tmp = fsutil.temp_path(os.path.join(self.blobs_dir, "blob"))
        h = sha256()
        try:
            with open(tmp, "xb") as f:
                while True:
                    chunk = data.read(_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            digest = "sha256:" + h.hexdigest()
            if expected_digest and digest != expected_digest:
                raise ImageError(f"blob digest mismatch: expected {expected_digest}, got {digest}")
            path = self.blob_path(digest)
            if os.path.exists(path):
                os.unlink(tmp)
                return digest, False
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return digest, True

    # -- layers ------------------------------------------------------------------
    def layer(self, chain_id: str) -> Layer:
        rec = self._read_layers_file()["layers"].get(chain_id)
        if rec is None:
            raise NotFoundError(f"layer {chain_id} not found")
        return self._layer_from_record(chain_id, rec)

    def layers(self) -> list[Layer]:
        return [self._layer_from_record(c, r) for c, r in self._read_layers_file()["layers"].items()]

    def diff_size(self, diff_id: str) -> int | None:
        """Size of the uncompressed layer tar with this diff id, if a layer has it."""
        for rec in self._read_layers_file()["layers"].values():
            if rec.get("diff_id") == diff_id and not rec.get("incomplete"):
                return rec.get("tar_size")
        return None

    def add_layer(self, diff_id: str, parent_chain_id: str | None, tar_stream: BinaryIO) -> Layer:
        """Apply one uncompressed layer tar on top of ``parent_chain_id`` (reusing
        the layer if it is already stored).  The stream's sha256 must equal
        ``diff_id``; otherwise :class:`ImageError` and nothing is kept."""
        with self.batch() as b:
            return b.add_layer(diff_id, parent_chain_id, lambda: tar_stream)

    def _prepare_layer(self, cid: str, diff_id: str, parent: str | None,
                       parent_may_be_incomplete: bool = False) -> Layer | None:
        """With the lock held: the stored complete layer, or None after marking
        ``cid`` incomplete and creating it in the driver.  The parent must be
        complete, except for parallel apply (it is then being applied too)."""
        check_digest(diff_id, "layer diff id")
        layers = self._read_layers_file()["layers"]
        rec = layers.get(cid)
        if rec is not None and not rec.get("incomplete") and self.driver.exists(Layer(cid, diff_id).driver_id):
            return self._layer_from_record(cid, rec)
        if parent is not None:
            prec = layers.get(parent)
            if prec is None or (prec.get("incomplete") and not parent_may_be_incomplete):
                raise StorageError(f"parent layer {parent} of {cid} is not in the store")
        layer = Layer(chain_id=cid, diff_id=diff_id, parent=parent, incomplete=True)
        # a leftover of a crashed attempt (we hold the lock: nobody is working on it)
        if rec is not None or self.driver.exists(layer.driver_id):
            self.driver.remove(layer.driver_id)

        def mark(data):
            data["layers"][cid] = {"diff_id": diff_id, "parent": parent, "size": 0,
                                   "tar_size": 0, "incomplete": True}
        self._update_layers(mark)
        try:
            self.driver.create(layer.driver_id, Layer(parent, "").driver_id if parent else None)
        except BaseException:
            self._drop_layer(cid)
            raise
        return None

    def _apply_layer(self, cid: str, diff_id: str, parent: str | None, opener: LayerOpener) -> tuple[int, int]:
        did = Layer(cid, diff_id).driver_id
        pdid = Layer(parent, "").driver_id if parent else None
        stream = None
        try:
            stream = opener()
            hr = HashingReader(stream)
            size = self.driver.apply_diff(did, pdid, hr)
            hr.drain()
        except PyrtError:
            raise
        except OSError as e:
            import gzip

            if isinstance(e, gzip.BadGzipFile):
                raise LayerError(f"layer {diff_id}: {e}") from e
            raise StorageError(f"applying layer {diff_id}: {e}") from e
        except Exception as e:  # tarfile.TarError, EOFError, zlib.error, ValueError ...
            msg = str(e) or type(e).__name__
            raise LayerError(f"layer {diff_id}: {msg}") from e
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    pass
        if hr.digest != diff_id:
            raise ImageError(
                f"layer {diff_id}: content digest mismatch (the uncompressed layer is {hr.digest})"
            )
        return int(size or 0), hr.count

    def _finish_layer(self, cid: str, size: int, tar_size: int) -> Layer:
        def done(data):
            rec = data["layers"][cid]
            rec.update(size=size, tar_size=tar_size, incomplete=False)
        self._update_layers(done)
        return self.layer(cid)

    def _drop_layer(self, cid: str) -> None:
        """Remove a layer from the driver and the index (lock held)."""
        did = Layer(cid, "").driver_id
        self.driver.remove(did)
        self._update_layers(lambda data: data["layers"].pop(cid, None))

    # -- batches -------------------------------------------------------------------
    def batch(self):
        """Hold the store lock for several changes that must all happen or none (a
        ``with`` block).

        Yields a :class:`Batch`; an exception inside the block removes the
        layers and blobs it created and restores the image index."""
        import contextlib  # (pulls, loads, commits: not the commands that only read)

        return contextlib.contextmanager(self._batch)()

    def _batch(self):
        from .batch import Batch  # not needed by commands that only read the store

        with self._locked():
            b = Batch(self)
            self._update_layers(lambda data: data.__setitem__("pending", True))
            try:
                yield b
            except BaseException:
                b._rollback()
                raise
            self._update_layers(lambda data: data.__setitem__("pending", False))

    def add_image(self, config_bytes: bytes, layers: Sequence[tuple[str, LayerOpener]],
                  manifest_bytes: bytes | None = None, names: Iterable[str] = (),
                  parallel: bool | None = None) -> Image:
        """Store an image (see :meth:`Batch.add_image`) in a batch of its own."""
        with self.batch() as b:
            return b.add_image(config_bytes, layers, manifest_bytes=manifest_bytes,
                               names=names, parallel=parallel)

    # -- lookups ---------------------------------------------------------------------
    def list(self) -> list[Image]:
        """All images, newest first."""
        imgs = list(self._read_images().values())
        imgs.sort(key=lambda i: (i.created or "", i.id), reverse=True)
        return imgs

    def get(self, ref: str | Image) -> Image:
        """An image by id, id prefix (>= 3 hex digits, with or without
        ``sha256:``), name (``busybox`` = ``busybox:latest``; ``docker.io/library/``
        and ``localhost/`` prefixes are equivalent) or ``name@digest``."""
        images = self._read_images()
        iid, _ = self._resolve(images, ref)
        return images[iid]

    def exists(self, ref: str | Image) -> bool:
        try:
            self.get(ref)
            return True
        except NotFoundError:
            return False

    def layers_of(self, image: str | Image) -> list[Layer]:
        """The image's layers, base first."""
        img = image if isinstance(image, Image) else self.get(image)
        recs = self._read_layers_file()["layers"]
        out = []
        for cid in img.layers:
            rec = recs.get(cid)
            if rec is None:
                raise StorageError(f"layer {cid} of image {img.short_id} is missing from the store")
            out.append(self._layer_from_record(cid, rec))
        return out

    def config_bytes(self, image: str | Image) -> bytes:
        """The image's full config blob."""
        img = image if isinstance(image, Image) else self.get(image)
        return self.read_blob(img.id)

    def _resolve_name(self, images: dict[str, Image], ref: str) -> tuple[str, str] | None:
        """(image id, stored name) for a name, or None."""
        names = {n: i.id for i in images.values() for n in i.names}
        if ref in names:
            return names[ref], ref
        base, _, digest = ref.partition("@")
        if digest:
            key = name_key(base)
            if key is None:
                return None
            key = key[:2]
            for img in images.values():
                if img.digest == digest and any((name_key(n) or ())[:2] == key for n in img.names):
                    return img.id, ""
            for iid, rds in self._read_repo_digests().items():
                for rd in rds:
                    rbase, _, rdig = rd.rpartition("@")
                    if rdig == digest and iid in images and (name_key(rbase) or ())[:2] == key:
                        return iid, ""
            return None
        if ":" not in ref.rsplit("/", 1)[-1] and ref + ":latest" in names:
            return names[ref + ":latest"], ref + ":latest"
        key = name_key(ref)
        if key is None:
            return None
        cands = sorted((n for n in names if name_key(n) == key), key=lambda n: (name_priority(n), n))
        if cands:
            return names[cands[0]], cands[0]
        return None

    def _resolve(self, images: dict[str, Image], ref) -> tuple[str, str | None]:
        """(image id, the stored name it was found by, or None when by id)."""
        if isinstance(ref, Image):
            ref = ref.id
        if not isinstance(ref, str) or not ref.strip():
            raise NotFoundError(f"no such image: {ref!r}")
        ref = ref.strip()
        if ref in images:
            return ref, None
        hexpart = ref[len("sha256:"):] if ref.startswith("sha256:") else None
        if hexpart is None:
            if len(ref) == 64 and is_hex(ref) and "sha256:" + ref in images:
                return "sha256:" + ref, None
            found = self._resolve_name(images, ref)
            if found:
                return found
            hexpart = ref
        if len(hexpart) >= 3 and is_hex(hexpart):
            matches = [i for i in images if i.startswith("sha256:" + hexpart)]
            if len(matches) == 1:
                return matches[0], None
            if len(matches) > 1:
                raise ConflictError(f"image id prefix {ref!r} is ambiguous ({len(matches)} images match)")
        raise NotFoundError(f"no such image: {ref}")

    # -- names -------------------------------------------------------------------------
    def tag(self, image: str | Image, new_name: str) -> Image:
        """Point ``new_name`` (``repo[:tag]``) at the image, taking it from any other image."""
        name = normalize_name(new_name)
        with self._locked():
            images = self._read_images()
            iid, _ = self._resolve(images, image)
            assign_name(images, iid, name)
            self._write_images(images)
        self.event("tag", iid, name)
        return images[iid]

    def untag(self, name: str) -> Image:
        """Remove a name; the image stays (possibly without names).  Returns it."""
        with self._locked():
            images = self._read_images()
            found = self._resolve_name(images, name.strip())
            if not found or not found[1]:
                raise NotFoundError(f"no such image name: {name}")
            iid, stored = found
            images[iid].names.remove(stored)
            self._write_images(images)
        self.event("untag", iid, stored)
        return images[iid]

    def event(self, action: str, image_id: str, name: str) -> None:
        """Journal an image event (pyrt_core.events: ``pyrt events``), docker's shape:
        the image's id, its ``name``."""
        from ..events import emit

        emit(self.root, "image", action, image_id, {"name": name})

    # -- removal (pyrt_core.images.removal) ---------------------------------------------
    def remove(self, ref: str | Image, force: bool = False) -> list[str]:
        """``rmi`` as docker does it.  Returns the report lines
        (``Untagged: NAME`` / ``Deleted: ID``).

        By name: the name is removed; the image is deleted with it when it
        was the last name.  By id: every name is removed and the image
        deleted (an image with several names needs ``force``).  Layers no
        other image uses are removed from the driver.  An image that
        containers use is not deleted: without ``force`` it is a
        :class:`ConflictError`; with ``force`` its names are removed and the
        image is kept (untagged) for those containers.
        """
        from .removal import remove

        return remove(self, ref, force)

    def prune(self, all_images: bool = False, match=None) -> list[str]:
        """``image prune``: delete dangling images (no names), or with
        ``all_images`` every image no container uses; also drop leftover
        downloads.  ``match(created, labels)``: only the images it accepts (the
        ``--filter``s).  Returns the report lines."""
        from .removal import prune

        return prune(self, all_images, match)

    def recover(self) -> list[str]:
        """Undo what an interrupted process left: incomplete layers, and (after an
        interrupted batch or removal) layers no image uses.  Cheap when there is
        nothing to do; skipped when another process holds the store lock.
        Returns the removed chain ids."""
        data = self._read_layers_file()
        if not data.get("pending") and not any(r.get("incomplete") for r in data["layers"].values()):
            return []  # the usual case, at every start: no need to import the removal code
        from .removal import recover

        return recover(self)


class _StoreLock:
    """:meth:`ImageStore._locked`: the store's file lock, taken by the outermost ``with``
    of a thread (a class, not ``contextlib.contextmanager``: contextlib, with
    collections and functools, is ~3 ms of ``run``'s start-up, which reads the store)."""

    __slots__ = ("store", "lock")

    def __init__(self, store: ImageStore) -> None:
        self.store, self.lock = store, None

    def __enter__(self) -> None:
        tls = self.store._tls
        depth = getattr(tls, "depth", 0)
        if depth:
            tls.depth = depth + 1
            return
        lock = fsutil.FileLock(self.store.lock_path)
        lock.acquire()
        self.lock = lock
        tls.depth = 1

    def __exit__(self, *exc) -> bool:
        tls = self.store._tls
        if self.lock is None:
            tls.depth -= 1
        else:
            tls.depth = 0
            lock, self.lock = self.lock, None
            lock.release()
        return False
