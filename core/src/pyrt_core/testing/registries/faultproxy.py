"""A fault-injecting proxy in front of a test registry (digest mismatch, truncated
blobs, dropped connections, odd manifests, 429/5xx answers, throttling, down); it
counts requests and bytes."""
from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import socket
import threading
import time

from .servers import ThreadServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-authorization", "proxy-authenticate"}


class FaultProxy(ThreadServer):
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
