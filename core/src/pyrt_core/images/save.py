"""``pyrt save``: write images from the store to a docker-archive or an oci-archive.

Both formats carry the image's manifest blobs as exactly as possible:

* an image that kept the compressed layer blobs its manifest lists (every
  pulled image) is written with that manifest and those blobs, so the
  archive's manifest digest is the registry's;
* otherwise (an image from ``pyrt load``) each layer is exported from the
  storage driver and gzip-compressed into a new OCI manifest; when an
  exported layer's sha256 differs from the config's ``diff_id`` (a driver
  that cannot reproduce the original tar byte for byte) the config is
  rewritten to the exported ``diff_ids``, which gives the saved image a new id.

docker-archive holds uncompressed layer tars (``<diff_id hex>.tar``), the
config (``<id hex>.json``) and ``manifest.json`` with the ``RepoTags``;
oci-archive is an OCI image layout (``oci-layout``, ``index.json`` whose
entries carry ``org.opencontainers.image.ref.name`` = the image's name,
``blobs/sha256/``) in a tar.  The archive is written to a temporary file
and renamed into place, so a failed save leaves no half archive.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import time
import zlib
from typing import TYPE_CHECKING, BinaryIO

from .. import fsutil
from ..errors import ImageError, UsageError
from . import mediatypes as MT
from .configcheck import parse_config

if TYPE_CHECKING:
    from .store import ImageStore

_CHUNK = 1 << 20


def manifest_for(store: ImageStore, image, tmpfiles: list[str]) -> tuple[bytes, str, list[tuple[str, int, str]]]:
    """(manifest bytes, media type, [(digest, size, file)]) to push: config first."""
    if image.digest and store.has_blob(image.digest):
        mbytes = store.read_blob(image.digest)
        try:
            doc = json.loads(mbytes)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("layers"), list) \
                and isinstance(doc.get("config"), dict) and doc["config"].get("digest") == image.id:
            descs = [doc["config"]] + doc["layers"]
            if all(isinstance(d, dict) and isinstance(d.get("digest"), str) and store.has_blob(d["digest"])
                   for d in descs):
                mtype = doc.get("mediaType") or MT.OCI_MANIFEST
                blobs = [(d["digest"], os.path.getsize(store.blob_path(d["digest"])),
                          store.blob_path(d["digest"])) for d in descs]
                return mbytes, mtype, blobs
    return _export(store, image, tmpfiles)


def _export(store: ImageStore, image, tmpfiles: list[str]):
    cfg = parse_config(store.config_bytes(image))
    layers = store.layers_of(image)
    work = os.path.join(store.images_dir, "downloads")
    os.makedirs(work, exist_ok=True)
    ldescs, diff_ids, blobs = [], [], []
    for layer in layers:
        parent = layer.parent.split(":", 1)[-1] if layer.parent else None
        path = os.path.join(work, f".tmp-push-{os.urandom(6).hex()}")
        tmpfiles.append(path)
        hz, hu = hashlib.sha256(), hashlib.sha256()
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        size = 0
        with open(path, "wb") as f:
            for chunk in store.driver.diff(layer.driver_id, parent):
                hu.update(chunk)
                z = comp.compress(chunk)
                if z:
                    hz.update(z)
                    f.write(z)
                    size += len(z)
            z = comp.flush()
            hz.update(z)
            f.write(z)
            size += len(z)
        d = "sha256:" + hz.hexdigest()
        ldescs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size})
        diff_ids.append("sha256:" + hu.hexdigest())
        blobs.append((d, size, path))
    cbytes = store.config_bytes(image)
    if diff_ids != list(cfg["rootfs"].get("diff_ids") or []):
        cfg["rootfs"]["diff_ids"] = diff_ids
        cbytes = json.dumps(cfg, separators=(",", ":")).encode()
    cdigest = "sha256:" + hashlib.sha256(cbytes).hexdigest()
    cpath = os.path.join(work, f".tmp-push-{os.urandom(6).hex()}")
    tmpfiles.append(cpath)
    with open(cpath, "wb") as f:
        f.write(cbytes)
    manifest = {"schemaVersion": 2, "mediaType": MT.OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": len(cbytes)},
                "layers": ldescs}
    mbytes = json.dumps(manifest, separators=(",", ":")).encode()
    return mbytes, MT.OCI_MANIFEST, [(cdigest, len(cbytes), cpath)] + blobs




def _spool_uncompressed(store: ImageStore, blob_path: str, diff_id: str, tmpfiles: list[str], work: str) -> str:
    from ..archive.decompress import open_layer_stream

    path = os.path.join(work, f".tmp-save-{os.urandom(6).hex()}")
    tmpfiles.append(path)
    h = hashlib.sha256()
    with open(blob_path, "rb") as raw, open(path, "wb") as out:
        stream = open_layer_stream(raw)
        try:
            while True:
                c = stream.read(_CHUNK)
                if not c:
                    break
                h.update(c)
                out.write(c)
        finally:
            stream.close()
    if "sha256:" + h.hexdigest() != diff_id:
        raise ImageError(f"layer {diff_id}: the stored blob does not match the image config")
    return path


def _add_file(tf: tarfile.TarFile, name: str, path: str | None = None, data: bytes | None = None) -> None:
    ti = tarfile.TarInfo(name)
    ti.mtime = int(time.time())
    ti.mode = 0o644
    if data is not None:
        import io

        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        ti.size = os.path.getsize(path)
        with open(path, "rb") as f:
            tf.addfile(ti, f)


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    ti.mtime = int(time.time())
    tf.addfile(ti)


def _names_for(store: ImageStore, img, ref_text: str) -> list[str]:
    from .names import normalize_name

    if img.names and ref_text in img.names:
        return [ref_text]
    try:
        n = normalize_name(ref_text)
        if n in img.names:
            return [n]
    except Exception:
        pass
    if ref_text.replace("sha256:", "") and img.id.split(":", 1)[1].startswith(ref_text.replace("sha256:", "")):
        return list(img.names)
    return list(img.names[:1])


def save_images(store: ImageStore, images: list, out: str | BinaryIO, fmt: str = "docker-archive") -> None:
    """Write ``images`` (``[(Image, the reference the user gave)]``) to ``out``
    (a path, or a binary stream such as stdout) as ``fmt``."""
    if fmt not in ("docker-archive", "oci-archive"):
        raise UsageError(f"unknown archive format {fmt!r} (docker-archive, oci-archive)")
    work = os.path.join(store.images_dir, "downloads")
    os.makedirs(work, exist_ok=True)
    tmpfiles: list[str] = []
    dest_tmp = None
    try:
        if isinstance(out, str):
            dest_tmp = fsutil.temp_path(os.path.abspath(out))
            fobj = open(dest_tmp, "wb")
        else:
            fobj = out
        try:
            with tarfile.open(fileobj=fobj, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                if fmt == "docker-archive":
                    _write_docker(store, images, tf, tmpfiles, work)
                else:
                    _write_oci(store, images, tf, tmpfiles)
        finally:
            if dest_tmp:
                fobj.close()
        if dest_tmp:
            os.rename(dest_tmp, out)
            dest_tmp = None
    except OSError as e:
        raise ImageError(f"cannot write {out if isinstance(out, str) else 'the archive'}: "
                         f"{e.strerror or e}") from None
    finally:
        for p in tmpfiles + ([dest_tmp] if dest_tmp else []):
            with contextlib.suppress(OSError):
                os.unlink(p)


def _write_docker(store, images, tf, tmpfiles, work) -> None:
    entries = []
    written: set[str] = set()
    for img, ref_text in images:
        mbytes, _, blobs = manifest_for(store, img, tmpfiles)
        cdigest, _, cpath = blobs[0]
        cfg = parse_config(open(cpath, "rb").read())
        diff_ids = cfg["rootfs"].get("diff_ids") or []
        cname = cdigest.split(":", 1)[1] + ".json"
        if cname not in written:
            _add_file(tf, cname, cpath)
            written.add(cname)
        lnames = []
        for (ldigest, _, lpath), diff_id in zip(blobs[1:], diff_ids):
            lname = diff_id.split(":", 1)[1] + ".tar"
            if lname not in written:
                tar_path = _spool_uncompressed(store, lpath, diff_id, tmpfiles, work)
                _add_file(tf, lname, tar_path)
                os.unlink(tar_path)
                written.add(lname)
            lnames.append(lname)
        entries.append({"Config": cname, "RepoTags": _names_for(store, img, ref_text), "Layers": lnames})
    _add_file(tf, "manifest.json", data=json.dumps(entries).encode())


def _write_oci(store, images, tf, tmpfiles) -> None:
    _add_file(tf, "oci-layout", data=json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    _add_dir(tf, "blobs")
    _add_dir(tf, "blobs/sha256")
    written: set[str] = set()
    descs = []
    for img, ref_text in images:
        mbytes, mtype, blobs = manifest_for(store, img, tmpfiles)
        for d, _, path in blobs:
            if d not in written:
                _add_file(tf, "blobs/sha256/" + d.split(":", 1)[1], path)
                written.add(d)
        mdigest = "sha256:" + hashlib.sha256(mbytes).hexdigest()
        if mdigest not in written:
            _add_file(tf, "blobs/sha256/" + mdigest.split(":", 1)[1], data=mbytes)
            written.add(mdigest)
        names = _names_for(store, img, ref_text)
        desc = {"mediaType": mtype, "digest": mdigest, "size": len(mbytes)}
        if names:
            desc["annotations"] = {MT.REF_NAME: names[0]}
        descs.append(desc)
    _add_file(tf, "index.json", data=json.dumps({"schemaVersion": 2, "manifests": descs}).encode())
