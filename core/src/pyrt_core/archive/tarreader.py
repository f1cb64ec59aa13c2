"""Reading an uncompressed layer tar as a stream: our own parser.

It parses ustar, PAX (local and global) and GNU long-name headers with plain
byte slicing and hands out entries (:class:`Entry`) whose regular-file data
the caller copies with :meth:`TarReader.copy_to` (``os.write`` from 1 MiB
buffers, bypassing the buffer for big files): several times faster than
``tarfile`` per entry.  GNU/PAX sparse files and multi-volume archives are
refused; every malformed header, bad checksum, oversized extended header or
truncation is a :class:`~pyrt_core.errors.LayerError`.

The reader only parses: names are not checked here (see
:mod:`pyrt_core.archive.unpack`, which applies entries as if chrooted).
"""
from __future__ import annotations

import os

from ..errors import LayerError
from .layerformat import BLOCK, CHUNK

__all__ = ["TarReader", "Entry", "SourceFailure", "REG", "HARD", "SYM", "CHR", "BLK", "DIR", "FIFO"]

_ZERO_BLOCK = bytes(BLOCK)
_MAX_META = 16 << 20  # largest PAX / GNU long-name header we accept

# entry types (tar typeflag bytes)
REG, HARD, SYM, CHR, BLK, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"


