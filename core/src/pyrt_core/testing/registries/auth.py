"""Authentication and TLS for test registries: a CA and server certificate made with
``openssl``, htpasswd files for Basic auth, and :class:`TokenServer`, which signs RS256
JWTs with ``openssl dgst`` (the certificate goes in the JWT's ``x5c`` header and is the
registry's ``rootcertbundle``)."""
from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import subprocess
import time
import urllib.parse

from .servers import ThreadServer

HTPASSWD = shutil.which("htpasswd")
OPENSSL = shutil.which("openssl")


def openssl(*args, cwd=None) -> None:
    subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=cwd)


def make_ca(d: str, ips=("127.0.0.1",)) -> dict:
    """A CA and a server certificate for ``ips`` (IP SANs) and localhost in ``d``."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=pyrt test CA", cwd=d)
    san = ",".join([f"IP:{ip}" for ip in ips] + ["DNS:localhost"])
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.cnf", cwd=d)
    return {k: os.path.join(d, v) for k, v in
            (("ca", "ca.crt"), ("cert", "server.crt"), ("key", "server.key"))}


def htpasswd_file(path: str, users: dict[str, str]) -> str:
    open(path, "w").close()
    for u, p in users.items():
        subprocess.run([HTPASSWD, "-Bb", path, u, p], check=True, capture_output=True)
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer(ThreadServer):
    """Issues registry tokens: ``GET /token?service=&scope=`` with Basic auth."""

    def __init__(self, workdir: str, users: dict[str, str], service: str = "pyrt-test-registry",
                 issuer: str = "pyrt-test-issuer", expires_in: int = 60):
        os.makedirs(workdir, exist_ok=True)
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
                 "-days", "2", "-subj", "/CN=pyrt token issuer")
        der = subprocess.run([OPENSSL, "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users, self.service, self.issuer, self.expires_in = users, service, issuer, expires_in
        self.requests: list[dict] = []
        self.handler_class = _TokenHandler
        self._start()
        self.realm = f"http://{self.host}/token"

    def registry_auth(self) -> dict:
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": self.cert}}

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = subprocess.run([OPENSSL, "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return signing_input + "." + _b64url(sig)


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        owner: TokenServer = self.server.owner
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                name, pw = "", None
            if owner.users.get(name) != pw:
                owner.requests.append({"user": name, "ok": False})
                return self._send(401, {"details": "invalid credentials"})
            user = name
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) >= 3 and parts[0] == "repository" and user:
                access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                               "actions": parts[-1].split(",")})
        owner.requests.append({"user": user, "ok": True, "scopes": q.get("scope", [])})
        now = int(time.time())
        claims = {"iss": owner.issuer, "sub": user or "", "aud": owner.service, "exp": now + owner.expires_in,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        self._send(200, {"token": owner.sign(claims), "expires_in": owner.expires_in,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    def _send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
