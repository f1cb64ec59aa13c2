"""Registry credentials go to the registry, and nowhere else.

A hostile (or compromised, or man-in-the-middled) registry tries to make
`pyrt pull`/`pyrt push` hand the user's credentials to a place they do not
belong: a token realm on another host, a token realm over plain http, a
redirect from https to plain http on the same host and port, an upload
``Location`` over plain http.  Every server here is a real socket on a
loopback address (127.0.0.1, and 127.0.0.2 as "another host"); each records
the headers it received.  The user's credentials are ``alice:s3cret``.
"""
from __future__ import annotations

import base64
import json
import os
import shutil

import pytest

from pyrt_core.testing.registry import *  # noqa: F401,F403
from pyrt_core.testing.registry import OPENSSL

pytestmark = pytest.mark.skipif(not OPENSSL, reason="openssl is not installed (apt-get install openssl)")

CREDS = "alice:s3cret"
BASIC = "Basic " + base64.b64encode(CREDS.encode()).decode()
TOKEN = "token-from-the-realm"


@pytest.fixture
def pki(tmp_path):
    """A CA and one server certificate valid for 127.0.0.1 and 127.0.0.2."""
    return make_ca(str(tmp_path / "pki"), ips=("127.0.0.1", "127.0.0.2"))


def trust(tmp_path, pki, host: str) -> str:
    """A certs dir (docker's layout) in which ``host`` trusts the test CA."""
    d = tmp_path / "certs.d" / host
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki["ca"], d / "ca.crt")
    return str(tmp_path / "certs.d")


def leaked(requests: list[dict]) -> list[str]:
    """What of the credentials (or the registry's token) each request carried."""
    out = []
    for r in requests:
        where = f"{r['method']} {r['scheme']}://…{r['path']}"
        if "authorization" in r["headers"]:
            out.append(f"{where}: Authorization: {r['headers']['authorization']}")
        if "alice" in r["path"] or b"s3cret" in r["body"]:
            out.append(f"{where}: the user name or password in the request")
    return out


def token_app(req, server):
    return 200, {"Content-Type": "application/json"}, {"token": TOKEN, "expires_in": 300}


# -- token realms ---------------------------------------------------------------------

REALMS = {
    # id: (registry over TLS?, realm address, realm over TLS?)
    "https-realm-on-another-host": (True, "127.0.0.2", True),
    "http-realm-on-another-host": (True, "127.0.0.2", False),
    "http-realm-on-the-registry-host": (True, "127.0.0.1", False),
    "insecure-registry-http-realm-on-another-host": (False, "127.0.0.2", False),
}


@pytest.mark.parametrize("case", REALMS)
def test_token_realm_elsewhere_gets_no_credentials(case, pyrt_cli, reg_env, tmp_path, pki):
    """The registry names a token realm that is not the registry's own host, or is
    plain http: the token is asked for anonymously; the user's credentials stay home."""
    reg_tls, realm_addr, realm_tls = REALMS[case]
    realm = RecordingServer(token_app, addr=realm_addr, tls=pki if realm_tls else None)
    realm_url = realm.url("https" if realm_tls else "http", "/token")

    def registry_app(req, server):
        challenge = f'Bearer realm="{realm_url}",service="hostile"'
        return 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, \
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}

    registry = RecordingServer(registry_app, tls=pki if reg_tls else None)
    try:
        flags = ["--cert-dir", trust(tmp_path, pki, registry.host)] if reg_tls else ["--tls-verify=false"]
        r = pyrt_cli("pull", *flags, "--creds", CREDS, f"{registry.host}/team/app:1", env=reg_env)
        asked = realm.seen()
    finally:
        registry.stop()
        realm.stop()
    assert asked, f"the token realm was never asked (pull said: {r.stderr})"
    assert leaked(asked) == []
    # the pull fails (an anonymous token does not open this registry) with one line that says why
    assert r.returncode == 125, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "not sent" in lines[-1] and realm_url in lines[-1], r.stderr


# -- redirects and upload locations that leave TLS -------------------------------------