class SourceFailure(Exception):
    """Carries an exception raised by the source stream's read() unchanged
    past the per-entry OSError wrapping."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc))
        self.exc = exc


class Entry:
    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime_ns", "linkname",
                 "devmajor", "devminor", "xattrs")


def _cstr(b: bytes) -> bytes:
    i = b.find(0)
    return b if i < 0 else b[:i]


def _num(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes((field[0] & 0x7F,)) + field[1:], "big")
    try:
        return int(field.rstrip(b"\x00 ") or b"0", 8)
    except ValueError:
        pass
    s = _cstr(field).strip(b" ")
    try:
        return int(s or b"0", 8)
    except ValueError:
        raise LayerError(f"layer tar has an invalid {what} field ({s!r}); not a tar archive?") from None


def _pax_int(v: bytes, key: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise LayerError(f"layer tar has an invalid PAX {key} record ({v!r})") from None


def _pax_time_ns(v: bytes) -> int:
    s = v.decode("ascii", "replace").strip()
    neg = s.startswith("-")
    whole, _, frac = s.lstrip("+-").partition(".")
    try:
        ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9])
    except ValueError:
        raise LayerError(f"layer tar has an invalid PAX time record ({v!r})") from None
    return -ns if neg else ns


def _parse_pax(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0:  # trailing NUL padding
            break
        sp = data.find(b" ", pos, pos + 20)
        try:
            length = int(data[pos:sp]) if sp > pos else 0
        except ValueError:
            length = 0
        if length <= 0 or pos + length > end or data[pos + length - 1] != 0x0A:
            raise LayerError("layer tar has a malformed PAX header")
        key, eq, value = data[sp + 1:pos + length - 1].partition(b"=")
        if not eq:
            raise LayerError("layer tar has a malformed PAX header")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return out


class TarReader:
    """Pulls blocks from ``src`` through a 1 MiB buffer."""

    def __init__(self, src):
        self._src = src
        self._buf = b""
        self._view = memoryview(b"")
        self._pos = 0
        self.remaining = 0  # unread data bytes of the current entry
        self.current = ""   # name of the current entry, for messages

    # -- low level ---------------------------------------------------------
    def _read_src(self, n: int) -> bytes:
        try:
            return self._src.read(n)
        except LayerError:
            raise
        except Exception as exc:
            raise SourceFailure(exc) from exc

    def _refill(self) -> bool:
        data = self._read_src(CHUNK)
        if not data:
            return False
        self._buf = data
        self._view = memoryview(data)
        self._pos = 0
        return True

    def _truncated(self):
        where = f" in entry {self.current!r}" if self.current else ""
        return LayerError(f"layer tar is truncated{where}")

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; fewer only at the end of the stream."""
        pos = self._pos
        if pos + n <= len(self._buf):
            self._pos = pos + n
            return self._buf[pos:pos + n]
        parts = [self._buf[pos:]]
        got = len(parts[0])
        self._buf, self._view, self._pos = b"", memoryview(b""), 0
        while got < n:
            if not self._refill():
                break
            take = min(n - got, len(self._buf))
            parts.append(self._buf[:take])
            self._pos = take
            got += take
        return b"".join(parts)

    def read_exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise self._truncated()
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail <= 0:
                if not self._refill():
                    raise self._truncated()
                continue
            take = min(avail, n)
            self._pos += take
            n -= take

    def copy_to(self, fd: int, n: int) -> None:
        """Write the next ``n`` data bytes of the current entry to ``fd``."""
        self.remaining -= n
        write = os.write
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail <= 0:
                if n >= CHUNK:  # big file: bypass the buffer
                    data = self._read_src(CHUNK)
                    if not data:
                        raise self._truncated()
                    view = memoryview(data)
                    while view:
                        view = view[write(fd, view):]
                    n -= len(data)
                    continue
                if not self._refill():
                    raise self._truncated()
                avail = len(self._buf)
            take = min(avail, n)
            view = self._view[self._pos:self._pos + take]
            while view:
                view = view[write(fd, view):]
            self._pos += take
            n -= take

    def drain(self) -> None:
        """Read the stream to its end (padding after the end-of-archive
        blocks; lets a decompressor check its trailer)."""
        self._buf, self._view, self._pos = b"", memoryview(b""), 0
        while self._read_src(CHUNK):
            pass

    # -- headers -------------------------------------------------------------
    def entries(self):
        """Yield :class:`Entry` objects; the data of each must be consumed
        (``copy_to``) or is skipped when the next one is asked for."""
        global_pax: dict[str, bytes] = {}
        local_pax: dict[str, bytes] = {}
        longname = longlink = None
        while True:
            self.current = ""
            h = self.read(BLOCK)
            if len(h) < BLOCK:
                raise LayerError("layer tar is truncated (no end-of-archive marker)")
            if h == _ZERO_BLOCK:
                return
            stored = _num(h[148:156], "checksum")
            unsigned = sum(h) - sum(h[148:156]) + 256
            if stored != unsigned:
                signed = unsigned - 2 * sum(1 for b in h if b > 127) * 128
                if stored != signed:
                    raise LayerError("layer tar has a corrupt header (bad checksum); not a tar archive?")
            tflag = h[156:157]
            size = _num(h[124:136], "size")
            if tflag in (b"x", b"g", b"L", b"K", b"X"):
                if size > _MAX_META or size < 0:
                    raise LayerError("layer tar has an oversized extended header")
                data = self.read_exact(size)
                self.skip(-size % BLOCK)
                if tflag == b"L":
                    longname = _cstr(data)
                elif tflag == b"K":
                    longlink = _cstr(data)
                elif tflag == b"g":
                    for k, v in _parse_pax(data).items():
                        if v:
                            global_pax[k] = v
                        else:
                            global_pax.pop(k, None)
                else:
                    local_pax.update(_parse_pax(data))
                continue

            pax = {**global_pax, **local_pax} if global_pax else local_pax
            local_pax = {}
            e = Entry()
            if "path" in pax and pax["path"]:
                raw_name = pax["path"]
            elif longname is not None:
                raw_name = longname
            else:
                raw_name = _cstr(h[0:100])
                if h[257:263] == b"ustar\x00":  # POSIX ustar: name prefix
                    prefix = _cstr(h[345:500])
                    if prefix:
                        raw_name = prefix + b"/" + raw_name
            e.name = name = os.fsdecode(raw_name)
            self.current = name
            if "linkpath" in pax and pax["linkpath"]:
                raw_link = pax["linkpath"]
            elif longlink is not None:
                raw_link = longlink
            else:
                raw_link = _cstr(h[157:257])
            e.linkname = os.fsdecode(raw_link)
            longname = longlink = None

            e.mode = _num(h[100:108], "mode") & 0o7777
            e.uid = _pax_int(pax["uid"], "uid") if "uid" in pax else _num(h[108:116], "uid")
            e.gid = _pax_int(pax["gid"], "gid") if "gid" in pax else _num(h[116:124], "gid")
            if "size" in pax:
                size = _pax_int(pax["size"], "size")
            if size < 0:
                raise LayerError(f"layer entry {name!r} has a negative size")
            e.mtime_ns = (_pax_time_ns(pax["mtime"]) if "mtime" in pax
                          else _num(h[136:148], "mtime") * 1_000_000_000)
            xattrs = None
            for k, v in pax.items():
                if k.startswith("SCHILY.xattr."):
                    if xattrs is None:
                        xattrs = {}
                    xattrs[k[13:]] = v
                elif k.startswith("GNU.sparse."):
                    raise LayerError(f"layer entry {name!r} is a sparse file, which is not supported")
            e.xattrs = xattrs

            if tflag in (b"0", b"\x00", b"7"):
                tflag = DIR if (tflag == b"\x00" and name.endswith("/")) else REG
            elif tflag in (b"3", b"4"):
                e.devmajor = _num(h[329:337], "devmajor")
                e.devminor = _num(h[337:345], "devminor")
            elif tflag == b"S":
                raise LayerError(f"layer entry {name!r} is a sparse file, which is not supported")
            elif tflag == b"V":  # volume label
                self.skip(size + (-size % BLOCK))
                continue
            elif tflag not in (HARD, SYM, DIR, FIFO):
                raise LayerError(f"layer entry {name!r} has unsupported tar type {tflag!r}")
            e.type = tflag
            # only regular files carry data; the size of header-only types
            # (links, dirs, devices, fifos) is ignored, as Go and tarfile do
            if tflag != REG:
                size = 0
            e.size = self.remaining = size
            yield e
            self.skip(self.remaining + (-size % BLOCK))
            self.remaining = 0
