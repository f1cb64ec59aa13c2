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


def test_name_and_tag_checks_without_re_agree_with_the_patterns():
    """models._match answers the names and common tags without re: on random strings
    (ASCII, separators, a newline, non-ASCII word characters) it says what the pattern
    says of the whole string (fullmatch: re.match's $ took a trailing newline, so
    "a\n/b" was a valid name)."""
    import random
    import re

    from pyrt_core import models

    rnd = random.Random(17)
    alphabets = ("abcz09AZ_.-_:/@ \n\u00e9\u0661", "a0a0a0.-_-_")  # the second: separators
    for kind in ("name", "tag"):
        pattern = re.compile(models._PATTERNS[kind])
        for i in range(8000):
            alphabet = alphabets[i % 2]
            text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
            assert bool(models._match(kind, text)) == bool(pattern.fullmatch(text)), (kind, text)
        for text in ("a" * 128, "a" * 129, "busybox", "v1.2-rc_3", ".hidden", "-x", "x\n",
                     "pyrt-demo", "a__b", "a___b", "a--b", "a.-b", "a._b", "a..b", "a-"):
            assert bool(models._match(kind, text)) == bool(pattern.fullmatch(text)), (kind, text)


def test_digest_and_hex_checks_are_exact():
    """is_digest/is_hex (no re): exactly sha256:<64 lowercase hex>; a trailing newline,
    which the old pattern's ``$`` let through, is refused."""
    from pyrt_core.errors import ImageError
    from pyrt_core.images.digests import check_digest, is_digest, is_hex

    assert is_digest(D) and check_digest(D) == D
    for bad in (D + "\n", D.upper(), D[:-1], D + "0", "sha512:" + "ab" * 32, "ab" * 32, "",
                None, 5, "sha256:" + "g" * 64, "sha256:" + "\u0661" * 64):
        assert not is_digest(bad), bad
        with pytest.raises(ImageError):
            check_digest(bad)  # type: ignore[arg-type]
    assert is_hex("0a9f") and not is_hex("") and not is_hex("0A") and not is_hex("ab\n")


@pytest.mark.parametrize("text", ["a\n/b", "busybox:v1\n@" + D, "a/b\n:1"])
def test_a_newline_inside_a_reference_is_refused(text):
    with pytest.raises(UsageError, match="invalid reference format"):
        ImageReference.parse(text)
