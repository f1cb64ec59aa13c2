"""Push an image from the local store to a registry.

The manifest the image was pulled with is pushed unchanged when every blob
it lists is in the blob store (a pulled image keeps its compressed layer
blobs), so the pushed digest equals the pulled one.  Otherwise (an image
from ``pyrt load``) each layer is exported from the storage driver and
gzip-compressed into a new OCI manifest; if an exported layer's digest
differs from the config's ``diff_id`` the config is rewritten to match.

For every blob: ``HEAD`` (skip when the registry has it), then a
cross-repository mount from another repository of the same registry the
image is known in (``POST …/uploads/?mount=&from=``; 201 = done), else an
upload: monolithic (``POST`` + ``PUT ?digest=``) up to ``chunk_size``,
chunked (``PATCH`` with ``Content-Range``, then ``PUT``) above.  Blobs go
up concurrently (``max_concurrent_uploads``); the manifest goes last.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
from urllib.parse import urlencode

from pyrt_core.errors import ImageError, UsageError
from pyrt_core.api import ImageStore, manifest_for
from pyrt_core.api import short_digest as short

from .client import split_reference
from .options import RegistryOptions
from .progress import Progress
from .pull import Remote


def push(image, reference, store: ImageStore, options: RegistryOptions,
         progress: Progress | None = None, settings: dict | None = None) -> str:
    progress = progress or Progress("quiet")
    if reference.digest and not reference.tag:
        raise UsageError(f"cannot push to {reference}: name a tag, not a digest")
    remote = Remote(reference, options, actions="pull,push")
    tmpfiles: list[str] = []
    try:
        mbytes, mtype, blobs = manifest_for(store, image, tmpfiles)
        sources = _mount_sources(store, image, remote)
        scope = remote.scope + "".join(f" repository:{s}:pull" for s in sources)
        progress.message(f"Pushing {remote.label}:{reference.tag or 'latest'}")
        for d, size, _ in blobs:
            progress.add(d, size, "Preparing")
        with concurrent.futures.ThreadPoolExecutor(max(1, options.max_concurrent_uploads),
                                                   thread_name_prefix="pyrt-push") as ex:
            futs = [ex.submit(upload_blob, remote, d, size, path, sources, scope, options, progress)
                    for d, size, path in blobs]
            for f in futs:
                f.result()
        tag = reference.tag or "latest"
        remote.client.request("PUT", f"/v2/{remote.repo}/manifests/{tag}", body=mbytes,
                              headers={"Content-Type": mtype, "Content-Length": str(len(mbytes))},
                              scope=scope, ok=(200, 201, 202), what=f"manifest {remote.label}:{tag}")
        digest = "sha256:" + hashlib.sha256(mbytes).hexdigest()
        with contextlib.suppress(Exception):
            store.add_repo_digest(image.id, f"{remote.host}/{remote.repo}@{digest}")
        progress.message(f"Writing manifest {digest}")
        return digest
    finally:
        remote.client.close()
        progress.close()
        for p in tmpfiles:
            with contextlib.suppress(OSError):
                os.unlink(p)


def _mount_sources(store: ImageStore, image, remote: Remote) -> list[str]:
    """Other repositories of the same registry that hold this image's blobs."""
    out = []
    refs = list(store.repo_digests(image)) + list(image.names)
    from pyrt_core.api import ImageReference

    for r in refs:
        try:
            ref = ImageReference.parse(r)
        except Exception:
            continue
        host, repo = split_reference(ref)
        if host == remote.host and repo != remote.repo and repo not in out:
            out.append(repo)
    return out[:3]


def _with_query(location: str, params: dict) -> str:
    return location + ("&" if "?" in location else "?") + urlencode(params)


def upload_blob(remote: Remote, digest: str, size: int, path: str, sources: list[str], scope: str,
                options: RegistryOptions, progress: Progress) -> str:
    c = remote.client
    base = f"/v2/{remote.repo}/blobs"
    resp, _ = c.request("HEAD", f"{base}/{digest}", scope=scope, ok=(200, 404), what=f"HEAD blob {short(digest)}")
    if resp.status == 200:
        progress.state(digest, "Layer already exists")
        return "exists"
    location = None
    for src in sources:
        resp, _ = c.request("POST", f"{base}/uploads/?" + urlencode({"mount": digest, "from": src}),
                            scope=scope, ok=(201, 202), what=f"mount blob {short(digest)}")
        if resp.status == 201:
            progress.state(digest, f"Mounted from {src}")
            return "mounted"
        location = resp.getheader("Location")
        break
    if not location:
        resp, _ = c.request("POST", f"{base}/uploads/", scope=scope, ok=(202,),
                            what=f"start upload of {short(digest)}")
        location = resp.getheader("Location")
    if not location:
        raise ImageError(f"{remote.label}: the registry started an upload without a Location")
    progress.state(digest, "Pushing")
    if size <= options.chunk_size:
        c.request("PUT", _with_query(location, {"digest": digest}), scope=scope, ok=(201, 204),
                  body=lambda: open(path, "rb"),
                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                  what=f"upload of blob {short(digest)}")
        progress.update(digest, size)
    else:
        offset = 0
        with open(path, "rb") as f:
            while offset < size:
                n = min(options.chunk_size, size - offset)
                chunk = f.read(n)
                resp, _ = c.request("PATCH", location, scope=scope, ok=(202, 204), body=chunk,
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Length": str(len(chunk)),
                                             "Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
                                    what=f"chunk upload of blob {short(digest)}")
                location = resp.getheader("Location") or location
                offset += len(chunk)
                progress.update(digest, offset)
        c.request("PUT", _with_query(location, {"digest": digest}), scope=scope, ok=(201, 204),
                  what=f"finish upload of blob {short(digest)}")
    progress.state(digest, "Pushed")
    return "uploaded"
