"""Unit tests of the registry plugin: no registry, no root."""
from __future__ import annotations

import base64
import io
import json
import os
import stat

import pytest

from pyrt_core.errors import UsageError
from pyrt_core.models import ImageReference
from pyrt_image_registry import authfile, client, options, progress, pull


def test_parse_challenge():
    s, p = client.parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                                  'scope="repository:a/b:pull,push"')
    assert s == "bearer" and p == {"realm": "https://auth.example/token", "service": "reg",
                                   "scope": "repository:a/b:pull,push"}
    assert client.parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


@pytest.mark.parametrize("text,host,repo", [
    ("busybox", "docker.io", "library/busybox"),
    ("docker.io/busybox:1", "docker.io", "library/busybox"),
    ("user/app", "docker.io", "user/app"),
    ("registry.example:5000/team/app:1.2", "registry.example:5000", "team/app"),
    ("localhost/app@sha256:" + "a" * 64, "localhost", "app"),
])
def test_split_reference(text, host, repo):
    assert client.split_reference(ImageReference.parse(text)) == (host, repo)


def test_authfile_roundtrip(tmp_path):
    path = str(tmp_path / "sub" / "auth.json")
    assert authfile.lookup("r:5000", path) is None
    authfile.store("r:5000", "alice", "pa:ss", path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.load(open(path))
    assert base64.b64decode(doc["auths"]["r:5000"]["auth"]) == b"alice:pa:ss"
    assert authfile.lookup("r:5000", path) == ("alice", "pa:ss")
    authfile.store("other", "bob", "x", path)
    assert authfile.remove("r:5000", path) and not authfile.remove("r:5000", path)
    assert authfile.lookup("other", path) == ("bob", "x")
    assert authfile.remove(None, path) and json.load(open(path)) == {"auths": {}}


def test_authfile_docker_forms(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {
        "auth": base64.b64encode(b"u:p").decode()}, "x": {"username": "a", "password": "b"}},
        "credsStore": "desktop"}))
    assert authfile.lookup("docker.io", str(path)) == ("u", "p")
    assert authfile.lookup("x", str(path)) == ("a", "b")
    path.write_text("{nope")
    with pytest.raises(UsageError):
        authfile.lookup("x", str(path))


def test_default_authfile_path():
    assert authfile.default_path({"REGISTRY_AUTH_FILE": "/a"}) == "/a"
    assert authfile.default_path({"XDG_RUNTIME_DIR": "/run/user/5"}) == "/run/user/5/containers/auth.json"


def test_options_precedence(tmp_path):
    cfg = tmp_path / "pyrt.toml"
    cfg.write_text('[registries]\ninsecure = ["a:1"]\nmax_concurrent_downloads = 5\n'
                   'certs_dir = "/c"\nauthfile = "/f"\n')
    o = options.from_settings({"config_file": str(cfg)}, env={})
    assert o.is_insecure("a:1") and not o.is_insecure("b:1")
    assert o.max_concurrent_downloads == 5 and o.certs_dirs == ["/c"] and o.authfile == "/f"
    o = options.from_settings({"config_file": str(cfg), "max_concurrent_downloads": 2,
                               "authfile": "/g", "tls_verify": False},
                              env={"PYRT_INSECURE_REGISTRIES": "b:2", "REGISTRY_AUTH_FILE": "/e"})
    assert o.max_concurrent_downloads == 2 and o.authfile == "/g" and o.is_insecure("zzz")
    o = options.from_settings({"tls_verify": True}, env={"PYRT_INSECURE_REGISTRIES": "b:2"})
    assert not o.is_insecure("b:2")
    with pytest.raises(UsageError):
        options.from_settings({"creds": "nocolon"}, env={})
    with pytest.raises(UsageError):
        options.from_settings({"max_concurrent_downloads": 0}, env={})


def test_platform_pick():
    descs = [{"digest": "a", "platform": {"os": "linux", "architecture": "amd64"}},
             {"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
             {"digest": "c", "platform": {"os": "linux", "architecture": "arm64"}}]
    assert pull.pick_platform(descs, "linux/arm64", "x")["digest"] == "c"
    assert pull.pick_platform(descs, "linux/arm/v7", "x")["digest"] == "b"
    with pytest.raises(Exception, match="available: linux/amd64, linux/arm/v7, linux/arm64"):
        pull.pick_platform(descs, "linux/s390x", "x")
    with pytest.raises(UsageError):
        pull.check_platform("linux")


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_modes():
    out = io.StringIO()
    p = progress.Progress("auto", out)
    assert p.mode == "plain"
    p.add("sha256:" + "ab" * 32, 100)
    p.state("sha256:" + "ab" * 32, "Downloading")
    p.update("sha256:" + "ab" * 32, 50)
    p.state("sha256:" + "ab" * 32, "Download complete")
    assert out.getvalue().splitlines() == ["abababababab: Waiting", "abababababab: Downloading",
                                           "abababababab: Download complete"]
    tty = _Tty()
    p = progress.Progress("auto", tty)
    assert p.mode == "tty"
    p.add("sha256:" + "cd" * 32, 1000)
    p.state("sha256:" + "cd" * 32, "Downloading")
    p._last = 0
    p.update("sha256:" + "cd" * 32, 500)
    p.close()
    assert "[===============>" in tty.getvalue() and "\x1b[" in tty.getvalue() and "500B/1.0kB" in tty.getvalue()
    q = io.StringIO()
    p = progress.Progress("quiet", q)
    p.add("sha256:" + "ef" * 32, 1)
    p.message("x")
    assert q.getvalue() == ""


def test_token_refresh(monkeypatch, tmp_path):
    # an auth file of our own: the user's (~/.docker/config.json) is not this test's business
    c = client.Client("r:1", options.RegistryOptions(authfile=str(tmp_path / "auth.json")))
    c._auth_scheme = "bearer"
    c._challenge = {"realm": "http://r:1/token", "service": "s"}
    issued = []

    def fake_fetch(scope):
        issued.append(scope)
        return f"tok{len(issued)}", now[0] + 60 - 10

    now = [1000.0]
    monkeypatch.setattr(client.time, "time", lambda: now[0])
    monkeypatch.setattr(c, "_fetch_token", fake_fetch)
    assert c._authorization("repository:a:pull") == "Bearer tok1"
    assert c._authorization("repository:a:pull") == "Bearer tok1"
    now[0] += 55  # close to expiry: a new token
    assert c._authorization("repository:a:pull") == "Bearer tok2"
    assert c._authorization("repository:b:pull") == "Bearer tok3"  # per scope
    assert c._authorization("repository:b:pull", refresh=True) == "Bearer tok4"


def test_basic_without_credentials():
    c = client.Client("r:1", options.RegistryOptions(authfile="/nonexistent/auth.json"))
    c._auth_scheme = "basic"
    with pytest.raises(client.AuthError, match="pyrt login r:1"):
        c._authorization(None)
