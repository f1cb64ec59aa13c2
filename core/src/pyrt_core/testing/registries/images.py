"""Test images for registries: layouts built with :mod:`pyrt_core.testing.imagebuilder`
(a multi-platform index, big incompressible layers) and pushing them with ``skopeo``."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rootfs_tar(rootfs: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    return buf.getvalue()


def build_multi_layout(dest: str, rootfs: str, platforms=("linux/amd64", "linux/arm64")) -> dict:
    """An OCI layout whose "multi" entry is an image index with one image per
    platform: a shared busybox layer plus ``/etc/arch`` holding the platform."""
    from pyrt_core.testing import imagebuilder as ib

    base = rootfs_tar(rootfs)
    manifests = []
    for plat in platforms:
        os_, arch, *variant = plat.split("/")
        extra = ib.make_layer_tar([("dir", "etc"), ("file", "etc/arch", plat + "\n")])
        info = ib.write_oci_layout(dest, [base, extra], ref_name=None,
                                   config={"architecture": arch, "os": os_,
                                           **({"variant": variant[0]} if variant else {})})
        mpath = ib.blob_path(dest, info["manifest"])
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": info["manifest"],
                "size": os.path.getsize(mpath), "platform": {"os": os_, "architecture": arch}}
        if variant:
            desc["platform"]["variant"] = variant[0]
        manifests.append(desc)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": manifests}).encode()
    idigest = _digest(index)
    with open(ib.blob_path(dest, idigest), "wb") as f:
        f.write(index)
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": idigest, "size": len(index),
            "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}, f)
    return {"index": idigest, "manifests": {m["platform"]["architecture"]: m["digest"] for m in manifests}}


def build_big_layout(dest: str, nlayers: int = 2, mb: int = 3, seed: int = 7) -> dict:
    """Incompressible layers of ``mb`` MB each (for throttled/kill tests)."""
    import random

    from pyrt_core.testing import imagebuilder as ib

    rnd = random.Random(seed)
    layers = [ib.make_layer_tar([("dir", f"big{i}"), ("file", f"big{i}/data", rnd.randbytes(mb << 20))])
              for i in range(nlayers)]
    return ib.write_oci_layout(dest, layers, ref_name="latest", compress="gzip")


def skopeo_push(src: str, dest_host: str, repo: str, *extra: str, creds: str | None = None) -> None:
    cmd = [shutil.which("skopeo"), "--insecure-policy", "copy", "-q", "--dest-tls-verify=false", *extra]
    if creds:
        cmd += ["--dest-creds", creds]
    r = subprocess.run(cmd + [src, f"docker://{dest_host}/{repo}"], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"skopeo copy {src} -> {repo}: {r.stderr.strip()}")


def populate(host: str, imgs: dict, creds: str | None = None) -> None:
    skopeo_push(f"oci:{imgs['busybox']}:latest", host, "test/busybox:latest", creds=creds)
    skopeo_push(f"oci:{imgs['layered']}:layered", host, "test/layered:1", creds=creds)
    skopeo_push(f"oci:{imgs['layered']}:layered", host, "test/layered-docker:1", "--format", "v2s2",
                creds=creds)
    skopeo_push(f"oci:{imgs['busybox']}:latest", host, "test/zstd:1", "--dest-compress",
                "--dest-compress-format", "zstd", creds=creds)
    skopeo_push(f"oci:{imgs['shared']}:base", host, "test/base:1", creds=creds)
    skopeo_push(f"oci:{imgs['shared']}:child", host, "test/child:1", creds=creds)
    skopeo_push(f"oci:{imgs['multi']}:multi", host, "test/multi:1", "--all", creds=creds)
    skopeo_push(f"oci:{imgs['plain']}:latest", host, "test/plain:1", creds=creds)
    skopeo_push(f"oci:{imgs['big']}:latest", host, "test/big:1", creds=creds)
