"""ImageReference.parse, and the name rules of the image store built on it."""
from __future__ import annotations

import pytest

from pyrt_core.errors import UsageError
from pyrt_core.images.digests import chain_id, chain_ids
from pyrt_core.images.names import name_key, normalize_name
from pyrt_core.models import ImageReference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("busybox", None, "busybox", "latest", None),
    ("busybox:1.36", None, "busybox", "1.36", None),
    ("library/busybox", None, "library/busybox", "latest", None),
    ("docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", None),
    ("localhost/busybox", "localhost", "busybox", "latest", None),
    ("localhost:5000/team/app:v1.2_3-rc", "localhost:5000", "team/app", "v1.2_3-rc", None),
    ("quay.io/a/b/c:x", "quay.io", "a/b/c", "x", None),
    ("registry:5000/app", "registry:5000", "app", "latest", None),
    ("my-app_x.y", None, "my-app_x.y", "latest", None),
    ("a__b", None, "a__b", "latest", None),
    (f"busybox@{D}", None, "busybox", None, D),
    (f"busybox:1@{D}", None, "busybox", "1", D),
    (f"ghcr.io/o/r@{D}", "ghcr.io", "o/r", None, D),
    ("app:" + "t" * 128, None, "app", "t" * 128, None),
])
def test_parse_valid(text, registry, repository, tag, digest):
    r = ImageReference.parse(text)
    assert (r.registry, r.repository, r.tag, r.digest, r.transport) == \
        (registry, repository, tag, digest, "registry")


@pytest.mark.parametrize("text", [
    "", " busybox", "busybox ", "Busybox", "busy box", "busybox:", "busybox:-x",
    "busybox:" + "t" * 129, "busybox@sha256", "busybox@", "-busybox", "busybox-",
    "a//b", "/busybox", "busybox/", "a:b:c", "UPPER/case:tag",
])
def test_parse_invalid(text):
    with pytest.raises(UsageError):
        ImageReference.parse(text)


@pytest.mark.parametrize("text, transport, path", [
    ("oci:/tmp/layout", "oci", "/tmp/layout"),
    ("oci:/tmp/layout:latest", "oci", "/tmp/layout:latest"),
    ("oci-archive:img.tar", "oci-archive", "img.tar"),
    ("docker-archive:/x/y.tar:busybox:latest", "docker-archive", "/x/y.tar:busybox:latest"),
])
def test_parse_transports(text, transport, path):
    r = ImageReference.parse(text)
    assert (r.transport, r.repository) == (transport, path)
    assert str(r) == text


def test_transport_without_path():
    with pytest.raises(UsageError, match="missing path"):
        ImageReference.parse("oci:")


@pytest.mark.parametrize("text, expected", [
    ("busybox", "busybox:latest"),
    ("busybox:1", "busybox:1"),
    ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
    (f"busybox@{D}", f"busybox@{D}"),
])
def test_str(text, expected):
    assert str(ImageReference.parse(text)) == expected


def test_name_property():
    assert ImageReference.parse("docker.io/library/busybox:1").name == "docker.io/library/busybox"
    assert ImageReference.parse("busybox").name == "busybox"


# -- the store's name rules ----------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("localhost/x:y", "localhost/x:y"),
])
def test_normalize_name(text, expected):
    assert normalize_name(text) == expected


@pytest.mark.parametrize("text", [f"busybox@{D}", "oci:/x", "Bad", ""])
def test_normalize_name_refuses(text):
    with pytest.raises(UsageError):
        normalize_name(text)


def test_name_key_equivalences():
    k = name_key("busybox")
    assert k == name_key("busybox:latest")
    assert k == name_key("docker.io/library/busybox:latest")
    assert k == name_key("localhost/busybox")
    assert k != name_key("busybox:1")
    assert k != name_key("quay.io/busybox")
    assert name_key("docker.io/me/app") == name_key("me/app:latest")
    assert name_key("Not Valid") is None


def test_chain_ids():
    import hashlib

    a, b, c = ("sha256:" + h * 64 for h in "abc")
    assert chain_id(None, a) == a
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_id(a, b) == ab
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_ids([]) == []
