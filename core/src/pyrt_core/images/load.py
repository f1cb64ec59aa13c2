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
import os
import platform as _platform
import posixpath
import re
import tarfile
from typing import BinaryIO, Callable

import attrs

from .. import fsutil
from ..errors import ImageError, PyrtError, UsageError
from ..models import Image
from .store import (
    HashingReader,
    ImageStore,
    check_digest,
    normalize_name,
    parse_config,
    sha256_digest,
)

MAX_JSON = 32 << 20
_CHUNK = 1 << 20

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_VARIANT = {"armv7l": "v7", "armv6l": "v6"}


def host_platform() -> str:
    m = _platform.machine()
    p = f"linux/{_ARCH.get(m, m)}"
    return p + (f"/{_VARIANT[m]}" if m in _VARIANT else "")


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


# ---------------------------------------------------------------------------
# sources: an OCI layout directory or a tar archive
# ---------------------------------------------------------------------------


def _clean(name: str, label: str) -> str:
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ImageError(f"{label}: invalid path {name!r} in the archive")
    n = posixpath.normpath(name)
    if n.startswith("/") or n == ".." or n.startswith("../"):
        raise ImageError(f"{label}: path {name!r} in the archive escapes it")
    return n


class _Source:
    label = ""

    def has(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> BinaryIO: ...
    def close(self) -> None: ...

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        if not self.has(name):
            raise ImageError(f"{self.label}: missing {name}")
        if self.size(name) > limit:
            raise ImageError(f"{self.label}: {name} is too large ({self.size(name)} bytes)")
        with contextlib.closing(self.open(name)) as f:
            out = []
            while True:
                c = f.read(_CHUNK)
                if not c:
                    break
                out.append(c)
            return b"".join(out)


class _DirSource(_Source):
    def __init__(self, root: str, label: str):
        self.root = root
        self.label = label

    def _path(self, name: str) -> str:
        return os.path.join(self.root, _clean(name, self.label))

    def has(self, name):
        return os.path.isfile(self._path(name))

    def size(self, name):
        return os.path.getsize(self._path(name))

    def open(self, name):
        try:
            return open(self._path(name), "rb")
        except OSError as e:
            raise ImageError(f"{self.label}: cannot read {name}: {e.strerror}") from None

    def close(self):
        pass


class _MemberReader(io.RawIOBase):
    """``size`` bytes at ``offset`` of a file, with its own descriptor (thread safe)."""

    def __init__(self, path: str, offset: int, size: int, label: str):
        super().__init__()
        self._f = open(path, "rb", buffering=0)
        self._f.seek(offset)
        self._left = size
        self._label = label

    def readable(self):
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if n is None or n < 0:
            chunks = []
            while True:
                c = self.read(_CHUNK)
                if not c:
                    return b"".join(chunks)
                chunks.append(c)
        data = self._f.read(min(n, self._left))
        if not data:
            raise ImageError(f"{self._label}: truncated archive: unexpected end of data")
        self._left -= len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self):
        with contextlib.suppress(Exception):
            self._f.close()
        super().close()


class _TarSource(_Source):
    def __init__(self, path: str, label: str):
        self.path = path
        self.label = label
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            with open(path, "rb") as f:
                filesize = os.fstat(f.fileno()).st_size
                if filesize == 0:
                    raise ImageError(f"{label}: not an image archive (empty file)")
                try:
                    tf = tarfile.open(fileobj=f, mode="r:")
                    members = tf.getmembers()
                except (tarfile.TarError, EOFError, ValueError) as e:
                    raise ImageError(f"{label}: not an image archive (not a tar file or OCI layout "
                                     f"directory: {_one_line(e)})") from None
                end = tf.offset
                f.seek(end)
                tail = f.read(tarfile.BLOCKSIZE)
        except OSError as e:
            raise ImageError(f"{label}: cannot read: {e.strerror or e}") from None
        for m in members:
            if m.isreg() and m.offset_data + m.size > filesize:
                raise ImageError(f"{label}: truncated archive: unexpected end of data "
                                 f"(in {m.name})")
        if len(tail) < tarfile.BLOCKSIZE:
            raise ImageError(f"{label}: truncated archive: unexpected end of data")
        if tail.count(0) != tarfile.BLOCKSIZE:
            raise ImageError(f"{label}: corrupt archive: bad tar header at offset {end}")
        for m in members:
            try:
                n = _clean(m.name, label)
            except ImageError:
                continue  # never referenced through a clean name
            self.members[n] = m

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        n = _clean(name, self.label)
        for _ in range(16):
            m = self.members.get(n)
            if m is None:
                return None
            if m.isreg():
                return m
            if m.islnk():
                n = _clean(m.linkname, self.label)
            elif m.issym():
                target = m.linkname
                base = "" if target.startswith("/") else posixpath.dirname(n)
                n = _clean(posixpath.join(base, target.lstrip("/")), self.label)
            else:
                return None
        raise ImageError(f"{self.label}: too many levels of links at {name}")

    def has(self, name):
        return self._resolve(name) is not None

    def size(self, name):
        m = self._resolve(name)
        return m.size if m else 0

    def open(self, name):
        m = self._resolve(name)
        if m is None:
            raise ImageError(f"{self.label}: missing {name}")
        return _MemberReader(self.path, m.offset_data, m.size, self.label)

    def close(self):
        pass


