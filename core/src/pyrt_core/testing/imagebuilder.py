"""Build real container images for tests with umoci and skopeo.

Plain functions (no pytest here); fixtures that cache the results for a
session are in ``pyrt_core.testing.images``.

* :func:`build_oci_layout` - an OCI image layout made by ``umoci``: a base
  layer from a directory, then extra layers, each either a function that
  edits the unpacked root filesystem (umoci computes the diff, with
  whiteouts for deletions) or a ready layer tar (``umoci raw add-layer``).
* :func:`skopeo_copy` / :func:`to_docker_archive` / :func:`to_oci_archive` /
  :func:`to_oci_dir` - convert with skopeo (zstd with ``compress="zstd"``).
* :func:`make_layer_tar` and :func:`write_oci_layout` - hand-made layer tars
  and OCI layouts, for things the tools refuse to produce (entries escaping
  the root, odd media types, ...).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

UMOCI = shutil.which("umoci")
SKOPEO = shutil.which("skopeo")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def missing_tools() -> list[str]:
    """Names of the tools the builders need that are not installed."""
    out = []
    if not UMOCI:
        out.append("umoci")
    if not SKOPEO:
        out.append("skopeo")
    if not os.path.exists(BUSYBOX):
        out.append("busybox")
    return out


def run(cmd: list[str], **kw) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def busybox_rootfs(path) -> str:
    """A busybox root filesystem (the helper of pyrt_core.testing.fixtures)."""
    from pyrt_core.testing.fixtures import make_busybox_rootfs

    return make_busybox_rootfs(path)


# ---------------------------------------------------------------------------
# umoci
# ---------------------------------------------------------------------------


def build_oci_layout(dest_dir: str, rootfs_dir: str | None, tag: str = "latest",
                     extra_layers=(), cmd=("/bin/sh",), env=("PATH=/usr/bin:/bin",),
                     base_tag: str | None = None, workdir: str | None = None) -> str:
    """Create (or add to) the OCI layout ``dest_dir`` with image ``tag``.

    The image starts empty, or from ``base_tag`` (another tag of the same
    layout); its next layer holds the contents of ``rootfs_dir`` (skipped if
    None); then one layer per item of ``extra_layers``:

    * a callable ``f(rootfs_path)`` edits the unpacked root filesystem and
      umoci records the difference (deleted files become ``.wh.`` entries);
    * ``bytes`` or a path: an uncompressed layer tar added verbatim.

    ``cmd``/``env``/``workdir`` go to the image config.  Returns ``dest_dir``.
    """
    dest_dir = os.path.abspath(dest_dir)
    if not os.path.exists(os.path.join(dest_dir, "oci-layout")):
        run([UMOCI, "init", "--layout", dest_dir])
    image = f"{dest_dir}:{tag}"
    if base_tag:
        run([UMOCI, "tag", "--image", f"{dest_dir}:{base_tag}", tag])
    else:
        run([UMOCI, "new", "--image", image])
    with tempfile.TemporaryDirectory(prefix="imagebuilder-") as work:
        bundle = os.path.join(work, "bundle")
        fresh = False

        def unpack():
            nonlocal fresh
            if os.path.exists(bundle):
                shutil.rmtree(bundle)
            run([UMOCI, "unpack", "--image", image, bundle])
            fresh = True

        steps = ([_copy_in(rootfs_dir)] if rootfs_dir else []) + list(extra_layers)
        for step in steps:
            if callable(step):
                if not fresh:
                    unpack()
                step(os.path.join(bundle, "rootfs"))
                run([UMOCI, "repack", "--refresh-bundle", "--image", image, bundle])
            else:
                if isinstance(step, (bytes, bytearray)):
                    p = os.path.join(work, "layer.tar")
                    with open(p, "wb") as f:
                        f.write(step)
                    step = p
                run([UMOCI, "raw", "add-layer", "--image", image, step])
                fresh = False
    args = [UMOCI, "config", "--image", image]
    args += ["--config.cmd=" + c for c in cmd]
    args += ["--config.env=" + e for e in env]
    if workdir:
        args += ["--config.workingdir=" + workdir]
    run(args)
    run([UMOCI, "gc", "--layout", dest_dir])
    return dest_dir


def _copy_in(src: str):
    def copy(rootfs):
        run(["cp", "-a", os.path.join(src, "."), rootfs])
    return copy


# ---------------------------------------------------------------------------
# skopeo
# ---------------------------------------------------------------------------


def skopeo_copy(src_ref: str, dest_ref: str, compress: str | None = None) -> None:
    cmd = [SKOPEO, "--insecure-policy", "copy", "-q"]
    if compress:
        cmd += ["--dest-compress", "--dest-compress-format", compress]
    run(cmd + [src_ref, dest_ref])


def to_docker_archive(layout: str, tag: str, dest_tar: str, name: str = "busybox:latest") -> str:
    """``skopeo copy oci:LAYOUT:TAG docker-archive:DEST:NAME`` (uncompressed layers)."""
    if os.path.exists(dest_tar):
        os.unlink(dest_tar)
    skopeo_copy(f"oci:{layout}:{tag}", f"docker-archive:{dest_tar}:{name}" if name else f"docker-archive:{dest_tar}")
    return dest_tar


def to_oci_archive(layout: str, tag: str, dest_tar: str, compress: str | None = None,
                   ref: str | None = None) -> str:
    """``skopeo copy oci:LAYOUT:TAG oci-archive:DEST[:REF]``; ``compress`` "gzip"/"zstd"."""
    if os.path.exists(dest_tar):
        os.unlink(dest_tar)
    skopeo_copy(f"oci:{layout}:{tag}", f"oci-archive:{dest_tar}" + (f":{ref}" if ref else ""), compress)
    return dest_tar


def to_oci_dir(layout: str, tag: str, dest_dir: str, compress: str | None = None,
               ref: str | None = None) -> str:
    skopeo_copy(f"oci:{layout}:{tag}", f"oci:{dest_dir}" + (f":{ref}" if ref else ""), compress)
    return dest_dir


# ---------------------------------------------------------------------------
# hand-made layers and layouts
# ---------------------------------------------------------------------------


def make_layer_tar(entries) -> bytes:
    """An uncompressed layer tar.  ``entries``: tuples

    ``("file", name, data[, mode])``, ``("dir", name[, mode])``,
    ``("symlink", name, target)``, ``("hardlink", name, target)``,
    ``("whiteout", name)`` (writes ``dir/.wh.base``), ``("opaque", dir)``,
    ``("fifo", name)``, ``("chardev", name, major, minor)``.
    Names are written as given (so ``../escape`` is possible)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            data = None
            if kind == "file":
                data = e[2] if isinstance(e[2], bytes) else e[2].encode()
                ti.size = len(data)
                ti.mode = e[3] if len(e) > 3 else 0o644
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e[2] if len(e) > 2 else 0o755
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[2]
                ti.mode = 0o777
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e[2]
            elif kind == "whiteout":
                d, b = os.path.split(name)
                ti.name = os.path.join(d, ".wh." + b)
                ti.size = 0
            elif kind == "opaque":
                ti.name = os.path.join(name, ".wh..wh..opq")
                ti.size = 0
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                ti.mode = 0o644
            elif kind == "chardev":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = e[2], e[3]
                ti.mode = 0o666
            else:
                raise ValueError(kind)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def dir_layer_tar(src_dir: str, skip=(), entries=()) -> bytes:
    """An uncompressed layer tar of directory ``src_dir`` (names relative to it), without
    the paths in ``skip``, followed by ``entries`` (as :func:`make_layer_tar` takes them)."""
    skip = {p.strip("/") for p in skip}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.add(src_dir, arcname=".", filter=lambda ti: None if ti.name.lstrip("./") in skip else ti)
    tar = buf.getvalue()
    if not entries:
        return tar
    extra = make_layer_tar(entries)
    # both end with two zero blocks (and padding): keep the first archive's members only
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.getmembers()
        end = tf.offset  # where the end-of-archive blocks start
    return tar[:end] + extra


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _compress(data: bytes, how: str | None) -> bytes:
    if how is None:
        return data
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True,
                              check=True).stdout
    raise ValueError(how)


