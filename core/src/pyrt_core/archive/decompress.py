"""Opening a possibly compressed layer blob as its uncompressed tar stream.

:func:`open_layer_stream` tells gzip, zstd and plain tar apart by the first
bytes.  gzip is decompressed with zlib (multi-member), zstd with the
``zstandard`` module or, without it, a ``zstd -dc`` child process; both run a
few chunks ahead in a thread (zlib and zstd release the GIL, so
decompressing overlaps with writing files).  Corrupt or truncated data is a
:class:`~pyrt_core.errors.LayerError` from ``read``.
"""
from __future__ import annotations

import io
import queue
import shutil
import subprocess
import threading
import zlib
from typing import BinaryIO

from ..errors import LayerError
from .layerformat import CHUNK

__all__ = ["open_layer_stream"]


class _StreamBase(io.RawIOBase):
    """A read-only stream producing output chunks from ``_produce``."""

    def __init__(self):
        super().__init__()
        self._out = b""
        self._opos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _produce(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while True:
                c = self.read(CHUNK)
                if not c:
                    return b"".join(chunks)
                chunks.append(c)
        while self._opos >= len(self._out):
            if self._done or n == 0:
                return b""
            out = self._produce()
            if not out:
                self._done = True
                return b""
            self._out, self._opos = out, 0
        pos = self._opos
        if pos == 0 and n >= len(self._out):
            out, self._out = self._out, b""
            return out
        self._opos = pos + n
        return self._out[pos:pos + n]

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class _PrefixedStream(_StreamBase):
    def __init__(self, src, prefix: bytes):
        super().__init__()
        self._src = src
        self._prefix = prefix

    def _produce(self) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix, b""
            return out
        return self._src.read(CHUNK)


class _GzipStream(_StreamBase):
    """Streaming gzip decompression (multi-member), 4 MiB of output at most per step."""

    def __init__(self, src, prefix: bytes):
        super().__init__()
        self._src = src
        self._in = prefix
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _produce(self) -> bytes:
        while True:
            if not self._in:
                self._in = self._src.read(CHUNK)
                if not self._in:
                    if not self._d.eof:
                        raise LayerError("gzip layer data is truncated")
                    return b""
            d = self._d
            if d.eof:  # another member, or padding after the last one
                if not self._in.strip(b"\x00"):
                    self._in = b""
                    continue
                if not self._in.startswith(b"\x1f\x8b"):
                    raise LayerError("gzip layer data is corrupt or truncated (garbage after the end)")
                d = self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out = d.decompress(self._in, 4 * CHUNK)
            except zlib.error as exc:
                raise LayerError(f"gzip layer data is corrupt or truncated ({exc})") from None
            self._in = d.unconsumed_tail or (d.unused_data if d.eof else b"")
            if out:
                return out


class _ZstdModuleStream(_StreamBase):
    """zstd through the ``zstandard`` module, frame by frame, fed 64 KiB at a
    time to bound the output of each step."""

    FEED = 64 << 10

    def __init__(self, src, prefix: bytes, zstandard):
        super().__init__()
        self._src = src
        self._in = prefix
        self._z = zstandard
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._fed = False

    def _produce(self) -> bytes:
        while True:
            if not self._in:
                self._in = self._src.read(CHUNK)
                if not self._in:
                    if self._fed and not getattr(self._d, "eof", True):
                        raise LayerError("zstd layer data is truncated")
                    return b""
            d = self._d
            if getattr(d, "eof", False):
                if not self._in.strip(b"\x00"):
                    self._in = b""
                    continue
                d = self._d = self._z.ZstdDecompressor().decompressobj()
                self._fed = False
            feed, self._in = self._in[:self.FEED], self._in[self.FEED:]
            try:
                out = d.decompress(feed)
            except self._z.ZstdError as exc:
                raise LayerError(f"zstd layer data is corrupt or truncated ({exc})") from None
            self._fed = True
            if getattr(d, "eof", False) and d.unused_data:
                self._in = d.unused_data + self._in
            if out:
                return out


def _readahead_worker(inner: "_StreamBase", q: "queue.Queue", stop: threading.Event) -> None:
    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        while not stop.is_set():
            out = inner._produce()
            if not put(out) or not out:
                return
    except BaseException as exc:  # handed to the reader
        put(exc)


class _ReadAhead(_StreamBase):
    """Runs another stream's decompression in a thread, a few chunks ahead:
    zlib and zstd release the GIL, so decompressing overlaps with writing
    files.  The thread holds no reference to this object, so dropping it
    unclosed still stops the thread (``__del__`` closes)."""

    def __init__(self, inner: _StreamBase, depth: int = 4):
        super().__init__()
        self._inner = inner
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=_readahead_worker, args=(inner, self._q, self._stop),
                                        name="pyrt-layer-readahead", daemon=True)
        self._thread.start()

    def _produce(self) -> bytes:
        if self._error is not None:
            raise self._error
        item = self._q.get()
        if isinstance(item, BaseException):
            self._error = item
            raise item
        return item

    def close(self) -> None:
        if not self.closed and hasattr(self, "_stop"):
            self._stop.set()
            try:
                while True:
                    self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=5)
            self._inner.close()
        super().close()


