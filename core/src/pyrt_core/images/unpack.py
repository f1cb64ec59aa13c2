"""Applying image layer tars to a directory.

:func:`apply_layer` reads an uncompressed layer tar (image format) as a
stream and writes it into a directory, as if chrooted there: nothing is
ever created, changed or removed outside that directory.  Whiteouts are
either carried out (``whiteouts="delete"``, for drivers whose layers start
as a copy or snapshot of their parent) or turned into overlayfs whiteouts
(``whiteouts="overlay"``, for the overlay driver's per-layer diff dirs).

:func:`open_layer_stream` turns a possibly compressed blob (gzip, zstd or
plain tar, sniffed from its first bytes) into the uncompressed stream
:func:`apply_layer` wants.

The tar reader is our own: it parses ustar, PAX (local and global) and GNU
long-name headers with plain byte slicing, and writes file content with
``os.write`` from 1 MiB buffers, which is several times faster than
``tarfile`` per entry.  GNU/PAX sparse files and multi-volume archives are
refused.

Safety: entry names are normalised lexically (``a/../b`` is ``b``; a
leading ``/`` is relative to the root; a ``..`` climbing above the root is
refused).  The directory that is to hold an entry is resolved component by
component with ``lstat``; a symlink met on the way is followed only when its
target is relative and stays inside the root.  The entry's own (last)
component is never followed: an existing node there is removed and the new
one made with ``O_EXCL|O_NOFOLLOW`` (or ``mkdir``/``symlink``/``mknod``/
``link``, which do not follow either).
"""
from __future__ import annotations

import errno
import io
import logging
import os
import queue
import shutil
import stat
import subprocess
import threading
import zlib
from typing import BinaryIO

from ..errors import LayerError, StorageError

log = logging.getLogger(__name__)

__all__ = ["apply_layer", "open_layer_stream", "WHITEOUT_PREFIX", "WHITEOUT_OPAQUE"]

CHUNK = 1 << 20
BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_MAX_META = 16 << 20  # largest PAX / GNU long-name header we accept
_MAX_SYMLINKS = 40

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")

# entry types (tar typeflag bytes)
_REG, _HARD, _SYM, _CHR, _BLK, _DIR, _FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_TYPE_NAMES = {_REG: "file", _HARD: "hard link", _SYM: "symlink", _CHR: "character device",
               _BLK: "block device", _DIR: "directory", _FIFO: "fifo"}
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FS_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


# --------------------------------------------------------------------------
# reading the tar stream
# --------------------------------------------------------------------------
class _SourceFailure(Exception):
    """Carries an exception raised by the source stream's read() unchanged
    past the per-entry OSError wrapping."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc))
        self.exc = exc


class _Entry:
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


class _TarReader:
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
            raise _SourceFailure(exc) from exc

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
        """Yield :class:`_Entry` objects; the data of each must be consumed
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
            e = _Entry()
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
                tflag = _DIR if (tflag == b"\x00" and name.endswith("/")) else _REG
            elif tflag in (b"3", b"4"):
                e.devmajor = _num(h[329:337], "devmajor")
                e.devminor = _num(h[337:345], "devminor")
            elif tflag == b"S":
                raise LayerError(f"layer entry {name!r} is a sparse file, which is not supported")
            elif tflag == b"V":  # volume label
                self.skip(size + (-size % BLOCK))
                continue
            elif tflag not in (_HARD, _SYM, _DIR, _FIFO):
                raise LayerError(f"layer entry {name!r} has unsupported tar type {tflag!r}")
            e.type = tflag
            # only regular files carry data; the size of header-only types
            # (links, dirs, devices, fifos) is ignored, as Go and tarfile do
            if tflag != _REG:
                size = 0
            e.size = self.remaining = size
            yield e
            self.skip(self.remaining + (-size % BLOCK))
            self.remaining = 0


# --------------------------------------------------------------------------
# applying entries
# --------------------------------------------------------------------------
def _split_name(name: str) -> list[str]:
    parts: list[str] = []
    for c in name.split("/"):
        if c == "" or c == ".":
            continue
        if c == "..":
            if not parts:
                raise LayerError(f"layer entry {name!r} escapes the root")
            parts.pop()
        else:
            parts.append(c)
    return parts


def _join(parent: str, base: str) -> str:
    return parent + "/" + base if parent else base


