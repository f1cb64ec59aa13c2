"""The image store and ``load_archive`` with real images (umoci + skopeo)
on the vfs driver: formats, layer semantics, names, removal, corrupt
inputs (each must leave the store exactly as it was) and concurrency."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import stat
import tarfile
import threading
import time

import pytest

from pyrt_core.testing import imagebuilder as ib
from pyrt_core.testing.images import *  # noqa: F401,F403  (session fixtures with built images)
from pyrt_core.testing.images import copy_image_dir
from pyrt_core import fsutil
from pyrt_core.errors import ConflictError, ImageError, LayerError, NotFoundError, UsageError
from pyrt_core.images.load import load_archive
from pyrt_core.images.digests import chain_ids, sha256_digest
from pyrt_core.images.store import ImageStore
from pyrt_core.storage.vfs import VfsDriver


def make_store(root, in_use=None, driver_cls=VfsDriver) -> ImageStore:
    root = str(root)
    driver = driver_cls(os.path.join(root, "storage", "vfs"), {})
    return ImageStore(root, driver, "vfs", in_use=in_use)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "root")


def layer_dir(store, layer) -> str:
    return store.driver.get(layer.driver_id)


def rootfs_of(store, image) -> str:
    return store.driver.get(image.layers[-1].split(":", 1)[1])


def snapshot(root) -> dict:
    """Every path under ``root`` (temp files excluded) with type, mode and content hash."""
    out = {}
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(fsutil.TEMP_PREFIX)]
        for n in dirnames + filenames:
            if n.startswith(fsutil.TEMP_PREFIX) or (n == "storage.lock" and dirpath == root):
                continue  # temp files are ignored by readers; the (empty) lock file is no state
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rec = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    rec += (hashlib.sha256(f.read()).hexdigest(),)
            elif stat.S_ISLNK(st.st_mode):
                rec += (os.readlink(p),)
            out[os.path.relpath(p, root)] = rec
    return out


def driver_layers(store) -> list[str]:
    d = os.path.join(store.driver.home, "dir")
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def check_consistent(store):
    """The indexes agree with each other and with the driver."""
    data = fsutil.read_json(store.layers_path, {})
    layers = data.get("layers", {})
    assert not data.get("pending")
    assert not [c for c, r in layers.items() if r.get("incomplete")]
    assert sorted(c.split(":")[1] for c in layers) == driver_layers(store)
    for img in store.list():
        assert img.layers == chain_ids(img.diff_ids)
        for c in img.layers:
            assert c in layers
        assert store.has_blob(img.id)
        if img.digest:
            assert store.has_blob(img.digest)
    idx = fsutil.read_json(store.images_path, {})
    names = [n for i in idx.get("images", {}).values() for n in i["names"]]
    assert len(names) == len(set(names))
    assert idx.get("names", {}) == {n: i for i, d in idx.get("images", {}).items() for n in d["names"]}


# ---------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------


def test_load_oci_layout_dir(store, busybox_oci_layout):
    layout, _ = busybox_oci_layout
    [img] = load_archive(layout, store)
    assert img.names == []  # ref.name "latest" is only a tag
    assert img.id == sha256_digest(store.config_bytes(img))
    assert len(img.layers) == 1 and img.layers == img.diff_ids
    assert img.config.cmd == ["/bin/sh"]
    assert img.os == "linux" and img.architecture
    assert img.size > 1_000_000
    digest, _ = ib.oci_manifest(layout)
    assert img.digest == digest and store.has_blob(digest)
    root = rootfs_of(store, img)
    assert os.path.isfile(os.path.join(root, "bin/busybox"))
    assert os.readlink(os.path.join(root, "bin/sh")) == "busybox"
    assert stat.S_IMODE(os.stat(os.path.join(root, "tmp")).st_mode) == 0o1777
    for ref in (img.id, img.id[7:], img.short_id, img.id[:10], img.id[7:10]):
        assert store.get(ref).id == img.id
    [layer] = store.layers_of(img)
    assert layer.diff_id == img.diff_ids[0] and not layer.incomplete and layer.size == img.size
    assert store.diff_size(layer.diff_id) > layer.size  # the tar is bigger than its content
    check_consistent(store)


def test_load_oci_with_name(store, busybox_oci_layout):
    layout, _ = busybox_oci_layout
    [img] = load_archive(layout, store, name="busybox")
    assert img.names == ["busybox:latest"]
    for ref in ("busybox", "busybox:latest", "localhost/busybox", "docker.io/library/busybox:latest"):
        assert store.get(ref).id == img.id
    with pytest.raises(NotFoundError):
        store.get("busybox:1")


def test_load_oci_archive(store, busybox_oci_archive, busybox_oci_layout):
    [img] = load_archive(busybox_oci_archive, store)
    [same] = load_archive(busybox_oci_layout[0], store)
    assert img.id == same.id
    assert img.names == []
    assert os.path.isfile(os.path.join(rootfs_of(store, img), "bin/busybox"))
    assert len(store.list()) == 1
    check_consistent(store)


def test_load_docker_archive(store, busybox_docker_archive, busybox_oci_layout):
    [img] = load_archive(busybox_docker_archive, store)
    assert img.names == ["docker.io/library/busybox:latest"]
    assert img.digest is None
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox"):
        assert store.get(ref).id == img.id
    [oci] = load_archive(busybox_oci_layout[0], store)
    assert oci.id == img.id  # same config, same image
    assert store.get(img.id).names == ["docker.io/library/busybox:latest"]
    check_consistent(store)


def test_load_zstd(store, tmp_path, busybox_zstd_oci_archive, busybox_zstd_oci_layout, busybox_oci_layout):
    _, m = ib.oci_manifest(busybox_zstd_oci_layout[0])
    assert m["layers"][0]["mediaType"].endswith("+zstd")
    [a] = load_archive(busybox_zstd_oci_archive, store)
    root = rootfs_of(store, a)
    assert os.path.isfile(os.path.join(root, "bin/busybox"))
    other = make_store(tmp_path / "other")
    [b] = load_archive(busybox_zstd_oci_layout[0], other)
    [c] = load_archive(busybox_oci_layout[0], other)
    assert a.diff_ids == b.diff_ids == c.diff_ids  # same uncompressed layers
    check_consistent(store)
    check_consistent(other)


def test_load_compressed_archive(store, tmp_path, busybox_docker_archive):
    gz = tmp_path / "busybox.tar.gz"
    with open(busybox_docker_archive, "rb") as f, gzip.open(gz, "wb", compresslevel=1) as g:
        shutil.copyfileobj(f, g)
    [img] = load_archive(str(gz), store)
    assert img.names == ["docker.io/library/busybox:latest"]
    assert not [n for n in os.listdir(store.images_dir) if n.startswith(".tmp-")]


def test_load_docker25_layout(store, tmp_path, busybox_oci_layout):
    """docker 25+ ``docker save``: OCI blobs + index.json + manifest.json."""
    src = copy_image_dir(busybox_oci_layout[0], str(tmp_path / "d25"))
    mdigest, m = ib.oci_manifest(src)
    with open(os.path.join(src, "manifest.json"), "w") as f:
        json.dump([{"Config": "blobs/sha256/" + m["config"]["digest"][7:],
                    "RepoTags": ["d25:latest"],
                    "Layers": ["blobs/sha256/" + l["digest"][7:] for l in m["layers"]]}], f)
    tar = ib.tar_dir(src, str(tmp_path / "d25.tar"))
    [img] = load_archive(tar, store)
    assert img.names == ["d25:latest"]  # manifest.json wins over index.json
    # the blob path names its digest: a changed blob is caught
    layer = ib.blob_path(src, m["layers"][0]["digest"])
    data = bytearray(open(layer, "rb").read())
    data[4] ^= 0xFF  # gzip header mtime: still decompresses to the same tar
    open(layer, "wb").write(data)
    other = make_store(tmp_path / "other")
    with pytest.raises(ImageError, match="digest mismatch"):
        load_archive(src, other)


def test_docker_archive_layer_through_symlink(store, tmp_path, busybox_docker_archive):
    """docker <= 24 names layers <id>/layer.tar; skopeo (and docker 25) make
    that a symlink to the real file."""
    d = tmp_path / "x"
    d.mkdir()
    with tarfile.open(busybox_docker_archive) as tf:
        tf.extractall(d)
        links = [m.name for m in tf.getmembers() if m.issym() and m.name.endswith("/layer.tar")]
    assert links
    mf = json.load(open(d / "manifest.json"))
    mf[0]["Layers"] = links
    (d / "manifest.json").write_text(json.dumps(mf))
    [img] = load_archive(ib.tar_dir(str(d), str(tmp_path / "x.tar")), store)
    assert os.path.isfile(os.path.join(rootfs_of(store, img), "bin/busybox"))
    # a link out of the archive is refused
    os.unlink(d / links[0])
    os.symlink("../../../etc/passwd", d / links[0])
    other = make_store(tmp_path / "other")
    with pytest.raises(ImageError, match="escapes"):
        load_archive(ib.tar_dir(str(d), str(tmp_path / "y.tar")), other)


def test_layered_image(store, layered_oci_layout):
    [img] = load_archive(layered_oci_layout[0], store)
    assert len(img.layers) == 4
    root = rootfs_of(store, img)
    assert not os.path.lexists(os.path.join(root, "data/gone.txt"))  # whiteout
    assert open(os.path.join(root, "data/keep.txt")).read() == "keep\n"
    assert open(os.path.join(root, "data/new.txt")).read() == "new\n"
    assert stat.S_IMODE(os.stat(os.path.join(root, "data/keep.txt")).st_mode) == 0o4755
    assert sorted(os.listdir(os.path.join(root, "opq"))) == ["fresh.txt"]  # opaque
    assert open(os.path.join(root, "etc/hello")).read() == "hello from layer 3\n"
    t, h = os.stat(os.path.join(root, "links/target.txt")), os.stat(os.path.join(root, "links/hard"))
    assert (t.st_ino, t.st_nlink) == (h.st_ino, 2)
    assert os.readlink(os.path.join(root, "links/sym")) == "target.txt"
    assert os.readlink(os.path.join(root, "links/abs")) == "/etc/passwd"
    assert not [n for n in os.listdir(root) if n.startswith(".wh.")]
    # lower layers are untouched (vfs copies)
    l2 = layer_dir(store, store.layers_of(img)[1])
    assert os.path.exists(os.path.join(l2, "data/gone.txt"))
    assert sorted(os.listdir(os.path.join(l2, "opq"))) == ["a", "sub"]
    check_consistent(store)


def test_layered_docker_archive(store, layered_docker_archive, layered_oci_layout):
    [img] = load_archive(layered_docker_archive, store)
    assert img.names == ["docker.io/library/layered:latest"]
    root = rootfs_of(store, img)
    assert not os.path.lexists(os.path.join(root, "data/gone.txt"))
    assert sorted(os.listdir(os.path.join(root, "opq"))) == ["fresh.txt"]
    [again] = load_archive(layered_oci_layout[0], store)
    assert again.id == img.id and len(driver_layers(store)) == 4


def test_shared_base_stored_once(store, shared_base_layout):
    layout, base_tag, child_tag = shared_base_layout
    imgs = load_archive(layout, store)
    assert len(imgs) == 2
    base, child = sorted(imgs, key=lambda i: len(i.layers))
    assert child.layers[0] == base.layers[0]
    assert len(driver_layers(store)) == 2
    root = rootfs_of(store, child)
    assert open(os.path.join(root, "etc/child")).read() == "child\n"
    assert child.config.cmd == ["/bin/cat", "/etc/child"]
    # removing the base image keeps the layer the child uses
    assert store.remove(base.id) == [f"Deleted: {base.id}"]
    assert len(driver_layers(store)) == 2
    assert store.remove(child.id) == [f"Deleted: {child.id}"]
    assert driver_layers(store) == []
    assert store.list() == []
    assert os.listdir(store.blobs_dir) == []
    check_consistent(store)


def test_unnamed_images_in_one_index(store, tmp_path, shared_base_layout):
    src = copy_image_dir(shared_base_layout[0], str(tmp_path / "s"))
    idx = json.load(open(os.path.join(src, "index.json")))
    for d in idx["manifests"]:
        d.pop("annotations", None)
    json.dump(idx, open(os.path.join(src, "index.json"), "w"))
    imgs = load_archive(src, store)
    assert len(imgs) == 2 and all(i.names == [] for i in imgs)


def test_name_given_for_multi_image_archive_refused(store, shared_base_layout):
    before = snapshot(store.root)
    with pytest.raises(UsageError, match="2 images"):
        load_archive(shared_base_layout[0], store, name="x")
    assert snapshot(store.root) == before


@pytest.mark.parametrize("ann, expected", [
    ({"io.containerd.image.name": "docker.io/library/foo:1"}, ["docker.io/library/foo:1"]),
    ({"org.opencontainers.image.ref.name": "localhost/foo:2"}, ["localhost/foo:2"]),
    ({"org.opencontainers.image.ref.name": "3"}, []),
])
def test_oci_names_from_annotations(store, tmp_path, ann, expected):
    ib.write_oci_layout(str(tmp_path / "l"), [ib.make_layer_tar([("file", "f", "x")])],
                        ref_name=None, annotations=ann)
    [img] = load_archive(str(tmp_path / "l"), store)
    assert img.names == expected


def _put(layout, data: bytes) -> str:
    d = sha256_digest(data)
    with open(ib.blob_path(layout, d), "wb") as f:
        f.write(data)
    return d


def _multiarch(tmp_path) -> str:
    """An OCI layout whose index.json points at an image index of amd64 + arm64."""
    lay = str(tmp_path / "multi")
    descs = []
    for arch in ("amd64", "arm64"):
        info = ib.write_oci_layout(lay, [ib.make_layer_tar([("file", "arch", arch)])],
                                   config={"architecture": arch})
        m = open(ib.blob_path(lay, info["manifest"]), "rb").read()
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": info["manifest"], "size": len(m),
                      "platform": {"os": "linux", "architecture": arch}})
    idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": descs}).encode()
    d = _put(lay, idx)
    with open(os.path.join(lay, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": len(idx),
             "annotations": {"org.opencontainers.image.ref.name": "localhost/multi:1"}}]}, f)
    return lay


def test_nested_index_picks_platform(store, tmp_path):
    lay = _multiarch(tmp_path)
    [img] = load_archive(lay, store, platform="linux/amd64")
    assert img.architecture == "amd64" and img.names == ["localhost/multi:1"]
    [arm] = load_archive(lay, store, platform="linux/arm64")
    assert arm.architecture == "arm64" and arm.names == ["localhost/multi:1"]
    assert store.get(img.id).names == []  # the name moved to the arm64 image
    with pytest.raises(ImageError, match=r"no image for platform linux/s390x \(available: "
                                          r"linux/amd64, linux/arm64\)"):
        load_archive(lay, store, platform="linux/s390x")


# ---------------------------------------------------------------------------
# names and removal
# ---------------------------------------------------------------------------


def test_tag_untag_rmi(store, busybox_docker_archive, layered_oci_layout):
    [bb] = load_archive(busybox_docker_archive, store)
    [lay] = load_archive(layered_oci_layout[0], store, name="layered")
    n_layers = len(driver_layers(store))
    store.tag("busybox", "mine:1")
    store.tag(bb.id[:12], "localhost/other")
    assert store.get("mine:1").id == bb.id
    assert store.get("other").id == bb.id
    assert store.get(bb.id).names == ["docker.io/library/busybox:latest", "mine:1",
                                      "localhost/other:latest"]
    # a name moves between images
    store.tag(lay, "mine:1")
    assert store.get("mine:1").id == lay.id
    assert "mine:1" not in store.get(bb.id).names
    # untag keeps the image
    assert store.untag("mine:1").id == lay.id
    assert store.get(lay.id).names == ["layered:latest"]
    with pytest.raises(NotFoundError):
        store.untag("mine:1")
    # rmi by name with other names left: untag only
    assert store.remove("other") == ["Untagged: localhost/other:latest"]
    # rmi by id of an image with one name: untag + delete, layers and blobs gone
    out = store.remove(bb.id[7:15])
    assert out == ["Untagged: docker.io/library/busybox:latest", f"Deleted: {bb.id}"]
    with pytest.raises(NotFoundError):
        store.get("busybox")
    assert not store.has_blob(bb.id)
    # busybox's layer goes unless the layered image shares it (same base content)
    assert driver_layers(store) == sorted(c[7:] for c in lay.layers)
    assert n_layers == len(set(bb.layers) | set(lay.layers))
    # several names: removing by id needs force
    store.tag(lay, "second")
    with pytest.raises(ConflictError, match="must be forced"):
        store.remove(lay.short_id)
    out = store.remove(lay.short_id, force=True)
    assert out == ["Untagged: layered:latest", "Untagged: second:latest", f"Deleted: {lay.id}"]
    assert driver_layers(store) == [] and store.list() == []
    assert os.listdir(store.blobs_dir) == []
    check_consistent(store)


def test_rmi_last_name_deletes(store, busybox_docker_archive):
    [bb] = load_archive(busybox_docker_archive, store)
    assert store.remove("busybox") == ["Untagged: docker.io/library/busybox:latest", f"Deleted: {bb.id}"]
    assert driver_layers(store) == []


def test_rmi_in_use(tmp_path, busybox_docker_archive):
    users = {"ids": ["c0ffee123456"]}
    store = make_store(tmp_path / "root", in_use=lambda iid: users["ids"])
    [bb] = load_archive(busybox_docker_archive, store)
    before = snapshot(store.root)
    with pytest.raises(ConflictError, match="c0ffee123456"):
        store.remove("busybox")
    with pytest.raises(ConflictError, match="c0ffee123456"):
        store.remove(bb.id)
    assert snapshot(store.root) == before
    # force: the names go, the image stays for its containers
    assert store.remove("busybox", force=True) == ["Untagged: docker.io/library/busybox:latest"]
    assert store.get(bb.id).names == []
    assert len(driver_layers(store)) == 1
    users["ids"] = []
    assert store.remove(bb.id) == [f"Deleted: {bb.id}"]
    assert driver_layers(store) == []


def test_get_errors(store, busybox_oci_layout):
    with pytest.raises(NotFoundError, match="no such image: nothing"):
        store.get("nothing")
    [img] = load_archive(busybox_oci_layout[0], store)
    with pytest.raises(NotFoundError):
        store.get(img.id[7:9])  # prefixes need 3 digits
    with pytest.raises(NotFoundError):
        store.get("sha256:" + "0" * 64)
    with pytest.raises(UsageError):
        store.tag(img, "Bad Name")
    with pytest.raises(UsageError):
        store.tag(img, "x@sha256:" + "a" * 64)


# ---------------------------------------------------------------------------
# corrupt inputs: clear error, store unchanged
# ---------------------------------------------------------------------------


@pytest.fixture
def loaded_store(store, busybox_docker_archive):
    load_archive(busybox_docker_archive, store)
    return store


def assert_refused(store, path, exc, match, **kw):
    before = snapshot(store.root)
    with pytest.raises(exc, match=match) as ei:
        load_archive(str(path), store, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(path))
    assert snapshot(store.root) == before, "the failed load changed the store"
    check_consistent(store)
    return msg


def test_failed_load_into_empty_store_leaves_nothing(store, tmp_path, layered_oci_layout):
    lay = copy_image_dir(layered_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    p = ib.blob_path(lay, m["layers"][-1]["digest"])
    data = bytearray(open(p, "rb").read())
    data[5] ^= 1
    open(p, "wb").write(data)
    assert_refused(store, lay, ImageError, "digest mismatch")
    assert not os.path.exists(store.images_path) and not os.path.exists(store.layers_path)


def test_truncated_oci_archive(loaded_store, tmp_path, busybox_oci_archive):
    data = open(busybox_oci_archive, "rb").read()
    with tarfile.open(busybox_oci_archive) as tf:
        end = max(m.offset_data + m.size for m in tf.getmembers())
    for cut in (len(data) // 2, end - 10, end, 700):
        p = tmp_path / f"cut{cut}.tar"
        p.write_bytes(data[:cut])
        assert_refused(loaded_store, p, ImageError, "unexpected end of data")


def test_truncated_docker_archive(loaded_store, tmp_path, layered_docker_archive):
    data = open(layered_docker_archive, "rb").read()
    p = tmp_path / "cut.tar"
    p.write_bytes(data[: len(data) * 2 // 3])
    assert_refused(loaded_store, p, ImageError, "unexpected end of data")


def test_truncated_compressed_archive(loaded_store, tmp_path, layered_docker_archive):
    gz = gzip.compress(open(layered_docker_archive, "rb").read(), 1)
    p = tmp_path / "cut.tar.gz"
    p.write_bytes(gz[: len(gz) // 2])
    assert_refused(loaded_store, p, ImageError, "truncated")


def test_truncated_layer_blob(loaded_store, tmp_path, layered_oci_layout):
    lay = copy_image_dir(layered_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    p = ib.blob_path(lay, m["layers"][0]["digest"])
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    assert_refused(loaded_store, lay, ImageError, "truncated: unexpected end of data")


def test_flipped_byte_in_layer_digest_mismatch(loaded_store, tmp_path, layered_oci_layout):
    lay = copy_image_dir(layered_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    p = ib.blob_path(lay, m["layers"][-1]["digest"])  # the last layer: 3 applied first
    data = bytearray(open(p, "rb").read())
    data[5] ^= 0x01  # gzip mtime: decompresses fine, digest differs
    open(p, "wb").write(data)
    assert_refused(loaded_store, lay, ImageError, r"layer blob sha256:\w+: digest mismatch")


def test_flipped_byte_in_compressed_data(loaded_store, tmp_path, layered_oci_layout):
    lay = copy_image_dir(layered_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    p = ib.blob_path(lay, m["layers"][0]["digest"])  # its own busybox base
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 0x55
    open(p, "wb").write(data)
    assert_refused(loaded_store, lay, ImageError, "corrupt|digest mismatch|truncated")


def test_flipped_byte_in_docker_archive_layer(store, tmp_path, busybox_docker_archive):
    # a store that has something, but not busybox (a stored layer would be reused unread)
    small = str(tmp_path / "small")
    ib.write_oci_layout(small, [ib.make_layer_tar([("file", "f", "x")])])
    load_archive(small, store, name="small")
    d = tmp_path / "x"
    d.mkdir()
    with tarfile.open(busybox_docker_archive) as tf:
        tf.extractall(d)
    mf = json.load(open(d / "manifest.json"))
    layer = d / mf[0]["Layers"][0]
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the busybox binary
    layer.write_bytes(data)
    mf[0]["RepoTags"] = ["other:latest"]
    (d / "manifest.json").write_text(json.dumps(mf))
    tar = ib.tar_dir(str(d), str(tmp_path / "x.tar"))
    msg = assert_refused(store, tar, ImageError, "content digest mismatch")
    assert "uncompressed layer" in msg


def test_wrong_diff_id_in_config(loaded_store, tmp_path):
    lay = str(tmp_path / "l")
    ib.write_oci_layout(lay, [ib.make_layer_tar([("file", "f", "x")])],
                        config={"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}})
    assert_refused(loaded_store, lay, ImageError, "content digest mismatch")


def test_config_blob_changed(loaded_store, tmp_path, busybox_oci_layout):
    lay = copy_image_dir(busybox_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    p = ib.blob_path(lay, m["config"]["digest"])
    cfg = open(p, "rb").read()
    open(p, "wb").write(cfg.replace(b"/bin/sh", b"/bin/xx"))
    assert_refused(loaded_store, lay, ImageError, "config blob sha256:\\w+: digest mismatch")


@pytest.mark.parametrize("text, match", [
    ("{nope", "malformed index.json"),
    ("[]", "malformed index.json"),
    ('{"schemaVersion": 2, "manifests": []}', "lists no images"),
    ('{"schemaVersion": 2, "manifests": [{"digest": "md5:abc", "size": 1}]}', "unsupported digest"),
    ('{"schemaVersion": 2, "manifests": [{"digest": "sha256:../../../etc/passwd"}]}', "invalid"),
])
def test_malformed_index(loaded_store, tmp_path, busybox_oci_layout, text, match):
    lay = copy_image_dir(busybox_oci_layout[0], str(tmp_path / "l"))
    with open(os.path.join(lay, "index.json"), "w") as f:
        f.write(text)
    assert_refused(loaded_store, lay, ImageError, match)
    # and the same as a tar
    assert_refused(loaded_store, ib.tar_dir(lay, str(tmp_path / "l.tar")), ImageError, match)


def test_malformed_manifest_and_config(loaded_store, tmp_path):
    lay = str(tmp_path / "l")
    info = ib.write_oci_layout(lay, [ib.make_layer_tar([("file", "f", "x")])])
    bad = _put(lay, b"{not json")
    idx = json.load(open(os.path.join(lay, "index.json")))
    idx["manifests"][0].update(digest=bad, size=9)
    json.dump(idx, open(os.path.join(lay, "index.json"), "w"))
    assert_refused(loaded_store, lay, ImageError, "malformed manifest")
    m = json.load(open(ib.blob_path(lay, info["manifest"])))
    cfg = _put(lay, b'{"rootfs": 1}')
    m["config"].update(digest=cfg, size=13)
    md = _put(lay, json.dumps(m).encode())
    idx["manifests"][0].update(digest=md, size=os.path.getsize(ib.blob_path(lay, md)))
    json.dump(idx, open(os.path.join(lay, "index.json"), "w"))
    assert_refused(loaded_store, lay, ImageError, "malformed image config")


def test_missing_blob(loaded_store, tmp_path, layered_oci_layout):
    lay = copy_image_dir(layered_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    os.unlink(ib.blob_path(lay, m["layers"][2]["digest"]))
    assert_refused(loaded_store, lay, ImageError, r"missing blob sha256:\w+ \(layer\)")
    assert_refused(loaded_store, ib.tar_dir(lay, str(tmp_path / "l.tar")), ImageError, "missing blob")


def test_missing_docker_layer(loaded_store, tmp_path, layered_docker_archive):
    d = tmp_path / "x"
    d.mkdir()
    with tarfile.open(layered_docker_archive) as tf:
        tf.extractall(d)
    mf = json.load(open(d / "manifest.json"))
    os.unlink(d / mf[0]["Layers"][1])
    assert_refused(loaded_store, ib.tar_dir(str(d), str(tmp_path / "x.tar")), ImageError, "missing blob")


def test_path_escaping_layer(loaded_store, tmp_path):
    outside = os.path.join(loaded_store.driver.home, "dir", "escape")
    for i, entries in enumerate([
        [("file", "ok", "fine"), ("file", "../escape", "evil")],
        [("file", "ok", "fine"), ("file", "a/../../escape", "evil")],
        [("hardlink", "pw", "../../../../etc/passwd")],
    ]):
        lay = str(tmp_path / f"l{i}")
        ib.write_oci_layout(lay, [ib.make_layer_tar([("file", "base", "b")]), ib.make_layer_tar(entries)])
        msg = assert_refused(loaded_store, lay, LayerError, "escapes|outside|does not exist")
        assert not os.path.exists(outside), msg


def test_unsupported_media_types_and_schema1(loaded_store, tmp_path):
    lay = str(tmp_path / "l1")
    ib.write_oci_layout(lay, [ib.make_layer_tar([("file", "f", "x")])],
                        layer_media_type="application/vnd.oci.image.layer.v1.tar+bzip2")
    assert_refused(loaded_store, lay, ImageError, "unsupported layer media type .*bzip2")
    # a non-image artifact
    lay = str(tmp_path / "l2")
    info = ib.write_oci_layout(lay, [])
    m = json.load(open(ib.blob_path(lay, info["manifest"])))
    m["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    md = _put(lay, json.dumps(m).encode())
    idx = json.load(open(os.path.join(lay, "index.json")))
    idx["manifests"][0].update(digest=md, size=os.path.getsize(ib.blob_path(lay, md)))
    json.dump(idx, open(os.path.join(lay, "index.json"), "w"))
    assert_refused(loaded_store, lay, ImageError, "unsupported config media type .*not a container image")
    # schema 1, by media type and by content
    s1 = json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}).encode()
    d = _put(lay, s1)
    for mt in ("application/vnd.docker.distribution.manifest.v1+prettyjws", None):
        desc = {"digest": d, "size": len(s1)}
        if mt:
            desc["mediaType"] = mt
        json.dump({"schemaVersion": 2, "manifests": [desc]}, open(os.path.join(lay, "index.json"), "w"))
        assert_refused(loaded_store, lay, ImageError, "schema 1 manifests are not supported")
    # unknown manifest type
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.example+json", "digest": d, "size": len(s1)}]},
        open(os.path.join(lay, "index.json"), "w"))
    assert_refused(loaded_store, lay, ImageError, "unsupported manifest media type")


def test_not_an_archive(loaded_store, tmp_path):
    p = tmp_path / "random.bin"
    p.write_bytes(os.urandom(5000))
    assert_refused(loaded_store, p, ImageError, "not an image archive")
    p = tmp_path / "empty.tar"
    p.write_bytes(b"")
    assert_refused(loaded_store, p, ImageError, "empty file")
    assert_refused(loaded_store, tmp_path / "missing.tar", ImageError, "no such file")
    (tmp_path / "dir").mkdir()
    assert_refused(loaded_store, tmp_path / "dir", ImageError, "not an image archive")
    t = tmp_path / "plain.tar"
    with tarfile.open(t, "w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"hi"))
    assert_refused(loaded_store, t, ImageError, "no manifest.json or index.json")
    p = tmp_path / "zeros.gz"
    p.write_bytes(gzip.compress(b"not a tar at all" * 100))
    assert_refused(loaded_store, p, ImageError, "not an image archive")


def test_failure_keeps_shared_layers_of_other_images(store, tmp_path, shared_base_layout):
    layout, base_tag, child_tag = shared_base_layout
    src = copy_image_dir(layout, str(tmp_path / "s"))
    idx = json.load(open(os.path.join(src, "index.json")))
    base_desc = [d for d in idx["manifests"] if d["annotations"][ib_ref()] == base_tag]
    # first store only the base image
    only_base = copy_image_dir(src, str(tmp_path / "b"))
    json.dump({**idx, "manifests": base_desc}, open(os.path.join(only_base, "index.json"), "w"))
    [base] = load_archive(only_base, store)
    # then fail the child's own layer: the base layer (shared, complete) stays
    child = [d for d in idx["manifests"] if d["annotations"][ib_ref()] == child_tag][0]
    m = json.load(open(ib.blob_path(src, child["digest"])))
    top = ib.blob_path(src, m["layers"][-1]["digest"])
    data = bytearray(open(top, "rb").read())
    data[5] ^= 1
    open(top, "wb").write(data)
    assert_refused(store, src, ImageError, "digest mismatch")
    assert store.get(base.id).layers == base.layers
    assert len(driver_layers(store)) == 1


def ib_ref():
    return "org.opencontainers.image.ref.name"


# ---------------------------------------------------------------------------
# layer and blob primitives, recovery
# ---------------------------------------------------------------------------


def test_put_blob(store):
    d = store.put_blob(b"hello")
    assert d == sha256_digest(b"hello") and store.read_blob(d) == b"hello"
    assert store.put_blob(io.BytesIO(b"stream" * 100000)) == sha256_digest(b"stream" * 100000)
    with pytest.raises(ImageError, match="digest mismatch"):
        store.put_blob(io.BytesIO(b"other"), expected_digest=sha256_digest(b"x"))
    with pytest.raises(ImageError, match="digest mismatch"):
        store.put_blob(b"other", expected_digest=sha256_digest(b"x"))
    assert sorted(os.listdir(store.blobs_dir)) == sorted(
        x.split(":")[1] for x in (d, sha256_digest(b"stream" * 100000)))


def test_add_layer_verifies_and_reuses(store):
    tar = ib.make_layer_tar([("file", "a", "1")])
    diff = sha256_digest(tar)
    with pytest.raises(ImageError, match="content digest mismatch"):
        store.add_layer("sha256:" + "2" * 64, None, io.BytesIO(tar))
    assert store.layers() == [] and driver_layers(store) == []
    layer = store.add_layer(diff, None, io.BytesIO(tar))
    assert layer.chain_id == diff and layer.size == 1 and not layer.incomplete
    again = store.add_layer(diff, None, io.BytesIO(b"not even read"))
    assert again == layer
    tar2 = ib.make_layer_tar([("file", "b", "22")])
    child = store.add_layer(sha256_digest(tar2), diff, io.BytesIO(tar2))
    assert child.parent == diff and child.chain_id == chain_ids([diff, sha256_digest(tar2)])[1]
    assert sorted(os.listdir(layer_dir(store, child))) == ["a", "b"]


def test_recover(store, busybox_oci_layout):
    [img] = load_archive(busybox_oci_layout[0], store)
    assert store.recover() == []
    # a crashed process left an incomplete layer and (pending) an orphan complete one
    tar = ib.make_layer_tar([("file", "orphan", "1")])
    orphan = store.add_layer(sha256_digest(tar), None, io.BytesIO(tar))
    store.driver.create("ab" * 32, None)
    data = fsutil.read_json(store.layers_path, {})
    data["layers"]["sha256:" + "ab" * 32] = {"diff_id": "sha256:" + "ab" * 32, "parent": None,
                                             "size": 0, "incomplete": True}
    data["pending"] = True
    fsutil.write_json(store.layers_path, data)
    fsutil.atomic_write(os.path.join(store.images_dir, "x"), b"")  # a real file stays
    open(os.path.join(store.images_dir, ".tmp-images.json-dead"), "w").close()
    # another process holds the lock: recover does not wait (flock on another open file
    # blocks this process too: a recover that waited would never return)
    import threading

    with fsutil.FileLock(store.lock_path):
        got = []
        t = threading.Thread(target=lambda: got.append(store.recover()), daemon=True)
        t.start()
        t.join(60)  # a hang guard, not a speed check
        waited = t.is_alive()
    if waited:
        t.join(60)
    assert not waited and got == [[]], "recover waited for the lock"
    removed = store.recover()
    assert sorted(removed) == sorted(["sha256:" + "ab" * 32, orphan.chain_id])
    assert driver_layers(store) == [img.layers[0][7:]]
    assert not [n for n in os.listdir(store.images_dir) if n.startswith(".tmp-")]
    check_consistent(store)
    assert store.recover() == []


def test_incomplete_leftover_is_redone(store):
    tar = ib.make_layer_tar([("file", "a", "1")])
    diff = sha256_digest(tar)
    store.driver.create(diff[7:], None)  # half-made by a crashed process
    data = {"layers": {diff: {"diff_id": diff, "parent": None, "size": 0, "incomplete": True}}}
    fsutil.write_json(store.layers_path, data)
    layer = store.add_layer(diff, None, io.BytesIO(tar))
    assert not layer.incomplete and os.listdir(layer_dir(store, layer)) == ["a"]


# ---------------------------------------------------------------------------
# parallel apply (a driver whose layers hold only their own diff)
# ---------------------------------------------------------------------------


class ParallelDriver(VfsDriver):
    """vfs, but a new layer starts empty (as overlay's diff dirs do), so layers
    can be applied in any order; it records how many applies overlapped."""

    active = 0
    peak = 0
    _mu = threading.Lock()

    def create(self, id, parent):
        super().create(id, None)

    def apply_diff(self, id, parent, tar):
        cls = type(self)
        with cls._mu:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        try:
            time.sleep(0.2)
            return super().apply_diff(id, parent, tar)
        finally:
            with cls._mu:
                cls.active -= 1

    def supports_parallel_apply(self):
        return True


def test_parallel_apply(tmp_path, layered_oci_layout):
    ParallelDriver.peak = 0
    store = make_store(tmp_path / "root", driver_cls=ParallelDriver)
    [img] = load_archive(layered_oci_layout[0], store)
    assert ParallelDriver.peak >= 2
    layers = store.layers_of(img)
    assert [l.parent for l in layers] == [None] + img.layers[:-1]
    top = layer_dir(store, layers[-1])
    assert sorted(os.listdir(top)) == ["opq"]  # only its own diff
    assert sorted(os.listdir(os.path.join(top, "opq"))) == ["fresh.txt"]
    check_consistent(store)


def test_parallel_apply_failure_rolls_back(tmp_path, layered_oci_layout):
    store = make_store(tmp_path / "root", driver_cls=ParallelDriver)
    lay = copy_image_dir(layered_oci_layout[0], str(tmp_path / "l"))
    _, m = ib.oci_manifest(lay)
    p = ib.blob_path(lay, m["layers"][1]["digest"])
    data = bytearray(open(p, "rb").read())
    data[5] ^= 1
    open(p, "wb").write(data)
    with pytest.raises(ImageError, match="digest mismatch"):
        load_archive(lay, store)
    assert driver_layers(store) == [] and store.list() == []
    check_consistent(store)


# ---------------------------------------------------------------------------
# concurrency between processes
# ---------------------------------------------------------------------------


def _load_many(root, paths, rounds, q):
    try:
        store = make_store(root)
        for _ in range(rounds):
            for p in paths:
                load_archive(p, store)
            store.tag("busybox", f"p{os.getpid()}")
        q.put("ok")
    except BaseException as e:  # report to the parent
        q.put(f"{type(e).__name__}: {e}")


def test_concurrent_loads(tmp_path, busybox_docker_archive, layered_oci_layout, busybox_oci_archive):
    root = str(tmp_path / "root")
    make_store(root)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    paths = [busybox_docker_archive, layered_oci_layout[0], busybox_oci_archive]
    procs = [ctx.Process(target=_load_many, args=(root, paths, 3, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    assert results == ["ok", "ok"]
    store = make_store(root)
    imgs = store.list()
    assert len(imgs) == 2
    bb = store.get("busybox")
    assert sorted(bb.names) == sorted(["docker.io/library/busybox:latest"] +
                                      [f"p{p.pid}:latest" for p in procs])
    assert len(driver_layers(store)) == len({c for i in imgs for c in i.layers}) == 5
    check_consistent(store)
    for d in (store.images_dir, store.blobs_dir, os.path.dirname(store.layers_path)):
        assert not [n for n in os.listdir(d) if n.startswith(".tmp-")]


# ---------------------------------------------------------------------------
# a bigger image
# ---------------------------------------------------------------------------


def test_synthetic_50mb(store, synthetic_oci_layout):
    t = time.monotonic()
    [img] = load_archive(synthetic_oci_layout, store)
    elapsed = time.monotonic() - t
    assert len(img.layers) == 5 and img.size > 45 * (1 << 20)
    root = rootfs_of(store, img)
    assert len(os.listdir(os.path.join(root, "small"))) == 50
    print(f"synthetic image ({img.size / 1e6:.0f} MB, 5 layers) loaded in {elapsed:.2f}s")