def scripted_registry(auth: str, on_https):
    """A registry on 127.0.0.1 answering TLS and plain http on one port.  ``auth``:
    "basic" (Basic challenge) or "bearer" (a token realm on the registry's own
    https origin, which may have the credentials).  Authenticated https requests
    go to ``on_https(req, server)``; plain http gets a 404 after being recorded."""

    def app(req, server):
        h = req["headers"].get("authorization", "")
        if req["scheme"] == "http":
            return 404, {}, b""
        if req["path"].startswith("/token"):
            return token_app(req, server)
        ok = h == BASIC if auth == "basic" else h == f"Bearer {TOKEN}"
        if not ok:
            challenge = ('Basic realm="hostile"' if auth == "basic" else
                         f'Bearer realm="{server.url("https", "/token")}",service="hostile"')
            return 401, {"WWW-Authenticate": challenge}, b""
        if req["path"] == "/v2/":
            return 200, {}, b"{}"
        return on_https(req, server)

    return app


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_redirect_to_plain_http_drops_credentials(auth, pyrt_cli, reg_env, tmp_path, pki):
    """The registry (https) redirects the manifest to http:// on the same host and port:
    whatever follows the redirect goes without the Authorization header."""
    def on_https(req, server):
        return 307, {"Location": server.url("http", req["path"])}, b""

    registry = RecordingServer(scripted_registry(auth, on_https), tls=pki, plain=True)
    try:
        r = pyrt_cli("pull", "--cert-dir", trust(tmp_path, pki, registry.host), "--creds", CREDS,
                     f"{registry.host}/team/app:1", env=reg_env)
        seen = registry.seen()
    finally:
        registry.stop()
    https = [q for q in seen if q["scheme"] == "https" and "/manifests/" in q["path"]]
    assert https and all("authorization" in q["headers"] for q in https), seen  # credentials in play
    plain = [q for q in seen if q["scheme"] == "http"]
    assert leaked(plain) == []
    assert r.returncode == 125, r.stderr


def test_upload_location_on_plain_http_gets_no_credentials(demo_cli, reg_env, tmp_path, pki):
    """`pyrt push`: the registry starts an upload and sends the data to an http://
    Location on its own host and port: the upload goes without Authorization."""
    def on_https(req, server):
        if req["method"] == "HEAD":
            return 404, {}, b""
        if req["method"] == "POST" and "/blobs/uploads/" in req["path"]:
            return 202, {"Location": server.url("http", "/upload/1"), "Range": "0-0"}, b""
        return 404, {}, b""

    registry = RecordingServer(scripted_registry("basic", on_https), tls=pki, plain=True)
    try:
        r = demo_cli("push", "--cert-dir", trust(tmp_path, pki, registry.host), "--creds", CREDS,
                     demo_cli.image, f"{registry.host}/team/app:1", env=reg_env)
        seen = registry.seen()
    finally:
        registry.stop()
    assert any(q["method"] == "POST" and q["headers"].get("authorization") == BASIC for q in seen), seen
    plain = [q for q in seen if q["scheme"] == "http"]
    assert leaked(plain) == []
    assert r.returncode == 125, r.stderr


def test_redirect_chain_through_another_host_comes_back_without_credentials(
        pyrt_cli, reg_env, tmp_path, pki):
    """The registry redirects to another host, which redirects back to the registry on
    a path of its choosing: the request it chose goes without the user's credentials
    (the other host must not get to spend them; browsers and Go's net/http drop the
    header for the rest of such a chain as well)."""
    other = RecordingServer(lambda req, server: (307, {"Location": registry.url("https", "/v2/chosen/by/other")},
                                                 b""), addr="127.0.0.2", tls=pki)

    def on_https(req, server):
        return 307, {"Location": other.url("https", "/bounce")}, b""

    registry = RecordingServer(scripted_registry("basic", on_https), tls=pki)
    try:
        r = pyrt_cli("pull", "--cert-dir", trust(tmp_path, pki, registry.host), "--creds", CREDS,
                     f"{registry.host}/team/app:1", env=reg_env)
        seen, bounced = registry.seen(), other.seen()
    finally:
        registry.stop()
        other.stop()
    assert bounced and leaked(bounced) == []
    chosen = [q for q in seen if q["path"] == "/v2/chosen/by/other"]
    assert chosen and leaked(chosen) == [], seen
    assert r.returncode == 125, r.stderr
