"""A scripted server that records what it is sent: a hostile registry, a token server
or the "other host" a registry points at, plain HTTP, TLS or both on one port."""
from __future__ import annotations

import contextlib
import http.server
import json
import socket
import ssl
import threading

from .servers import LoopbackHTTPServer, ThreadServer


class _RecordingTCPServer(LoopbackHTTPServer):
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


class RecordingServer(ThreadServer):
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