_LAYER_MT = {None: "application/vnd.oci.image.layer.v1.tar",
             "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
             "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


def write_oci_layout(dest_dir: str, layers: list[bytes], ref_name: str | None = "latest",
                     compress: str | None = "gzip", config: dict | None = None,
                     annotations: dict | None = None, layer_media_type: str | None = None,
                     created: str = "2024-01-01T00:00:00Z") -> dict:
    """Write a one-image OCI layout by hand.  ``layers``: uncompressed tars.

    Returns ``{"manifest": digest, "config": digest, "layers": [blob digests],
    "diff_ids": [...]}`` so tests can find (and damage) blobs."""
    blobs = os.path.join(dest_dir, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> str:
        d = _digest(data)
        with open(os.path.join(blobs, d.split(":")[1]), "wb") as f:
            f.write(data)
        return d

    diff_ids = [_digest(t) for t in layers]
    ldescs = []
    for t in layers:
        blob = _compress(t, compress)
        ldescs.append({"mediaType": layer_media_type or _LAYER_MT[compress],
                       "digest": put(blob), "size": len(blob)})
    cfg = {
        "created": created, "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": "imagebuilder"} for _ in layers],
    }
    if config:
        cfg.update(config)
    cblob = json.dumps(cfg).encode()
    cdigest = put(cblob)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": len(cblob)},
                "layers": ldescs}
    mblob = json.dumps(manifest).encode()
    mdigest = put(mblob)
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
            "size": len(mblob)}
    ann = dict(annotations or {})
    if ref_name:
        ann["org.opencontainers.image.ref.name"] = ref_name
    if ann:
        desc["annotations"] = ann
    with open(os.path.join(dest_dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(dest_dir, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f)
    return {"manifest": mdigest, "config": cdigest, "layers": [d["digest"] for d in ldescs],
            "diff_ids": diff_ids}


def blob_path(layout: str, digest: str) -> str:
    return os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])