# ---------------------------------------------------------------------------
# opening the input
# ---------------------------------------------------------------------------

_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)


def _decompress_to_temp(path: str, kind: str, tmpdir: str, label: str) -> str:
    tmp = fsutil.temp_path(os.path.join(tmpdir, "load"))
    try:
        with open(path, "rb") as raw, open(tmp, "xb") as out:
            if kind in ("gzip", "zstd"):
                from ..archive.decompress import open_layer_stream

                stream = open_layer_stream(raw)
            elif kind == "xz":
                import lzma

                stream = lzma.open(raw)
            else:
                import bz2

                stream = bz2.open(raw)
            try:
                while True:
                    c = stream.read(_CHUNK)
                    if not c:
                        break
                    out.write(c)
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
    except PyrtError as e:
        _unlink(tmp)
        raise ImageError(f"{label}: {kind}-compressed archive: {_strip_label(e, label)}") from None
    except (OSError, EOFError, ValueError) as e:
        _unlink(tmp)
        msg = "unexpected end of data" if isinstance(e, EOFError) else _one_line(e)
        raise ImageError(f"{label}: {kind}-compressed archive: {msg}") from None
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(p):
    with contextlib.suppress(OSError):
        os.unlink(p)


def _strip_label(e: Exception, label: str) -> str:
    s = _one_line(e)
    return s[len(label) + 2:] if s.startswith(label + ": ") else s


@contextlib.contextmanager
def _open_source(path: str, tmpdir: str):
    label = path
    if os.path.isdir(path):
        yield _DirSource(path, label)
        return
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file or directory") from None
    except OSError as e:
        raise ImageError(f"{label}: cannot read: {e.strerror or e}") from None
    tmp = None
    try:
        for magic, kind in _MAGICS:
            if head.startswith(magic):
                tmp = _decompress_to_temp(path, kind, tmpdir, label)
                break
        src = _TarSource(tmp or path, label)
        yield src
    finally:
        if tmp:
            _unlink(tmp)


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
        raise ImageError(f"{label}: malformed {what}: {_one_line(e)}") from None


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


def _check_blob_present(src: _Source, digest: str, size: int | None, what: str) -> str:
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


def _read_verified(src: _Source, desc, what: str) -> bytes:
    digest, size = _check_descriptor(desc, what, src.label)
    name = _check_blob_present(src, digest, size, what)
    data = src.read(name)
    got = sha256_digest(data)
    if got != digest:
        raise ImageError(f"{src.label}: {what} blob {digest}: digest mismatch (content is {got})")
    return data


def _platform_of(desc) -> str:
    p = desc.get("platform") if isinstance(desc, dict) else None
    if not isinstance(p, dict):
        return "unknown"
    s = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return s + (f"/{p['variant']}" if p.get("variant") else "")


def _matches(desc, want: str) -> bool:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return False
    parts = want.split("/")
    if p.get("os") != parts[0] or p.get("architecture") != parts[1]:
        return False
    if len(parts) > 2 and p.get("variant") and p.get("variant") != parts[2]:
        return False
    return True


def _pick_platform(descs: list, want: str, label: str, where: str):
    if len(descs) == 1:
        return descs[0]
    for d in descs:
        if _matches(d, want):
            return d
    avail = ", ".join(sorted({_platform_of(d) for d in descs}))
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


def _plan_oci(src: _Source, want_platform: str) -> list[_Plan]:
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


def _media_type(desc, doc) -> str | None:
    mt = desc.get("mediaType") if isinstance(desc, dict) else None
    if not mt and isinstance(doc, dict):
        mt = doc.get("mediaType")
    if not mt and isinstance(doc, dict):
        if isinstance(doc.get("manifests"), list):
            mt = OCI_INDEX
        elif "config" in doc and "layers" in doc:
            mt = OCI_MANIFEST
    return mt


def _plan_oci_descriptor(src: _Source, desc, names, want_platform: str, depth: int) -> _Plan:
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
    mt = _media_type(desc, doc)
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


def _plan_manifest(src: _Source, blob: bytes, doc: dict, names) -> _Plan:
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


def _plan_docker(src: _Source) -> list[_Plan]:
    label = src.label
    mf = _json(src.read("manifest.json"), "manifest.json", label)
    if not isinstance(mf, list) or not mf:
        raise ImageError(f"{label}: malformed manifest.json: expected a non-empty list")
    plans: dict[str, _Plan] = {}
    for entry in mf:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise ImageError(f"{label}: malformed manifest.json: entries need Config and Layers")
        cname = _clean(entry["Config"], label)
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
            lname = _clean(lname, label)
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


def _opener(src: _Source, name: str, digest: str | None, size: int | None) -> Callable[[], BinaryIO]:
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
        with _open_source(path, store.images_dir) as src:
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
                return [b.add_image(p.config, p.layers, manifest_bytes=p.manifest, names=p.names)
                        for p in plans]
    except ImageError as e:
        msg = _one_line(e)
        if not msg.startswith(label + ": "):
            raise type(e)(f"{label}: {msg}") from e
        raise
