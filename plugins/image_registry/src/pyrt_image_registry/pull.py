"""Pull an image from a registry into the :class:`~pyrt_core.images.store.ImageStore`.

1. ``/v2/`` probe and auth (:mod:`.client`).
2. The manifest by tag or digest (``Accept`` lists every type understood);
   by digest, the body's sha256 must be that digest; a
   ``Docker-Content-Digest`` header must agree with the body.  Schema 1 is
   refused.  A manifest list / OCI index is resolved to the entry for the
   requested platform (``--platform``, default the host's).
3. The config blob (verified, parsed).  Layers whose chain is already in
   the layer store are not downloaded at all ("Already exists").
4. Layer blobs are downloaded concurrently (``max_concurrent_downloads``,
   default 3) to ``images/downloads/<hex>.partial`` while being hashed; an
   interrupted download (dropped connection, or a pull killed outright)
   resumes from the bytes already on disk with an HTTP ``Range`` request.
   A blob whose sha256 is not its digest is discarded and the pull fails.
5. Each layer is applied as soon as the driver allows: its unpacker reads
   the partial file as it grows (so unpacking overlaps the download), in
   parallel on drivers that support it, in order otherwise.  The
   uncompressed stream's sha256 must be the config's ``diff_id`` and the
   unpacker reports the end only after the download was verified, so an
   unverified layer is never marked complete.
6. Everything is stored in one store batch: a failure leaves the store as it
   was (verified downloads stay in ``images/downloads`` for the next try).
   Verified layer blobs move into the blob store, so ``push`` and ``save``
   can send them unchanged.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import http.client
import io
import json
import os
import threading
import time

from pyrt_core.errors import ImageError, NotFoundError, PyrtError, UsageError
from pyrt_core.api import (ImageStore, chain_ids, check_digest, host_platform, parse_config,
                           platform_matches, platform_of)
from pyrt_core.api import mediatypes as MT
from pyrt_core.api import short_digest as short

from .client import Client, RegistryError, split_reference
from .options import RegistryOptions
from .progress import Progress

MAX_MANIFEST = 4 << 20
MAX_CONFIG = 32 << 20
CHUNK = 1 << 20

ACCEPT = ", ".join([MT.OCI_INDEX, MT.DOCKER_LIST, MT.OCI_MANIFEST, MT.DOCKER_MANIFEST, *MT.SCHEMA1])


def _json(data: bytes, what: str):
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"malformed {what}: {' '.join(str(e).split())}") from None
    if not isinstance(doc, dict):
        raise ImageError(f"malformed {what}: not a JSON object")
    return doc


def _schema1(name: str) -> ImageError:
    return ImageError(f"{name}: the registry serves a schema 1 manifest, an obsolete image format "
                      f"pyrt does not support (push the image again with a current docker, podman or skopeo)")


def check_platform(text: str | None) -> str:
    want = text or host_platform()
    parts = want.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {want!r}: expected OS/ARCH[/VARIANT]")
    return want


def pick_platform(descs: list, want: str, name: str) -> dict:
    for d in descs:
        if isinstance(d, dict) and platform_matches(d, want):
            return d
    avail = ", ".join(sorted({platform_of(d) for d in descs if isinstance(d, dict)}))
    raise NotFoundError(f"{name}: no image for platform {want} in the manifest list (available: {avail})")


# ---------------------------------------------------------------------------
# manifests
# ---------------------------------------------------------------------------


class Remote:
    """One repository on one registry, with its client."""

    def __init__(self, ref, options: RegistryOptions, actions: str = "pull"):
        self.ref = ref
        self.host, self.repo = split_reference(ref)
        self.client = Client(self.host, options)
        self.scope = f"repository:{self.repo}:{actions}"
        self.label = f"{self.host}/{self.repo}"

    def get_manifest(self, reference: str) -> tuple[bytes, str, dict, str]:
        """(bytes, media type, parsed, digest) of a manifest by tag or digest."""
        what = f"{self.label}:{reference}" if not reference.startswith("sha256:") else f"{self.label}@{reference}"
        resp, data = self.client.request(
            "GET", f"/v2/{self.repo}/manifests/{reference}", headers={"Accept": ACCEPT},
            scope=self.scope, what=f"manifest {what}",
            not_found=f"{what}: manifest unknown (no such tag, digest or repository)")
        if len(data) > MAX_MANIFEST:
            raise ImageError(f"{what}: manifest too large ({len(data)} bytes)")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ImageError(f"{what}: manifest digest mismatch: the registry sent content with digest {digest}")
        header = (resp.getheader("Docker-Content-Digest") or "").strip()
        if header.startswith("sha256:") and header != digest:
            raise ImageError(f"{what}: manifest digest mismatch: Docker-Content-Digest says {header}, "
                             f"the content is {digest}")
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        if ctype in MT.SCHEMA1:
            raise _schema1(what)
        doc = _json(data, f"manifest {what}")
        if doc.get("schemaVersion") == 1:
            raise _schema1(what)
        mt = doc.get("mediaType") or (ctype if ctype in MT.INDEX_TYPES + MT.MANIFEST_TYPES else None) \
            or MT.media_type({}, doc)
        if mt in MT.SCHEMA1:
            raise _schema1(what)
        if mt not in MT.INDEX_TYPES + MT.MANIFEST_TYPES:
            raise ImageError(f"{what}: unsupported manifest media type {mt!r}")
        return data, mt, doc, digest

    def get_small_blob(self, digest: str, size: int | None, what: str) -> bytes:
        if size is not None and size > MAX_CONFIG:
            raise ImageError(f"{self.label}: {what} {digest} too large ({size} bytes)")
        _, data = self.client.request("GET", f"/v2/{self.repo}/blobs/{digest}", scope=self.scope,
                                      what=f"{what} blob {short(digest)}",
                                      not_found=f"{self.label}: {what} blob {digest} unknown to the registry")
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ImageError(f"{self.label}: {what} blob {digest}: digest mismatch (the registry sent "
                             f"{got}); discarded")
        return data

    def resolve(self, platform: str) -> tuple[bytes, dict, str, str, bytes]:
        """(manifest bytes, manifest, manifest digest, digest and bytes of what
        the user's reference names: the same manifest, or a list/index)."""
        reference = self.ref.digest or self.ref.tag or "latest"
        data, mt, doc, digest = self.get_manifest(reference)
        top, top_bytes = digest, data
        depth = 0
        while mt in MT.INDEX_TYPES:
            subs = doc.get("manifests")
            if not isinstance(subs, list) or not subs:
                raise ImageError(f"{self.label}: malformed manifest list {digest}: no manifests")
            desc = pick_platform(subs, platform, f"{self.label}:{reference}")
            try:
                d = check_digest(desc.get("digest"), "manifest list entry digest")
            except ImageError as e:
                raise ImageError(f"{self.label}: {e}") from None
            data, mt, doc, digest = self.get_manifest(d)
            depth += 1
            if depth > 3:
                raise ImageError(f"{self.label}: manifest lists nested too deeply")
        return data, doc, digest, top, top_bytes


# ---------------------------------------------------------------------------
# blob downloads
# ---------------------------------------------------------------------------


class Transfer:
    """One blob being downloaded; readers follow the partial file as it grows."""

    def __init__(self, digest: str, size: int | None, partial: str, final: str):
        self.digest, self.size = digest, size
        self.partial, self.final = partial, final
        self.cond = threading.Condition()
        self.written = 0
        self.started = False
        self.done = False
        self.error: BaseException | None = None
        self.fetched = 0  # bytes received from the network by this process
        self.resumed_from = 0

    def fail(self, e: BaseException) -> None:
        with self.cond:
            self.error = e
            self.cond.notify_all()

    def set_done(self, path: str | None = None) -> None:
        with self.cond:
            if path:
                self.final = path
            self.started = True
            self.done = True
            self.cond.notify_all()


class Follower(io.RawIOBase):
    """Reads a :class:`Transfer`'s bytes as they arrive; end of file only once
    the blob is complete and verified; the download's error otherwise."""

    def __init__(self, t: Transfer):
        super().__init__()
        self.t = t
        self.pos = 0
        self.fd: int | None = None

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        t = self.t
        with t.cond:
            while True:
                if t.error is not None:
                    raise ImageError(f"layer blob {t.digest}: {t.error}")
                if self.fd is None and t.started:
                    self.fd = os.open(t.final if t.done else t.partial, os.O_RDONLY | os.O_CLOEXEC)
                if self.fd is not None and (self.pos < t.written or t.done):
                    break
                t.cond.wait()
            avail = (t.written if not t.done else max(t.written, self.pos + n)) - self.pos
        if avail <= 0:
            return b""
        data = os.pread(self.fd, min(n, avail), self.pos)
        self.pos += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        super().close()


def download(remote: Remote, t: Transfer, progress: Progress, retries: int, backoff: float) -> None:
    """Fetch one blob into ``t.partial`` (resuming what is there), verify it,
    rename it to ``t.final``.  Errors go to followers too."""
    try:
        _download(remote, t, progress, retries, backoff)
    except BaseException as e:
        t.fail(e)
        raise


def _download(remote: Remote, t: Transfer, progress: Progress, retries: int, backoff: float) -> None:
    h = hashlib.sha256()
    fd = os.open(t.partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        have = os.fstat(fd).st_size
        if t.size is not None and have > t.size:
            os.ftruncate(fd, 0)
            have = 0
        pos = 0
        while pos < have:
            chunk = os.pread(fd, min(CHUNK, have - pos), pos)
            if not chunk:
                break
            h.update(chunk)
            pos += len(chunk)
        with t.cond:
            t.written = t.resumed_from = pos
            t.started = True
            t.cond.notify_all()
        os.lseek(fd, pos, os.SEEK_SET)
        progress.state(t.digest, "Downloading")
        progress.update(t.digest, pos)
        url = f"/v2/{remote.repo}/blobs/{t.digest}"
        failures = 0
        last_err = ""
        while t.size is None or t.written < t.size:
            if t.error is not None:
                raise t.error
            offset = t.written
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            resp, _ = remote.client.request(
                "GET", url, headers=headers, scope=remote.scope, ok=(200, 206, 416), stream=True,
                what=f"blob {short(t.digest)}",
                not_found=f"{remote.label}: blob {t.digest} unknown to the registry")
            if resp.status == 416:
                remote.client.release(resp, reuse=False)
                raise ImageError(f"{remote.label}: blob {t.digest} is truncated: the registry has only "
                                 f"{offset} of {t.size} bytes")
            skip = 0
            if resp.status == 200 and offset:
                skip = offset  # the server ignored the range: throw the known prefix away
            elif resp.status == 206:
                cr = resp.getheader("Content-Range") or ""
                try:
                    start = int(cr.split(" ", 1)[1].split("-", 1)[0])
                except (IndexError, ValueError):
                    start = offset
                if start != offset:
                    remote.client.release(resp, reuse=False)
                    raise ImageError(f"{remote.label}: blob {t.digest}: the registry answered "
                                     f"range {cr!r} for bytes={offset}-")
            try:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    if t.error is not None:
                        raise t.error
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]
                        skip = 0
                    if t.size is not None and t.written + len(chunk) > t.size:
                        raise ImageError(f"{remote.label}: blob {t.digest}: the registry sent more "
                                         f"than the {t.size} bytes the manifest gives")
                    os.write(fd, chunk)
                    h.update(chunk)
                    t.fetched += len(chunk)
                    with t.cond:
                        t.written += len(chunk)
                        t.cond.notify_all()
                    progress.update(t.digest, t.written)
                remote.client.release(resp)
                if t.size is None:
                    break
                if t.written < t.size:
                    raise http.client.IncompleteRead(b"", t.size - t.written)
            except (OSError, http.client.HTTPException) as e:
                remote.client.release(resp, reuse=False)
                failures = 1 if t.written > offset else failures + 1
                last_err = str(e) if not isinstance(e, http.client.IncompleteRead) else "connection dropped"
                if failures > retries:
                    raise RegistryError(
                        f"{remote.label}: blob {t.digest} is truncated: got {t.written} of {t.size} bytes "
                        f"after {retries} retries ({last_err}); the partial download is kept for resuming")
                time.sleep(min(backoff * 2 ** (failures - 1), 8.0))
        progress.state(t.digest, "Verifying")
        got = "sha256:" + h.hexdigest()
        if got != t.digest:
            os.close(fd)
            fd = -1
            with contextlib.suppress(OSError):
                os.unlink(t.partial)
            raise ImageError(f"{remote.label}: blob {t.digest}: digest mismatch (the registry sent "
                             f"content with digest {got}); discarded")
        os.fsync(fd)
    finally:
        if fd >= 0:
            os.close(fd)
    with t.cond:
        os.rename(t.partial, t.final)
        t.done = True
        t.cond.notify_all()
    progress.state(t.digest, "Download complete")


# ---------------------------------------------------------------------------
# the pull
# ---------------------------------------------------------------------------


class PullStats:
    def __init__(self):
        self.downloaded = 0  # bytes received for layer blobs
        self.reused = 0      # layers already stored, or blobs already verified
        self.resumed = 0     # bytes that were on disk from an interrupted pull


def downloads_dir(store: ImageStore) -> str:
    d = os.path.join(store.images_dir, "downloads")
    os.makedirs(d, exist_ok=True)
    return d


def pull(ref, store: ImageStore, options: RegistryOptions, platform: str | None = None,
         progress: Progress | None = None, stats: PullStats | None = None):
    """Pull ``ref`` (an :class:`ImageReference` with transport ``registry``);
    returns the stored :class:`~pyrt_core.models.Image`."""
    progress = progress or Progress("quiet")
    stats = stats if stats is not None else PullStats()
    want = check_platform(platform)
    remote = Remote(ref, options)
    try:
        return _pull(remote, ref, store, options, want, progress, stats)
    finally:
        remote.client.close()
        progress.close()


def _pull(remote: Remote, ref, store: ImageStore, options: RegistryOptions, want: str,
          progress: Progress, stats: PullStats):
    label = remote.label
    progress.message(f"Trying to pull {label}:{ref.tag}" + (f"@{ref.digest}" if ref.digest else "")
                     if ref.tag else f"Trying to pull {label}@{ref.digest}")
    mbytes, manifest, mdigest, top, top_bytes = remote.resolve(want)
    if manifest.get("schemaVersion") != 2:
        raise ImageError(f"{label}: unsupported manifest schemaVersion {manifest.get('schemaVersion')!r}")
    cdesc = manifest.get("config")
    if not isinstance(cdesc, dict):
        raise ImageError(f"{label}: malformed manifest {mdigest}: no config descriptor")
    cmt = cdesc.get("mediaType")
    if cmt and cmt not in MT.CONFIG_TYPES:
        raise ImageError(f"{label}: unsupported config media type {cmt!r} (not a container image)")
    try:
        cdigest = check_digest(cdesc.get("digest"), "config digest")
        ldescs = manifest.get("layers")
        if not isinstance(ldescs, list):
            raise ImageError(f"malformed manifest {mdigest}: no layers list")
        layers = []
        for ld in ldescs:
            if not isinstance(ld, dict):
                raise ImageError(f"malformed manifest {mdigest}: layer descriptor is not an object")
            d = check_digest(ld.get("digest"), "layer digest")
            size = ld.get("size")
            if size is not None and (not isinstance(size, int) or size < 0):
                raise ImageError(f"malformed manifest {mdigest}: bad layer size {size!r}")
            lmt = ld.get("mediaType")
            if lmt and lmt not in MT.LAYER_TYPES:
                raise ImageError(f"unsupported layer media type {lmt!r}")
            layers.append((d, size))
    except ImageError as e:
        raise ImageError(f"{label}: {e}") from None
    if store.has_blob(cdigest):
        config = store.read_blob(cdigest)
    else:
        config = remote.get_small_blob(cdigest, cdesc.get("size"), "config")
    try:
        cfg = parse_config(config)
    except ImageError as e:
        raise ImageError(f"{label}: {e}") from None
    diff_ids = list(cfg["rootfs"].get("diff_ids") or [])
    if len(diff_ids) != len(layers):
        raise ImageError(f"{label}: the manifest lists {len(layers)} layers but the config has "
                         f"{len(diff_ids)} diff_ids")
    name = None
    if ref.tag:
        name = f"{remote.host}/{remote.repo}:{ref.tag}"
    repo_digest = f"{remote.host}/{remote.repo}@{top}"
    ddir = downloads_dir(store)
    cids = chain_ids(diff_ids)
    with store.batch() as b:
        present = _present_layers(store, cids)
        transfers: dict[str, Transfer] = {}
        todo: list[Transfer] = []
        for (digest, size), cid in zip(layers, cids):
            if cid in present:
                if digest not in transfers:
                    progress.add(digest, size, "Already exists")
                    stats.reused += 1
                continue
            if digest in transfers:
                continue
            hexd = digest.split(":", 1)[1]
            t = Transfer(digest, size, os.path.join(ddir, hexd + ".partial"), os.path.join(ddir, hexd))
            transfers[digest] = t
            if store.has_blob(digest):
                t.set_done(store.blob_path(digest))
                progress.add(digest, size, "Already exists")
                stats.reused += 1
            elif os.path.exists(t.final):
                t.set_done()
                progress.add(digest, size, "Download complete")
                stats.reused += 1
            else:
                progress.add(digest, size, "Waiting")
                todo.append(t)
        pool = concurrent.futures.ThreadPoolExecutor(max(1, options.max_concurrent_downloads),
                                                     thread_name_prefix="pyrt-pull")
        futures = [pool.submit(download, remote, t, progress, options.retries, options.backoff)
                   for t in todo]
        ok = False
        try:
            openers = []
            for (digest, _), diff_id in zip(layers, diff_ids):
                openers.append((diff_id, _opener(transfers.get(digest), progress)))
            img = b.add_image(config, openers, manifest_bytes=mbytes,
                              names=[name] if name else [])
            for f in futures:
                f.result()  # a download nobody waited for (duplicate) must have worked too
            ok = True
        finally:
            if not ok:
                for t in todo:
                    if not t.done and t.error is None:
                        t.fail(ImageError("pull cancelled"))
                for f in futures:
                    f.cancel()
            pool.shutdown(wait=True)
            for t in todo:
                stats.downloaded += t.fetched
                stats.resumed += t.resumed_from
        # adopt the verified layer blobs (push and save send them as they are)
        for t in transfers.values():
            if t.done and t.final.startswith(ddir + os.sep):
                b.adopt_blob(t.final, t.digest)
        if top_bytes is not None and top != mdigest:
            b.put_blob(top_bytes, top)  # the list the user's reference names
        b.add_repo_digest(img.id, repo_digest)
    progress.message(f"Digest: {top}")
    return store.get(img.id)


def _present_layers(store: ImageStore, cids: list[str]) -> set[str]:
    out = set()
    for layer in store.layers():
        if layer.chain_id in cids and not layer.incomplete and store.driver.exists(layer.driver_id):
            out.add(layer.chain_id)
    return out


def _opener(t: Transfer | None, progress: Progress):
    def open_layer():
        if t is None:
            raise ImageError("internal error: a stored layer was asked for again")
        from pyrt_core.api import open_layer_stream

        progress.state(t.digest, "Extracting")
        f = Follower(t)
        try:
            inner = open_layer_stream(f)
        except BaseException:
            f.close()
            raise
        return _Closing(inner, f, t, progress)

    return open_layer


class _Closing(io.RawIOBase):
    def __init__(self, inner, follower: Follower, t: Transfer, progress: Progress):
        super().__init__()
        self.inner, self.follower, self.t, self.progress = inner, follower, t, progress
        self._ended = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.inner.read(n)
        except BaseException as e:
            # bad data: when the download itself failed (digest mismatch,
            # truncation), that is the error to report
            t = self.t
            with t.cond:
                while not t.done and t.error is None:
                    t.cond.wait()
                err = t.error
            if err is not None:
                raise ImageError(str(err)) from e
            raise
        if not data and n != 0 and not self._ended:
            self._ended = True
            # the compressed stream may end before the blob does: read to the
            # blob's end so the download's verification is awaited
            while self.follower.read(CHUNK):
                pass
            self.progress.state(self.t.digest, "Pull complete")
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.inner.close()
        self.follower.close()
        super().close()