def tar_dir(src_dir: str, dest_tar: str) -> str:
    """Pack a directory (an OCI layout) into a plain tar (an oci-archive)."""
    with tarfile.open(dest_tar, "w") as tf:
        for name in sorted(os.listdir(src_dir)):
            tf.add(os.path.join(src_dir, name), arcname=name)
    return dest_tar


def oci_manifest(layout: str, index: int = 0) -> tuple[str, dict]:
    """(digest, manifest) of the ``index``-th entry of an OCI layout's index.json."""
    with open(os.path.join(layout, "index.json")) as f:
        desc = json.load(f)["manifests"][index]
    with open(blob_path(layout, desc["digest"])) as f:
        return desc["digest"], json.load(f)


# ---------------------------------------------------------------------------
# ready-made images
# ---------------------------------------------------------------------------


def _layered_base(rootfs):
    os.makedirs(os.path.join(rootfs, "data"), exist_ok=True)
    os.makedirs(os.path.join(rootfs, "opq/sub"), exist_ok=True)
    os.makedirs(os.path.join(rootfs, "links"), exist_ok=True)
    for rel, text in (("data/keep.txt", "keep\n"), ("data/gone.txt", "gone\n"),
                      ("opq/a", "a\n"), ("opq/sub/b", "b\n"), ("links/target.txt", "target\n")):
        with open(os.path.join(rootfs, rel), "w") as f:
            f.write(text)
    os.link(os.path.join(rootfs, "links/target.txt"), os.path.join(rootfs, "links/hard"))
    os.symlink("target.txt", os.path.join(rootfs, "links/sym"))
    os.symlink("/etc/passwd", os.path.join(rootfs, "links/abs"))
    os.chmod(os.path.join(rootfs, "data/keep.txt"), 0o4755)


def _layered_change(rootfs):
    os.unlink(os.path.join(rootfs, "data/gone.txt"))
    with open(os.path.join(rootfs, "data/new.txt"), "w") as f:
        f.write("new\n")
    with open(os.path.join(rootfs, "etc/hello"), "w") as f:
        f.write("hello from layer 3\n")


OPAQUE_LAYER = [("dir", "opq"), ("opaque", "opq"), ("file", "opq/fresh.txt", "fresh\n")]


def build_layered_layout(dest_dir: str, work_dir: str, tag: str = "layered") -> str:
    """A 4-layer image on busybox: (1) busybox, (2) files, a hardlink and
    symlinks, (3) a deletion (whiteout), a new and a changed file, (4) an
    opaque directory ``/opq`` that keeps only ``fresh.txt``."""
    rootfs = busybox_rootfs(os.path.join(work_dir, "rootfs-layered"))
    with open(os.path.join(rootfs, "etc/layered"), "w") as f:  # a base of its own
        f.write("layered\n")
    return build_oci_layout(dest_dir, rootfs, tag=tag,
                            extra_layers=[_layered_base, _layered_change,
                                          make_layer_tar(OPAQUE_LAYER)])


def build_synthetic_layout(dest_dir: str, total_mb: int = 50, nlayers: int = 5,
                           small_files: int = 2000, seed: int = 1) -> str:
    """An image of about ``total_mb`` MB (uncompressed) in ``nlayers`` gzip layers:
    the first holds ``small_files`` small files in a tree, the others a few
    big files of half-compressible data.  Built in Python (fast)."""
    import random

    rnd = random.Random(seed)
    per = total_mb * (1 << 20) // nlayers
    layers = []
    entries = [("dir", "small")]
    size = 0
    for i in range(small_files):
        d = f"small/d{i % 50:02d}"
        if i < 50:
            entries.append(("dir", d))
        n = rnd.randint(100, 2 * per // small_files)
        entries.append(("file", f"{d}/f{i}", rnd.randbytes(n // 2) + bytes(n - n // 2)))
        size += n
    layers.append(make_layer_tar(entries))
    for li in range(1, nlayers):
        entries = [("dir", f"big{li}")]
        for j in range(4):
            n = per // 4
            entries.append(("file", f"big{li}/blob{j}", rnd.randbytes(n // 2) + bytes(n - n // 2)))
        layers.append(make_layer_tar(entries))
    write_oci_layout(dest_dir, layers, ref_name="latest", compress="gzip")
    return dest_dir
