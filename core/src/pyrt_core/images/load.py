"""``pyrt load``: import images from an OCI image layout (directory or tar)
or a docker-archive tar into the :class:`~pyrt_core.images.store.ImageStore`.

The format is detected from the content: a ``manifest.json`` at the top
means docker-archive (also the docker 25+ layout that carries both
``manifest.json`` and ``index.json``), otherwise ``index.json`` means an OCI
layout.  An archive compressed as a whole (gzip, zstd, xz, bzip2) is
decompressed first.

Everything is checked before any layer is applied: JSON documents, media
types, digests of manifests and configs, and that every layer blob is
there with the right size.  Layer blobs are verified while they are
applied (the compressed digest where the manifest gives one, and always the
uncompressed ``diff_id`` from the config).  All images of one archive are
stored in one :meth:`~pyrt_core.images.store.ImageStore.batch`, so a
failure leaves the store as it was.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from typing import TYPE_CHECKING, BinaryIO, Callable

import attrs

from ..errors import ImageError, UsageError
from ..models import Image
from .configcheck import parse_config
from .digests import HashingReader, check_digest, sha256_digest
from .mediatypes import (
    CONFIG_TYPES,
    CONTAINERD_NAME,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    REF_NAME,
    SCHEMA1,
    media_type,
)
from .names import normalize_name
from .platforms import host_platform, platform_matches, platform_of
from .sources import Source, clean_name, one_line, open_source

if TYPE_CHECKING:
    from .store import ImageStore


# ---------------------------------------------------------------------------
# plans: what to store, checked before anything is stored
# ---------------------------------------------------------------------------


@attrs.define
class _Plan:
    config: bytes
    manifest: bytes | None
    layers: list  # [(diff_id, opener)]
    names: list[str]


def _json(data: bytes, what: str, label: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{label}: malformed {what}: {one_line(e)}") from None


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _check_descriptor(desc, what: str, label: str) -> tuple[str, int | None]:
    if not isinstance(desc, dict):
        raise ImageError(f"{label}: malformed {what}: descriptor is not an object")
    try:
        digest = check_digest(desc.get("digest"), f"{what} digest")
    except ImageError as e:
        raise ImageError(f"{label}: {e}") from None
    size = desc.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ImageError(f"{label}: malformed {what}: bad size {size!r}")
    return digest, size


def _check_blob_present(src: Source, digest: str, size: int | None, what: str) -> str:
    name = _blob_name(digest)
    if not src.has(name):
        raise ImageError(f"{src.label}: missing blob {digest} ({what})")
    if size is not None:
        actual = src.size(name)
        if actual < size:
            raise ImageError(f"{src.label}: blob {digest} ({what}) is truncated: unexpected end of "
                             f"data ({actual} of {size} bytes)")
        if actual != size:
            raise ImageError(f"{src.label}: blob {digest} ({what}) has size {actual}, "
                             f"the manifest says {size}")
    return name


def _read_verified(src: Source, desc, what: str) -> bytes:
    digest, size = _check_descriptor(desc, what, src.label)
    name = _check_blob_present(src, digest, size, what)
    data = src.read(name)
    got = sha256_digest(data)
    if got != digest:
        raise ImageError(f"{src.label}: {what} blob {digest}: digest mismatch (content is {got})")
    return data


def _pick_platform(descs: list, want: str, label: str, where: str):
    if len(descs) == 1:
        return descs[0]
    for d in descs:
        if platform_matches(d, want):
            return d
    avail = ", ".join(sorted({platform_of(d) for d in descs}))
    raise ImageError(f"{label}: {where} has no image for platform {want} (available: {avail})")


def _names_from_annotations(desc, label: str) -> list[str]:
    ann = desc.get("annotations") if isinstance(desc, dict) else None
    if not isinstance(ann, dict):
        return []
    ref = ann.get(REF_NAME)
    cname = ann.get(CONTAINERD_NAME)
    name = None
    if isinstance(cname, str) and cname:
        name = cname
    elif isinstance(ref, str) and ("/" in ref or ":" in ref):
        name = ref  # a full name (podman); a bare tag (umoci, skopeo) names nothing
    if not name:
        return []
    try:
        return [normalize_name(name)]
    except UsageError as e:
        raise ImageError(f"{label}: bad image name in index.json: {e}") from None


def _plan_oci(src: Source, want_platform: str) -> list[_Plan]:
    label = src.label
    if src.has("oci-layout"):
        layout = _json(src.read("oci-layout"), "oci-layout", label)
        ver = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if not isinstance(ver, str):
            raise ImageError(f"{label}: malformed oci-layout: no imageLayoutVersion")
        if not ver.startswith("1."):
            raise ImageError(f"{label}: unsupported OCI layout version {ver}")
    index = _json(src.read("index.json"), "index.json", label)
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ImageError(f"{label}: malformed index.json: no \"manifests\" list")
    if index.get("schemaVersion") not in (None, 2):
        raise ImageError(f"{label}: unsupported index.json schemaVersion {index.get('schemaVersion')!r}")
    descs = index["manifests"]
    if not descs:
        raise ImageError(f"{label}: index.json lists no images")
    for d in descs:
        _check_descriptor(d, "index.json entry", label)
    groups: dict = {}
    for d in descs:
        ann = d.get("annotations") if isinstance(d.get("annotations"), dict) else {}
        groups.setdefault(ann.get(REF_NAME) or ann.get(CONTAINERD_NAME), []).append(d)
    plans = []
    for group in groups.values():
        if any(isinstance(d.get("platform"), dict) for d in group):
            # one image for several platforms: take ours
            group = [_pick_platform(group, want_platform, label, "index.json")]
        for desc in group:  # else: several images
            names = _names_from_annotations(desc, label)
            plans.append(_plan_oci_descriptor(src, desc, names, want_platform, 0))
    return plans


def _plan_oci_descriptor(src: Source, desc, names, want_platform: str, depth: int) -> _Plan:
    label = src.label
    mt = desc.get("mediaType")
    if mt in SCHEMA1:
        raise _schema1(label)
    if mt and mt not in INDEX_TYPES + MANIFEST_TYPES:
        raise ImageError(f"{label}: unsupported manifest media type {mt}")
    blob = _read_verified(src, desc, "manifest")
    doc = _json(blob, f"manifest {desc['digest']}", label)
    if not isinstance(doc, dict):
        raise ImageError(f"{label}: malformed manifest {desc['digest']}: not a JSON object")
    if doc.get("schemaVersion") == 1 or doc.get("mediaType") in SCHEMA1:
        raise _schema1(label)
    mt = media_type(desc, doc)
    if mt in INDEX_TYPES:
        if depth >= 4:
            raise ImageError(f"{label}: image indexes nested too deeply")
        subs = doc.get("manifests")
        if not isinstance(subs, list) or not subs:
            raise ImageError(f"{label}: malformed image index {desc['digest']}: no manifests")
        for d in subs:
            _check_descriptor(d, "image index entry", label)
        sub = _pick_platform(subs, want_platform, label, f"image index {desc['digest']}")
        return _plan_oci_descriptor(src, sub, names, want_platform, depth + 1)
    if mt not in MANIFEST_TYPES:
        raise ImageError(f"{label}: unsupported manifest media type {mt}")
    return _plan_manifest(src, blob, doc, names)


def _schema1(label: str) -> ImageError:
    return ImageError(f"{label}: schema 1 manifests are not supported (obsolete image format; "
                      f"convert the image with a current docker, podman or skopeo)")


def _plan_manifest(src: Source, blob: bytes, doc: dict, names) -> _Plan:
    label = src.label
    if doc.get("schemaVersion") != 2:
        raise ImageError(f"{label}: unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    cdesc = doc.get("config")
    if not isinstance(cdesc, dict):
        raise ImageError(f"{label}: malformed manifest: no config descriptor")
    cmt = cdesc.get("mediaType")
    if cmt and cmt not in CONFIG_TYPES:
        raise ImageError(f"{label}: unsupported config media type {cmt} (not a container image)")
    config = _read_verified(src, cdesc, "config")
    cfg = _config(config, label)
    diff_ids = cfg["rootfs"].get("diff_ids") or []
    ldescs = doc.get("layers")
    if not isinstance(ldescs, list):
        raise ImageError(f"{label}: malformed manifest: no layers list")
    if len(ldescs) != len(diff_ids):
        raise ImageError(f"{label}: the manifest lists {len(ldescs)} layers but the config "
                         f"has {len(diff_ids)} diff_ids")
    layers = []
    for i, ld in enumerate(ldescs):
        digest, size = _check_descriptor(ld, "layer", label)
        lmt = ld.get("mediaType")
        if lmt and lmt not in LAYER_TYPES:
            raise ImageError(f"{label}: unsupported layer media type {lmt}")
        name = _check_blob_present(src, digest, size, "layer")
        layers.append((diff_ids[i], _opener(src, name, digest, size)))
    return _Plan(config=config, manifest=blob, layers=layers, names=list(names))


def _config(data: bytes, label: str) -> dict:
    try:
        return parse_config(data)
    except ImageError as e:
        raise ImageError(f"{label}: {e}") from None


_BLOB_PATH = re.compile(r"(?:^|/)blobs/sha256/([0-9a-f]{64})$")
_LEGACY_CONFIG = re.compile(r"^([0-9a-f]{64})\.json$")


def _plan_docker(src: Source) -> list[_Plan]:
    label = src.label
    mf = _json(src.read("manifest.json"), "manifest.json", label)
    if not isinstance(mf, list) or not mf:
        raise ImageError(f"{label}: malformed manifest.json: expected a non-empty list")
    plans: dict[str, _Plan] = {}
    for entry in mf:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise ImageError(f"{label}: malformed manifest.json: entries need Config and Layers")
        cname = clean_name(entry["Config"], label)
        if not src.has(cname):
            raise ImageError(f"{label}: missing blob {cname} (config)")
        config = src.read(cname)
        iid = sha256_digest(config)
        m = _BLOB_PATH.search(cname) or _LEGACY_CONFIG.match(cname)
        if m and "sha256:" + m.group(1) != iid:
            raise ImageError(f"{label}: config {cname}: digest mismatch (content is {iid})")
        cfg = _config(config, label)
        diff_ids = cfg["rootfs"].get("diff_ids") or []
        if len(entry["Layers"]) != len(diff_ids):
            raise ImageError(f"{label}: manifest.json lists {len(entry['Layers'])} layers but the "
                             f"config has {len(diff_ids)} diff_ids")
        layers = []
        for i, lname in enumerate(entry["Layers"]):
            if not isinstance(lname, str):
                raise ImageError(f"{label}: malformed manifest.json: bad layer entry {lname!r}")
            lname = clean_name(lname, label)
            if not src.has(lname):
                raise ImageError(f"{label}: missing blob {lname} (layer)")
            bm = _BLOB_PATH.search(lname)
            layers.append((diff_ids[i], _opener(src, lname, "sha256:" + bm.group(1) if bm else None, None)))
        names = []
        for t in entry.get("RepoTags") or []:
            try:
                names.append(normalize_name(t))
            except (UsageError, TypeError) as e:
                raise ImageError(f"{label}: bad image name {t!r} in manifest.json: {e}") from None
        if iid in plans:
            plans[iid].names += [n for n in names if n not in plans[iid].names]
        else:
            plans[iid] = _Plan(config=config, manifest=None, layers=layers, names=names)
    return list(plans.values())


# ---------------------------------------------------------------------------
# layer streams
# ---------------------------------------------------------------------------


class _VerifiedLayer(io.RawIOBase):
    """The uncompressed layer; at its end the compressed blob's digest (and
    size) are checked, before the store accepts the layer."""

    def __init__(self, inner, raw: HashingReader, closers, digest, size, label):
        super().__init__()
        self._inner = inner
        self._raw = raw
        self._closers = closers
        self._digest = digest
        self._size = size
        self._label = label
        self._checked = False

    def readable(self):
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n if n is not None else -1)
        if not data and n != 0 and not self._checked:
            self._checked = True
            self._raw.drain()
            if self._digest and self._raw.digest != self._digest:
                raise ImageError(f"{self._label}: layer blob {self._digest}: digest mismatch "
                                 f"(content is {self._raw.digest})")
            if self._size is not None and self._raw.count != self._size:
                raise ImageError(f"{self._label}: layer blob {self._digest}: size {self._raw.count}, "
                                 f"the manifest says {self._size}")
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self):
        for c in self._closers:
            with contextlib.suppress(Exception):
                c.close()
        super().close()


def _opener(src: Source, name: str, digest: str | None, size: int | None) -> Callable[[], BinaryIO]:
    def open_layer():
        from ..archive.decompress import open_layer_stream

        raw = src.open(name)
        hashed = HashingReader(raw)
        try:
            inner = open_layer_stream(hashed)
        except BaseException:
            raw.close()
            raise
        return _VerifiedLayer(inner, hashed, [inner, raw], digest, size, src.label)

    return open_layer


# ---------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------


def load_archive(path: str, store: ImageStore, name: str | None = None,
                 platform: str | None = None) -> list[Image]:
    """Load every image of the archive (or OCI layout directory) at ``path``.

    ``name`` adds a name to the loaded image (an OCI layout whose ref.name is
    only a tag has no name otherwise); ``platform`` (``os/arch[/variant]``,
    default the host's) chooses from multi-platform indexes.  Returns the
    stored images; raises :class:`ImageError` with a one-line message and
    leaves the store unchanged on failure.
    """
    want = platform or host_platform()
    if len(want.split("/")) not in (2, 3):
        raise UsageError(f"invalid platform {want!r}: expected OS/ARCH[/VARIANT]")
    extra = normalize_name(name) if name else None
    label = path
    try:
        with open_source(path, store.images_dir) as src:
            if src.has("manifest.json"):
                plans = _plan_docker(src)
            elif src.has("index.json"):
                plans = _plan_oci(src, want)
            else:
                raise ImageError(f"{label}: not an image archive (no manifest.json or index.json)")
            if extra:
                if len(plans) != 1:
                    raise UsageError(f"{label}: holds {len(plans)} images; a name can be given "
                                     f"for one only")
                if extra not in plans[0].names:
                    plans[0].names.append(extra)
            with store.batch() as b:
                loaded = [b.add_image(p.config, p.layers, manifest_bytes=p.manifest,
                                      names=p.names) for p in plans]
            for img in loaded:
                store.event("load", img.id, img.names[0] if img.names else img.id)
            return loaded
    except ImageError as e:
        msg = one_line(e)
        if not msg.startswith(label + ": "):
            raise type(e)(f"{label}: {msg}") from e
        raise