class _ProcessStream(_StreamBase):
    """Decompression by a child process (``zstd -dc``), fed by a thread."""

    def __init__(self, src, prefix: bytes, argv: list[str], what: str):
        super().__init__()
        self._what = what
        self._feed_error: BaseException | None = None
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, close_fds=True)
        self._thread = threading.Thread(target=self._feed, args=(src, prefix),
                                        name="pyrt-decompress-feed", daemon=True)
        self._thread.start()

    def _feed(self, src, prefix: bytes) -> None:
        w = self._proc.stdin
        try:
            if prefix:
                w.write(prefix)
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                w.write(chunk)
        except (BrokenPipeError, ValueError):
            pass  # the process is gone (closed early)
        except BaseException as exc:  # reported by the reader
            self._feed_error = exc
        finally:
            try:
                w.close()
            except OSError:
                pass

    def _produce(self) -> bytes:
        out = self._proc.stdout.read(CHUNK)
        if out:
            return out
        rc = self._proc.wait()
        self._thread.join()
        err = self._proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
        if self._feed_error is not None:
            exc = self._feed_error
            if isinstance(exc, LayerError):
                raise exc
            raise LayerError(f"{self._what} layer data is truncated: reading it failed ({exc})") from exc
        if rc != 0:
            detail = err[-1] if err else f"exit status {rc}"
            raise LayerError(f"{self._what} layer data is corrupt or truncated ({detail})")
        return b""

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and not self.closed:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for f in (proc.stdout, proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
            self._thread.join(timeout=5)
        super().close()


def _read_upto(f, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def open_layer_stream(fileobj: BinaryIO) -> BinaryIO:
    """Return the uncompressed layer tar of ``fileobj`` (gzip, zstd or plain,
    told apart by the first bytes).  Corrupt or truncated compressed data
    raises :class:`~pyrt_core.errors.LayerError` from ``read``.  Close the
    result when done (it may own a ``zstd`` child process)."""
    head = _read_upto(fileobj, 4)
    if head[:2] == b"\x1f\x8b":
        return _ReadAhead(_GzipStream(fileobj, head))
    if head == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            zstandard = None
        if zstandard is not None and hasattr(zstandard.ZstdDecompressor().decompressobj(), "eof"):
            return _ReadAhead(_ZstdModuleStream(fileobj, head, zstandard))
        exe = shutil.which("zstd")
        if exe is None:
            raise LayerError("zstd layer needs the zstandard module or zstd binary")
        return _ProcessStream(fileobj, head, [exe, "-dc", "-q"], "zstd")
    return _PrefixedStream(fileobj, head)
