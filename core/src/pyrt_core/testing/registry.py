"""Real registries for tests, all on 127.0.0.1 and stopped by pid.

* :class:`Registry` - Debian's ``docker-registry`` (distribution 2.8) with a
  config of our own (never the packaged one): anonymous, htpasswd Basic
  auth, Bearer tokens from :class:`TokenServer`, or TLS with a CA made by
  :func:`make_ca` (``openssl``).  Data directory under the test's tmp.
* :class:`TokenServer` - a small token server: checks Basic credentials,
  grants the requested scopes to known users, signs RS256 JWTs with
  ``openssl dgst`` (the certificate goes in the JWT's ``x5c`` header and is
  the registry's ``rootcertbundle``).
* :class:`FaultProxy` - a Python HTTP proxy in front of a registry that
  injects faults: a blob whose digest does not match, truncated blobs,
  dropped connections, malformed or odd manifests, 429/5xx answers,
  throttling; it counts requests and bytes.
* :class:`RecordingServer` - a scripted server (a hostile registry, token
  server or "other host") on a loopback address, plain HTTP, TLS or both on
  one port; it records every request with its headers.
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import json
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse

REGISTRY = shutil.which("docker-registry")
HTPASSWD = shutil.which("htpasswd")
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------


def _openssl(*args, cwd=None) -> None:
    subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=cwd)


def make_ca(d: str, ips=("127.0.0.1",)) -> dict:
    """A CA and a server certificate for ``ips`` (IP SANs) and localhost in ``d``."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=pyrt test CA", cwd=d)
    san = ",".join([f"IP:{ip}" for ip in ips] + ["DNS:localhost"])
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.cnf", cwd=d)
    return {k: os.path.join(d, v) for k, v in
            (("ca", "ca.crt"), ("cert", "server.crt"), ("key", "server.key"))}


# ---------------------------------------------------------------------------
# docker-registry
# ---------------------------------------------------------------------------


