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
from pyrt_image_registry import authfile, client, options, origins, progress, pull


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


@pytest.mark.parametrize("url,want", [
    ("https://Reg.example/v2/", ("https", "reg.example", 443)),
    ("https://reg.example:443/x", ("https", "reg.example", 443)),
    ("http://reg.example/x", ("http", "reg.example", 80)),
    ("https://[::1]:5000/v2/", ("https", "::1", 5000)),
    ("https://reg.example:99999/", None),
    ("/relative", None),
])
def test_origin(url, want):
    assert origins.origin(url) == want


@pytest.mark.parametrize("registry,other,same", [
    ("registry-1.docker.io", "auth.docker.io", True),      # Docker Hub's layout
    ("registry.gitlab.com", "gitlab.com", True),           # GitLab's
    ("registry.example.co.uk", "auth.example.co.uk", True),
    ("example.co.uk", "evil.co.uk", False),                 # a public second level is nobody's
    ("registry.example", "evil.example", False),           # nor a top-level domain
    ("registry.example.com", "example.com.evil.net", False),
    ("registry.example.com", "notexample.com", False),
    ("127.0.0.1", "127.0.0.2", False),
    ("10.0.0.1", "10.0.0.1", False),                       # IPs: only the exact host, elsewhere
])
def test_same_domain(registry, other, same):
    assert origins.same_domain(registry, other) is same


@pytest.mark.parametrize("realm,endpoint,insecure,why", [
    ("https://reg.example:5001/auth", "reg.example:5000", False, None),   # beside the registry
    ("https://auth.docker.io/token", "registry-1.docker.io", False, None),
    ("http://reg.example:5001/auth", "reg.example:5000", False, "plain http"),
    ("http://reg.example:5001/auth", "reg.example:5000", True, None),     # insecure registry
    ("http://auth.reg.example/auth", "x.reg.example:5000", True, "plain http on another host"),
    ("https://attacker.example/t", "reg.example.com", False, "another host"),
    ("https://127.0.0.2/t", "127.0.0.1:5000", True, "another host"),
])
def test_realm_withholds(realm, endpoint, insecure, why):
    assert origins.realm_withholds(realm, endpoint, insecure) == why


def test_redirect_back_to_the_registry_keeps_no_credentials(monkeypatch, tmp_path):
    c = client.Client("r.example:5000", options.RegistryOptions(credentials=("u", "p")))
    c.scheme, c._auth_scheme = "https", "basic"
    sent = []

    class Resp:
        def __init__(self, status, location=None):
            self.status, self._loc = status, location

        def getheader(self, name, default=None):
            return self._loc if name == "Location" else default

        def read(self):
            return b"{}"

    hops = iter([Resp(307, "https://r.example:5000/v2/b"),          # own origin: keeps them
                 Resp(302, "https://cdn.example/blob"),             # leaves
                 Resp(307, "https://r.example:5000/v2/chosen"),     # and comes back
                 Resp(200)])

    def fake_send(method, url, headers, body=None):
        sent.append((url, headers.get("Authorization")))
        return next(hops)

    monkeypatch.setattr(c, "_send", fake_send)
    c.request("GET", "/v2/a")
    basic = c._basic_header()
    assert sent == [("https://r.example:5000/v2/a", basic), ("https://r.example:5000/v2/b", basic),
                    ("https://cdn.example/blob", None), ("https://r.example:5000/v2/chosen", None)]


@pytest.mark.parametrize("err,retries", [
    (client.socket.gaierror(client.socket.EAI_NONAME, "Name or service not known"), 0),
    (client.socket.gaierror(client.socket.EAI_NODATA, "No address associated with hostname"), 0),
    (client.socket.gaierror(client.socket.EAI_FAIL, "Non-recoverable failure in name resolution"), 0),
    (client.socket.gaierror(client.socket.EAI_AGAIN, "Temporary failure in name resolution"), 2),
    (ConnectionRefusedError(111, "Connection refused"), 2),
    (ConnectionResetError(104, "Connection reset by peer"), 5),
    (TimeoutError("timed out"), 5),
])
def test_which_failures_are_retried(err, retries):
    assert client._retries_for(err, 5) == retries
    assert client._retries_for(err, 1) == min(retries, 1)


# -- a registry name that does not resolve ------------------------------------------------

def _pyrt_in_process(monkeypatch, tmp_path, capsys, argv, gai_errno):
    """Run the `pyrt` command line in this process with a resolver that answers
    ``gai_errno`` for names under the reserved ``.invalid`` domain (RFC 6761: they
    resolve nowhere; answering here keeps the test off the network) and counts the
    questions.  Returns (exit code, stderr, names asked)."""
    import socket

    from pyrt_core.cli.main import main

    asked = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *a, **kw):
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(gai_errno, "resolver says no")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYRT_REGISTRY_BACKOFF", "0.01")
    monkeypatch.delenv("PYRT_INSECURE_REGISTRIES", raising=False)
    code = main(["--root", str(tmp_path / "root"), "--runroot", str(tmp_path / "run"), *argv])
    return code, capsys.readouterr().err, asked


@pytest.mark.parametrize("argv", [["pull"], ["run", "--rm"]], ids=["pull", "run"])
def test_a_name_that_does_not_resolve_is_asked_once(monkeypatch, tmp_path, capsys, argv):
    """EAI_NONAME is the resolver's final answer: no retries (they took 16 s), one line, 125."""
    import socket

    ref = "nosuchhost.invalid/x:1"
    code, err, asked = _pyrt_in_process(monkeypatch, tmp_path, capsys,
                                        argv + [ref] + (["true"] if argv[0] == "run" else []),
                                        socket.EAI_NONAME)
    assert code == 125
    assert asked == ["nosuchhost.invalid"]
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert errors == ["Error: nosuchhost.invalid: GET /v2/: cannot resolve host: resolver says no"], err


def test_a_temporary_resolver_failure_is_retried_twice(monkeypatch, tmp_path, capsys):
    """EAI_AGAIN (the resolver got no answer in time) may pass: two more tries, then 125."""
    import socket

    code, err, asked = _pyrt_in_process(monkeypatch, tmp_path, capsys, ["pull", "nosuchhost.invalid/x:1"],
                                        socket.EAI_AGAIN)
    assert code == 125 and asked == ["nosuchhost.invalid"] * 3
    assert "cannot resolve host" in err


def test_run_flags_import_neither_models_nor_attrs():
    """``run``/``create`` import this plugin's cli module for their registry flags before
    they start the container's monitor (docs/lifecycle.md, "Start-up overlap"): building
    the flags must not import the models (attrs), which the engine imports later, while
    the runtime starts."""
    import subprocess
    import sys

    code = ("import sys, argparse; import pyrt_image_registry.cli as c; "
            "c.add_fetch_flags(argparse.ArgumentParser()); "
            "print(sorted(m for m in ('attrs', 'attr', 'pyrt_core.models', 'pyrt_core.engine') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
