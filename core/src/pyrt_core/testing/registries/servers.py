"""Loopback ports and the base of the servers that run in a thread of the test
process (the token server, the fault proxy, the recording server)."""
from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import threading
import time


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


class LoopbackHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """A threading HTTP server whose handlers find their owner in ``server.owner``."""

    daemon_threads = True
    allow_reuse_address = True


class ThreadServer:
    """A server on a free port of ``addr`` served by a daemon thread; ``stop`` ends it."""

    handler_class: type
    server_class: type = LoopbackHTTPServer

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