class Registry:
    def __init__(self, workdir: str, auth: dict | None = None, tls: dict | None = None):
        if not REGISTRY:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        http_cfg = {"addr": self.host, "secret": "pyrt-tests"}
        if tls:
            http_cfg["tls"] = {"certificate": tls["cert"], "key": tls["key"]}
        cfg = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
               "storage": {"filesystem": {"rootdirectory": os.path.join(workdir, "data")},
                           "delete": {"enabled": True}},
               "http": http_cfg}
        if auth:
            cfg["auth"] = auth
        self.config = os.path.join(workdir, "config.yml")
        with open(self.config, "w") as f:
            json.dump(cfg, f)  # YAML is a superset of JSON
        self.log = open(os.path.join(workdir, "registry.log"), "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()


def htpasswd_file(path: str, users: dict[str, str]) -> str:
    open(path, "w").close()
    for u, p in users.items():
        subprocess.run([HTPASSWD, "-Bb", path, u, p], check=True, capture_output=True)
    return path


# ---------------------------------------------------------------------------
# servers in threads
# ---------------------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadServer:
    handler_class: type
    server_class: type = _Server

    def _start(self, addr: str = "127.0.0.1"):
        self.server = self.server_class((addr, 0), self.handler_class)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.host = f"{addr}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer(_ThreadServer):
    """Issues registry tokens: ``GET /token?service=&scope=`` with Basic auth."""

    def __init__(self, workdir: str, users: dict[str, str], service: str = "pyrt-test-registry",
                 issuer: str = "pyrt-test-issuer", expires_in: int = 60):
        os.makedirs(workdir, exist_ok=True)
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
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


_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-authorization", "proxy-authenticate"}


class FaultProxy(_ThreadServer):
    """A proxy to ``upstream`` (host:port, plain http) that injects faults.

    Set attributes between requests:

    * ``corrupt_blobs``: digests served with one byte flipped (same length);
    * ``short_blobs``: {digest: n} served as only the first n bytes, with a
      matching Content-Length (the registry has a truncated blob);
    * ``drop_blobs``: {digest: n} the connection is closed after n bytes of
      the body (Content-Length announced in full), every time;
    * ``drop_once``: {digest: n} the same, only on the first request;
    * ``manifest_override``: {reference: (content type, body bytes)};
    * ``status_queue``: list of statuses answered (with an error body)
      before forwarding requests again (429 carries ``Retry-After: 0``);
    * ``throttle``: bytes per second for blob bodies (None: unthrottled);
    * ``down``: close every connection without an answer.

    ``log`` records ``(method, path, status, body bytes sent, range)``.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.corrupt_blobs: set[str] = set()
        self.short_blobs: dict[str, int] = {}
        self.drop_blobs: dict[str, int] = {}
        self.drop_once: dict[str, int] = {}
        self.manifest_override: dict[str, tuple[str, bytes]] = {}
        self.status_queue: list[int] = []
        self.throttle: float | None = None
        self.down = False
        self.log: list[tuple] = []
        self.live_bytes = 0  # blob bytes written so far, counted as they go
        self.lock = threading.Lock()
        self.handler_class = _ProxyHandler
        self._start()

    def reset(self) -> None:
        self.corrupt_blobs, self.short_blobs, self.drop_blobs, self.drop_once = set(), {}, {}, {}
        self.manifest_override, self.status_queue, self.throttle, self.down = {}, [], None, False
        self.clear_log()

    def clear_log(self) -> None:
        with self.lock:
            self.log = []
            self.live_bytes = 0

    def blob_bytes(self) -> int:
        with self.lock:
            return sum(e[3] for e in self.log if "/blobs/" in e[1] and e[0] == "GET")

    def requests_for(self, fragment: str) -> list[tuple]:
        with self.lock:
            return [e for e in self.log if fragment in e[1]]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _record(self, status, sent):
        p: FaultProxy = self.server.owner
        with p.lock:
            p.log.append((self.command, self.path, status, sent, self.headers.get("Range")))

    def _handle(self):
        p: FaultProxy = self.server.owner
        if p.down:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with p.lock:
            forced = p.status_queue.pop(0) if p.status_queue else None
        if forced:
            data = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": f"injected {forced}"}]}).encode()
            self.send_response(forced)
            if forced == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self._record(forced, 0)
            return
        path = self.path
        digest = path.rsplit("/", 1)[-1].split("?")[0] if "/blobs/sha256:" in path else None
        ref = path.rsplit("/manifests/", 1)[-1] if "/manifests/" in path else None
        if ref in p.manifest_override and self.command in ("GET", "HEAD"):
            ctype, data = p.manifest_override[ref]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)
            self._record(200, len(data))
            return
        headers: dict[str, str] = {}
        for k, v in self.headers.items():  # repeated headers (Accept) joined
            if k.lower() not in _HOP and k.lower() != "host":
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
        if digest and (digest in p.corrupt_blobs or digest in p.short_blobs):
            headers.pop("Range", None)  # the fault works on the whole blob
        conn = http.client.HTTPConnection(p.upstream, timeout=30)
        try:
            conn.request(self.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        status = resp.status
        if digest and self.command == "GET" and status in (200, 206):
            if digest in p.corrupt_blobs and data:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            if digest in p.short_blobs:
                data = data[:p.short_blobs[digest]]
                status = 200
        drop_at = None
        if digest and self.command == "GET":
            if digest in p.drop_blobs:
                drop_at = p.drop_blobs[digest]
            elif digest in p.drop_once:
                drop_at = p.drop_once.pop(digest)
        self.send_response(status)
        for k, v in resp.getheaders():
            kl = k.lower()
            if kl in _HOP or kl == "content-length":
                continue
            if kl == "location":
                v = v.replace(f"//{p.upstream}", f"//{p.host}")
            if kl == "content-range" and digest in p.short_blobs:
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            self._record(status, 0)
            return
        sent = 0
        try:
            if drop_at is not None:
                self.wfile.write(data[:drop_at])
                self.wfile.flush()
                sent = min(drop_at, len(data))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            step = 64 << 10
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                self.wfile.write(piece)
                sent += len(piece)
                if digest:
                    with p.lock:
                        p.live_bytes += len(piece)
                if p.throttle and digest:
                    time.sleep(len(piece) / p.throttle)
        except OSError:
            self.close_connection = True
        finally:
            self._record(status, sent)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


# ---------------------------------------------------------------------------
# a scripted server that records what it is sent
# ---------------------------------------------------------------------------


class _RecordingTCPServer(_Server):
    """Plain HTTP, TLS, or both on one port: a TLS handshake starts with the byte
    0x16, which no HTTP request line does."""

    def finish_request(self, request, client_address):
        owner: RecordingServer = self.owner
        request.settimeout(30)
        if owner.tls_ctx is not None:
            try:
                first = request.recv(1, socket.MSG_PEEK)
            except OSError:
                return
            if first == b"\x16" or not owner.plain:
                try:
                    request = owner.tls_ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # e.g. the client refused the certificate
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if isinstance(request, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    request.close()


class RecordingServer(_ThreadServer):
    """A scripted server on a loopback address ``addr``: a hostile registry, a token
    server or the "other host" a registry points at.

    ``app(req, server)`` answers each request with ``(status, headers, body)``;
    ``req`` (also appended to ``requests``) holds ``scheme`` ("http"/"https"),
    ``method``, ``path``, ``headers`` (names lower-cased) and ``body``.  With
    ``tls`` (a :func:`make_ca` result) the port speaks TLS; with ``plain`` too it
    answers plain HTTP on the same port, so a redirect can change only the scheme.
    """

    def __init__(self, app, addr: str = "127.0.0.1", tls: dict | None = None, plain: bool = False):
        self.app = app
        self.plain = plain or tls is None
        self.tls_ctx = None
        if tls:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(tls["cert"], tls["key"])
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.handler_class = _RecordingHandler
        self.server_class = _RecordingTCPServer
        self._start(addr)

    def url(self, scheme: str, path: str = "") -> str:
        return f"{scheme}://{self.host}{path}"

    def seen(self) -> list[dict]:
        with self.lock:
            return list(self.requests)


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        owner: RecordingServer = self.server.owner
        req = {"scheme": "https" if isinstance(self.connection, ssl.SSLSocket) else "http",
               "method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": self._body()}
        with owner.lock:
            owner.requests.append(req)
        status, headers, body = owner.app(req, owner)
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


# ---------------------------------------------------------------------------
# test images and pytest fixtures (use with ``from pyrt_core.testing.registry import *``)
# ---------------------------------------------------------------------------

import hashlib  # noqa: E402
import io  # noqa: E402
import tarfile  # noqa: E402

import pytest  # noqa: E402


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _rootfs_tar(rootfs: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(os.listdir(rootfs)):
            tf.add(os.path.join(rootfs, name), arcname=name)
    return buf.getvalue()


def build_multi_layout(dest: str, rootfs: str, platforms=("linux/amd64", "linux/arm64")) -> dict:
    """An OCI layout whose "multi" entry is an image index with one image per
    platform: a shared busybox layer plus ``/etc/arch`` holding the platform."""
    from pyrt_core.testing import imagebuilder as ib

    base = _rootfs_tar(rootfs)
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


def registry_missing() -> list[str]:
    out = [n for n, p in (("docker-registry", REGISTRY), ("openssl", OPENSSL), ("htpasswd", HTPASSWD),
                          ("skopeo", shutil.which("skopeo")), ("umoci", shutil.which("umoci")))
           if not p]
    return out


@pytest.fixture(scope="session")
def registry_tools():
    missing = registry_missing()
    if missing:
        pytest.skip("registry test tools missing: " + ", ".join(missing) +
                    " (apt-get install docker-registry apache2-utils openssl skopeo umoci)")


@pytest.fixture(scope="session")
def test_images(registry_tools, tmp_path_factory):
    """Built image layouts (see the keys)."""
    from pyrt_core.testing import imagebuilder as ib

    d = str(tmp_path_factory.mktemp("regimages"))
    rootfs = ib.busybox_rootfs(os.path.join(d, "rootfs"))
    out = {"dir": d, "rootfs": rootfs}
    out["busybox"] = ib.build_oci_layout(os.path.join(d, "busybox"), rootfs, tag="latest")
    out["layered"] = ib.build_layered_layout(os.path.join(d, "layered"), d, tag="layered")
    shared = os.path.join(d, "shared")
    ib.build_oci_layout(shared, rootfs, tag="base")

    def add(r):
        with open(os.path.join(r, "etc/child"), "w") as f:
            f.write("child\n")

    ib.build_oci_layout(shared, None, tag="child", base_tag="base", extra_layers=[add],
                        cmd=("/bin/cat", "/etc/child"))
    out["shared"] = shared
    out["multi"] = os.path.join(d, "multi")
    out["multi_info"] = build_multi_layout(out["multi"], rootfs)
    out["plain"] = os.path.join(d, "plain")
    out["plain_info"] = ib.write_oci_layout(out["plain"], [_rootfs_tar(rootfs)], compress=None)
    out["big"] = os.path.join(d, "big")
    out["big_info"] = build_big_layout(out["big"])
    return out


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


@pytest.fixture(scope="session")
def anon_registry(test_images, tmp_path_factory):
    """An anonymous registry on 127.0.0.1 holding the test images."""
    reg = Registry(str(tmp_path_factory.mktemp("registry-anon")))
    try:
        populate(reg.host, test_images)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def _proxy(anon_registry):
    p = FaultProxy(anon_registry.host)
    yield p
    p.stop()


@pytest.fixture
def fault_proxy(_proxy):
    """A :class:`FaultProxy` in front of ``anon_registry``, reset for each test."""
    _proxy.reset()
    yield _proxy
    _proxy.reset()


@pytest.fixture
def reg_env(tmp_path):
    """Environment for `pyrt` subprocesses: private auth file, fast retries."""
    env = dict(os.environ)
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    env["PYRT_REGISTRY_BACKOFF"] = "0.05"
    env.pop("PYRT_INSECURE_REGISTRIES", None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


__all__ = ["registry_tools", "test_images", "anon_registry", "_proxy", "fault_proxy", "reg_env",
           "Registry", "TokenServer", "FaultProxy", "RecordingServer", "make_ca", "htpasswd_file", "populate",
           "skopeo_push", "free_port"]
