"""Where ``pyrt load`` reads an image archive from: an OCI layout directory or a tar
(plain, or compressed as a whole with gzip, zstd, xz or bzip2).

A :class:`Source` hands out the archive's files by name; names are cleaned so that
none leaves the archive, and links inside a tar are followed only to members of the
same tar.  A tar is indexed once (``tarfile``) and its members are then read in
place, each with its own descriptor (layers are applied in parallel).
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import tarfile
from typing import BinaryIO

from .. import fsutil
from ..errors import ImageError, PyrtError

__all__ = ["MAX_JSON", "Source", "open_source", "clean_name", "one_line"]

#: the largest JSON document (manifest, index, config) read from an archive
MAX_JSON = 32 << 20
_CHUNK = 1 << 20


def one_line(s: str) -> str:
    """``s`` on one line (an error message quoted in ours)."""
    return " ".join(str(s).split())


def clean_name(name: str, label: str) -> str:
    """``name`` normalised; a name that is empty, holds a NUL or leaves the archive
    (absolute, ``..``) is an :class:`ImageError`."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ImageError(f"{label}: invalid path {name!r} in the archive")
    n = posixpath.normpath(name)
    if n.startswith("/") or n == ".." or n.startswith("../"):
        raise ImageError(f"{label}: path {name!r} in the archive escapes it")
    return n


class Source:
    """Files of an image archive by name: :meth:`has`, :meth:`size`, :meth:`open`."""

    label = ""

    def has(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> BinaryIO: ...
    def close(self) -> None: ...

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        if not self.has(name):
            raise ImageError(f"{self.label}: missing {name}")
        if self.size(name) > limit:
            raise ImageError(f"{self.label}: {name} is too large ({self.size(name)} bytes)")
        with contextlib.closing(self.open(name)) as f:
            out = []
            while True:
                c = f.read(_CHUNK)
                if not c:
                    break
                out.append(c)
            return b"".join(out)


class _DirSource(Source):
    def __init__(self, root: str, label: str):
        self.root = root
        self.label = label

    def _path(self, name: str) -> str:
        return os.path.join(self.root, clean_name(name, self.label))

    def has(self, name):
        return os.path.isfile(self._path(name))

    def size(self, name):
        return os.path.getsize(self._path(name))

    def open(self, name):
        try:
            return open(self._path(name), "rb")
        except OSError as e:
            raise ImageError(f"{self.label}: cannot read {name}: {e.strerror}") from None

    def close(self):
        pass


class _MemberReader(io.RawIOBase):
    """``size`` bytes at ``offset`` of a file, with its own descriptor (thread safe)."""

    def __init__(self, path: str, offset: int, size: int, label: str):
        super().__init__()
        self._f = open(path, "rb", buffering=0)
        self._f.seek(offset)
        self._left = size
        self._label = label

    def readable(self):
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if n is None or n < 0:
            chunks = []
            while True:
                c = self.read(_CHUNK)
                if not c:
                    return b"".join(chunks)
                chunks.append(c)
        data = self._f.read(min(n, self._left))
        if not data:
            raise ImageError(f"{self._label}: truncated archive: unexpected end of data")
        self._left -= len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self):
        with contextlib.suppress(Exception):
            self._f.close()
        super().close()


class _TarSource(Source):
    def __init__(self, path: str, label: str):
        self.path = path
        self.label = label
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            with open(path, "rb") as f:
                filesize = os.fstat(f.fileno()).st_size
                if filesize == 0:
                    raise ImageError(f"{label}: not an image archive (empty file)")
                try:
                    tf = tarfile.open(fileobj=f, mode="r:")
                    members = tf.getmembers()
                except (tarfile.TarError, EOFError, ValueError) as e:
                    raise ImageError(f"{label}: not an image archive (not a tar file or OCI layout "
                                     f"directory: {one_line(e)})") from None
                end = tf.offset
                f.seek(end)
                tail = f.read(tarfile.BLOCKSIZE)
        except OSError as e:
            raise ImageError(f"{label}: cannot read: {e.strerror or e}") from None
        for m in members:
            if m.isreg() and m.offset_data + m.size > filesize:
                raise ImageError(f"{label}: truncated archive: unexpected end of data "
                                 f"(in {m.name})")
        if len(tail) < tarfile.BLOCKSIZE:
            raise ImageError(f"{label}: truncated archive: unexpected end of data")
        if tail.count(0) != tarfile.BLOCKSIZE:
            raise ImageError(f"{label}: corrupt archive: bad tar header at offset {end}")
        for m in members:
            try:
                n = clean_name(m.name, label)
            except ImageError:
                continue  # never referenced through a clean name
            self.members[n] = m

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        n = clean_name(name, self.label)
        for _ in range(16):
            m = self.members.get(n)
            if m is None:
                return None
            if m.isreg():
                return m
            if m.islnk():
                n = clean_name(m.linkname, self.label)
            elif m.issym():
                target = m.linkname
                base = "" if target.startswith("/") else posixpath.dirname(n)
                n = clean_name(posixpath.join(base, target.lstrip("/")), self.label)
            else:
                return None
        raise ImageError(f"{self.label}: too many levels of links at {name}")

    def has(self, name):
        return self._resolve(name) is not None

    def size(self, name):
        m = self._resolve(name)
        return m.size if m else 0

    def open(self, name):
        m = self._resolve(name)
        if m is None:
            raise ImageError(f"{self.label}: missing {name}")
        return _MemberReader(self.path, m.offset_data, m.size, self.label)

    def close(self):
        pass


# ---------------------------------------------------------------------------
# opening the input
# ---------------------------------------------------------------------------

_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)


def _decompress_to_temp(path: str, kind: str, tmpdir: str, label: str) -> str:
    tmp = fsutil.temp_path(os.path.join(tmpdir, "load"))
    try:
        with open(path, "rb") as raw, open(tmp, "xb") as out:
            if kind in ("gzip", "zstd"):
                from ..archive.decompress import open_layer_stream

                stream = open_layer_stream(raw)
            elif kind == "xz":
                import lzma

                stream = lzma.open(raw)
            else:
                import bz2

                stream = bz2.open(raw)
            try:
                while True:
                    c = stream.read(_CHUNK)
                    if not c:
                        break
                    out.write(c)
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
    except PyrtError as e:
        _unlink(tmp)
        raise ImageError(f"{label}: {kind}-compressed archive: {_strip_label(e, label)}") from None
    except (OSError, EOFError, ValueError) as e:
        _unlink(tmp)
        msg = "unexpected end of data" if isinstance(e, EOFError) else one_line(e)
        raise ImageError(f"{label}: {kind}-compressed archive: {msg}") from None
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(p):
    with contextlib.suppress(OSError):
        os.unlink(p)


def _strip_label(e: Exception, label: str) -> str:
    s = one_line(e)
    return s[len(label) + 2:] if s.startswith(label + ": ") else s


@contextlib.contextmanager
def open_source(path: str, tmpdir: str):
    """The :class:`Source` of ``path``: an OCI layout directory, or a tar (decompressed
    to a temporary file in ``tmpdir`` first when compressed as a whole)."""
    label = path
    if os.path.isdir(path):
        yield _DirSource(path, label)
        return
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file or directory") from None
    except OSError as e:
        raise ImageError(f"{label}: cannot read: {e.strerror or e}") from None
    tmp = None
    try:
        for magic, kind in _MAGICS:
            if head.startswith(magic):
                tmp = _decompress_to_temp(path, kind, tmpdir, label)
                break
        src = _TarSource(tmp or path, label)
        yield src
    finally:
        if tmp:
            _unlink(tmp)