class _Applier:
    def __init__(self, root: str, overlay: bool, reader: _TarReader):
        self.root = root.rstrip("/") if root != "/" else ""
        self.overlay = overlay
        self.reader = reader
        self.privileged = os.geteuid() == 0
        self.written = 0
        self.resolved: dict[str, str] = {"": ""}   # tar-space dir -> real relative dir
        self.created: set[str] = set()              # real paths this layer made
        self.touched: set[str] = set()              # dirs holding entries of this layer
        self.dirs: dict[str, tuple[int, int]] = {}  # deferred (mode, mtime_ns) of dirs
        self.warned: set[str] = set()

    def full(self, rel: str) -> str:
        return self.root + "/" + rel if rel else (self.root or "/")

    def warn_once(self, key: str, msg: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning("%s", msg)

    # -- resolution --------------------------------------------------------
    def resolve_dir(self, key: str, name: str, create: bool) -> str | None:
        """Real relative path of tar-space directory ``key``.

        Missing components are made (``create``) or end the lookup (None,
        also for a component that is not a directory)."""
        hit = self.resolved.get(key)
        if hit is not None:
            return hit
        comps = key.split("/")
        i = len(comps) - 1
        base = None
        while i > 0:
            base = self.resolved.get("/".join(comps[:i]))
            if base is not None:
                break
            i -= 1
        cur = base.split("/") if base else []
        for j in range(i, len(comps)):
            cur = self._step(cur, comps[j], name, create)
            if cur is None:
                return None
            self.resolved["/".join(comps[:j + 1])] = "/".join(cur)
        return "/".join(cur)

    def _step(self, cur: list[str], comp: str, name: str, create: bool) -> list[str] | None:
        pending = [comp]
        links = 0
        via = None
        while pending:
            c = pending.pop()
            if c == "" or c == ".":
                continue
            if c == "..":
                if not cur:
                    raise LayerError(
                        f"layer entry {name!r} escapes the root through symlink "
                        f"'/{via[0]}' -> {via[1]!r}")
                cur.pop()
                continue
            rel = "/".join(cur) + "/" + c if cur else c
            path = self.full(rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)
                self.created.add(rel)
                cur.append(c)
                continue
            m = st.st_mode
            if stat.S_ISDIR(m):
                cur.append(c)
            elif stat.S_ISLNK(m):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise LayerError(f"layer entry {name!r}: too many levels of symbolic links")
                target = os.readlink(path)
                if target.startswith("/"):
                    raise LayerError(
                        f"layer entry {name!r} escapes the root through symlink "
                        f"'/{rel}' -> {target!r}")
                via = (rel, target)
                pending.extend(reversed(target.split("/")))
            elif not create:
                return None
            else:
                raise LayerError(f"layer entry {name!r}: '/{rel}' is not a directory")
        return cur

    def mark(self, rel: str) -> None:
        touched = self.touched
        while rel not in touched:
            touched.add(rel)
            if not rel:
                break
            rel = rel.rpartition("/")[0]

    def remove(self, rel: str, st: os.stat_result) -> None:
        path = self.full(rel)
        if stat.S_ISDIR(st.st_mode):
            from ..storage.copy import remove_tree

            remove_tree(path)  # iterative: a lower layer's tree may be 2,000 levels deep
            self.resolved = {"": ""}
        else:
            os.unlink(path)
            if stat.S_ISLNK(st.st_mode):
                self.resolved = {"": ""}
        self.dirs.pop(rel, None)

    # -- metadata --------------------------------------------------------
    def set_xattrs(self, target, xattrs: dict[str, bytes], name: str) -> None:
        is_fd = isinstance(target, int)
        for k, v in xattrs.items():
            if k.startswith(_OVERLAY_XATTR_PREFIXES):
                # overlayfs' own attributes (opaque, redirect, origin...) would let
                # a layer steer the overlay mount; opaque dirs come from .wh..wh..opq
                self.warn_once("xattr:" + k, f"ignoring overlay xattr {k} on {name!r}")
                continue
            try:
                if is_fd:
                    os.setxattr(target, k, v)
                else:
                    os.setxattr(target, k, v, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                    self.warn_once("xattr:" + k, f"cannot set xattr {k} on {name!r} "
                                   f"({exc.strerror}); skipped")
                else:
                    raise

    # -- entries ------------------------------------------------------------
    def apply(self, e: _Entry) -> None:
        name = e.name
        parts = _split_name(name)
        if not parts:
            if e.type != _DIR:
                raise LayerError(f"layer entry {name!r} would replace the root directory")
            self.dir_over_dir("", e)
            return
        base = parts[-1]
        if WHITEOUT_META_PREFIX in name and any(
                p.startswith(WHITEOUT_META_PREFIX) for p in parts[:-1]):
            return  # inside an aufs metadata dir (.wh..wh.plnk/...): skipped
        key = "/".join(parts[:-1])
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(e, key, base)
            return

        t = e.type
        if t == _HARD:
            self.hardlink(e, key, base)
            return
        preal = self.resolve_dir(key, name, True)
        self.mark(preal)
        rel = _join(preal, base)
        path = self.full(rel)
        # Create optimistically; an existing node there (EEXIST: O_EXCL,
        # mkdir, symlink and mknod never follow it) is replaced.
        if t == _REG:
            try:
                fd = os.open(path, _CREATE_FLAGS, 0o600)
            except FileExistsError:
                self.remove(rel, os.lstat(path))
                fd = os.open(path, _CREATE_FLAGS, 0o600)
            self.created.add(rel)
            try:
                if e.size:
                    self.reader.copy_to(fd, e.size)
                    self.written += e.size
                if self.privileged:
                    os.fchown(fd, e.uid, e.gid)
                os.fchmod(fd, e.mode)  # after chown, which clears setuid/setgid
                if e.xattrs:
                    self.set_xattrs(fd, e.xattrs, name)
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            finally:
                os.close(fd)
        elif t == _DIR:
            try:
                os.mkdir(path, 0o700)  # final mode at the end (we may need to write in it)
            except FileExistsError:
                st = os.lstat(path)
                if stat.S_ISDIR(st.st_mode):  # dir over dir: metadata only
                    self.touched.add(rel)
                    self.dir_over_dir(rel, e)
                    return
                self.remove(rel, st)
                os.mkdir(path, 0o700)
            self.created.add(rel)
            if self.privileged:
                os.chown(path, e.uid, e.gid, follow_symlinks=False)
            if e.xattrs:
                self.set_xattrs(path, e.xattrs, name)
            self.dirs[rel] = (e.mode, e.mtime_ns)
        elif t == _SYM:
            try:
                os.symlink(e.linkname, path)
            except FileExistsError:
                self.remove(rel, os.lstat(path))
                os.symlink(e.linkname, path)
            self.created.add(rel)
            if self.privileged:
                os.chown(path, e.uid, e.gid, follow_symlinks=False)
            if e.xattrs:
                self.set_xattrs(path, e.xattrs, name)
            os.utime(path, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
        else:  # devices and fifos
            kind = {_CHR: stat.S_IFCHR, _BLK: stat.S_IFBLK, _FIFO: stat.S_IFIFO}[t]
            dev = os.makedev(e.devmajor, e.devminor) if t != _FIFO else 0
            try:
                try:
                    os.mknod(path, kind | 0o600, dev)
                except FileExistsError:
                    self.remove(rel, os.lstat(path))
                    os.mknod(path, kind | 0o600, dev)
            except PermissionError:
                if t == _FIFO:
                    raise
                self.warn_once("mknod", f"cannot create device {name!r} without CAP_MKNOD; "
                               "device entries skipped")
                return
            self.created.add(rel)
            if self.privileged:
                os.chown(path, e.uid, e.gid, follow_symlinks=False)
            os.chmod(path, e.mode)  # a fresh node, not a symlink
            if e.xattrs:
                self.set_xattrs(path, e.xattrs, name)
            os.utime(path, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)

    def dir_over_dir(self, rel: str, e: _Entry) -> None:
        path = self.full(rel)
        if self.privileged:
            os.chown(path, e.uid, e.gid, follow_symlinks=False)
        if e.xattrs:
            self.set_xattrs(path, e.xattrs, e.name)
        self.dirs[rel] = (e.mode, e.mtime_ns)

    def hardlink(self, e: _Entry, key: str, base: str) -> None:
        name, target = e.name, e.linkname
        try:
            tparts = _split_name(target)
        except LayerError:
            raise LayerError(f"layer entry {name!r} is a hard link to {target!r}, "
                             "outside the root") from None
        if not tparts:
            raise LayerError(f"layer entry {name!r} is a hard link to the root directory")
        tdir = self.resolve_dir("/".join(tparts[:-1]), name, False)
        trel = _join(tdir, tparts[-1]) if tdir is not None else None
        tst = None
        if trel is not None:
            try:
                tst = os.lstat(self.full(trel))
            except FileNotFoundError:
                pass
        if tst is None:
            raise LayerError(f"layer entry {name!r} is a hard link to {target!r}, which does not exist")
        if stat.S_ISDIR(tst.st_mode):
            raise LayerError(f"layer entry {name!r} is a hard link to directory {target!r}")
        preal = self.resolve_dir(key, name, True)
        self.mark(preal)
        rel = _join(preal, base)
        if rel == trel:
            return
        path = self.full(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode) and (trel + "/").startswith(rel + "/"):
                raise LayerError(f"layer entry {name!r} is a hard link into itself")
            self.remove(rel, st)
        self.created.add(rel)
        os.link(self.full(trel), path, follow_symlinks=False)

    def whiteout(self, e: _Entry, key: str, base: str) -> None:
        name = e.name
        if base == WHITEOUT_OPAQUE:
            drel = self.resolve_dir(key, name, True)
            self.mark(drel)
            if self.overlay:
                try:
                    os.setxattr(self.full(drel), OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP):
                        raise
                    self.warn_once("opaque", f"cannot mark {key or '/'!r} opaque "
                                   f"({exc.strerror}); opaque directories skipped")
            else:
                self.clean(drel)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs-internal (.wh..wh.plnk, .wh..wh.aufs): skipped
        victim = base[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", ".."):
            raise LayerError(f"layer entry {name!r} is not a valid whiteout")
        if self.overlay:
            drel = self.resolve_dir(key, name, True)
            self.mark(drel)
        else:
            drel = self.resolve_dir(key, name, False)
            if drel is None:
                return
        rel = _join(drel, victim)
        path = self.full(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if rel in self.created:
                return  # whiteouts hide lower layers only, never this layer's entries
            self.remove(rel, st)
        if not self.overlay:
            return
        try:
            os.mknod(path, stat.S_IFCHR | 0o000, 0)
        except PermissionError:
            self.warn_once("mknod-wh", "cannot create overlay whiteout devices without "
                           "CAP_MKNOD; whiteouts skipped")
            return
        self.created.add(rel)
        if self.privileged:
            os.chown(path, e.uid, e.gid, follow_symlinks=False)

    def clean(self, top: str) -> None:
        """Opaque directory (delete mode): remove what lower layers had in
        ``top``, keeping whatever this layer put there."""
        stack = [top]
        while stack:
            drel = stack.pop()
            with os.scandir(self.full(drel)) as it:
                names = [d.name for d in it]
            for n in names:
                crel = _join(drel, n)
                if crel in self.created:
                    continue
                st = os.lstat(self.full(crel))
                if crel in self.touched and stat.S_ISDIR(st.st_mode):
                    stack.append(crel)
                else:
                    self.remove(crel, st)

    def finish(self) -> None:
        """Directory modes and mtimes, deepest first, after all contents."""
        verified = {"": True}

        def real_dir(rel: str) -> bool:
            chain = []
            p = rel
            while p not in verified:
                chain.append(p)
                p = p.rpartition("/")[0]
            for q in reversed(chain):
                ok = verified[q.rpartition("/")[0]]
                if ok:
                    try:
                        ok = stat.S_ISDIR(os.lstat(self.full(q)).st_mode)
                    except OSError:
                        ok = False
                verified[q] = ok
            return verified[rel]

        order = sorted(self.dirs, key=lambda r: r.count("/") if r else -1, reverse=True)
        for rel in order:
            if not real_dir(rel):
                continue
            mode, mtime = self.dirs[rel]
            path = self.full(rel)
            os.chmod(path, mode)
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def _os_error(name: str | None, exc: OSError) -> Exception:
    what = f"layer entry {name!r}" if name else "layer"
    msg = f"cannot unpack {what}: {exc.strerror or exc}"
    if exc.errno in _FS_ERRNOS:
        return StorageError(msg)
    return LayerError(msg)


def apply_layer(tar: BinaryIO, root: str, whiteouts: str = "delete") -> int:
    """Apply the uncompressed layer tar ``tar`` to directory ``root``.

    ``whiteouts`` is ``"delete"`` (carry whiteouts out on ``root``'s
    existing content) or ``"overlay"`` (write overlayfs whiteouts: a 0:0
    character device per deleted name, xattr ``trusted.overlay.opaque=y``
    on opaque directories).  Returns the number of bytes of regular-file
    content written.  Raises :class:`~pyrt_core.errors.LayerError` for an
    entry that would escape ``root``, a corrupt or truncated tar, or an
    entry that cannot be made.
    """
    if whiteouts not in ("delete", "overlay"):
        raise ValueError(f"whiteouts must be 'delete' or 'overlay', not {whiteouts!r}")
    root = os.path.abspath(root)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise _os_error(None, exc) from exc
    reader = _TarReader(tar)
    app = _Applier(root, whiteouts == "overlay", reader)
    name = None
    try:
        for entry in reader.entries():
            name = entry.name
            app.apply(entry)
        name = None
        reader.drain()
        app.finish()
    except _SourceFailure as f:
        raise f.exc
    except OSError as exc:
        raise _os_error(name, exc) from exc
    except (ValueError, UnicodeError) as exc:  # e.g. an embedded NUL in a PAX name
        raise LayerError(f"cannot unpack layer entry {name!r}: {exc}") from exc
    return app.written


# --------------------------------------------------------------------------
# compressed streams
# --------------------------------------------------------------------------
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
