"""Writing image layer tars (uncompressed, PAX format) from directories.

:func:`pack_paths` tars selected paths of a directory (the changes of a
layer against its parent, with deletions as ``.wh.`` whiteout files);
:func:`pack_overlay_diff` tars a whole overlayfs upper directory,
translating overlay whiteouts (0:0 character devices, opaque-directory
xattrs) into the image format's ``.wh.NAME`` and ``.wh..wh..opq``.

Like docker, entries carry whole-second mtimes (no atime/ctime), numeric
uid/gid without user names, and of the xattrs only ``security.capability``;
a second path of an already written inode becomes a hard link.  Values too
large for the ustar fields (long names, uids, sizes) go in PAX records.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Iterable, Iterator

from ..errors import StorageError
from .changes import Change
from .layerformat import (
    BLOCK,
    CAP_XATTR as _CAP_XATTR,
    CHUNK,
    OVERLAY_OPAQUE_XATTRS as _OPAQUE_XATTRS,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
)

__all__ = ["pack_paths", "pack_overlay_diff"]

_END = bytes(2 * BLOCK)

_MAX7 = 0o7777777
_MAX11 = 0o77777777777


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _base256(value: int, width: int) -> bytes:
    return bytes((0x80,)) + value.to_bytes(width - 1, "big")


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8") + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _block_header(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
                  tflag: bytes, linkname: bytes = b"", devmajor: int = 0,
                  devminor: int = 0) -> bytes:
    h = bytearray(BLOCK)
    h[0:len(name)] = name
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[148:156] = b"        "
    h[156:157] = tflag
    h[157:157 + len(linkname)] = linkname
    h[257:265] = b"ustar\x0000"
    h[329:337] = _octal(devmajor, 8) if devmajor <= _MAX7 else _base256(devmajor, 8)
    h[337:345] = _octal(devminor, 8) if devminor <= _MAX7 else _base256(devminor, 8)
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def _header(name: str, mode: int, uid: int, gid: int, size: int, mtime: int, tflag: bytes,
            linkname: str = "", devmajor: int = 0, devminor: int = 0,
            xattrs: dict[str, bytes] | None = None) -> bytes:
    """One entry's header blocks, with a PAX extended header when needed."""
    bname = os.fsencode(name)
    blink = os.fsencode(linkname)
    records: list[bytes] = []
    binary = False
    if len(bname) > 100:
        records.append(_pax_record("path", bname))
        binary = binary or not _is_utf8(bname)
        bname = bname[:100]
    if len(blink) > 100:
        records.append(_pax_record("linkpath", blink))
        binary = binary or not _is_utf8(blink)
        blink = blink[:100]
    if uid > _MAX7 or uid < 0:
        records.append(_pax_record("uid", str(uid).encode()))
        uid = 0
    if gid > _MAX7 or gid < 0:
        records.append(_pax_record("gid", str(gid).encode()))
        gid = 0
    if size > _MAX11:
        records.append(_pax_record("size", str(size).encode()))
        size = 0
    if mtime > _MAX11 or mtime < 0:
        records.append(_pax_record("mtime", str(mtime).encode()))
        mtime = 0
    if xattrs:
        for k in sorted(xattrs):
            records.append(_pax_record("SCHILY.xattr." + k, xattrs[k]))
    main = _block_header(bname, mode, uid, gid, size, mtime, tflag, blink, devmajor, devminor)
    if not records:
        return main
    if binary:
        records.insert(0, _pax_record("hdrcharset", b"BINARY"))
    data = b"".join(records)
    pax = _block_header(b"././@PaxHeader", 0o644, 0, 0, len(data), 0, b"x")
    return pax + data + bytes(-len(data) % BLOCK) + main


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, _CAP_XATTR, follow_symlinks=False)
    except OSError:
        return None


def _is_opaque(path: str) -> bool:
    for key in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, key, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


class _ParentCheck:
    """Makes sure no parent of a packed path is a symlink (so reading
    ``root + path`` never leaves ``root``)."""

    def __init__(self, root: str):
        self.root = root
        self.ok = {"": True}

    def __call__(self, rel: str) -> bool:
        parent = rel.rpartition("/")[0]
        chain = []
        p = parent
        while p not in self.ok:
            chain.append(p)
            p = p.rpartition("/")[0]
        for q in reversed(chain):
            good = self.ok[q.rpartition("/")[0]]
            if good:
                try:
                    good = stat.S_ISDIR(os.lstat(self.root + "/" + q).st_mode)
                except OSError:
                    good = False
            self.ok[q] = good
        return self.ok[parent]


def _sort_key(change: Change):
    return change.path.strip("/").split("/")


def pack_paths(root: str, changes: Iterable[Change], whiteout_source: str = "none") -> Iterator[bytes]:
    """Yield an uncompressed layer tar (in chunks of about 1 MiB) of
    ``changes`` of directory ``root``.

    Kind "D" becomes an empty ``.wh.NAME`` file; "A"/"C" the entry itself
    (a directory alone, not its content).  ``whiteout_source="overlay"``
    reads ``root`` as an overlayfs upper dir: 0:0 character devices become
    ``.wh.NAME`` and opaque directories get a ``.wh..wh..opq`` entry.
    """
    if whiteout_source not in ("none", "overlay"):
        raise ValueError(f"whiteout_source must be 'none' or 'overlay', not {whiteout_source!r}")
    overlay = whiteout_source == "overlay"
    root = os.path.abspath(root).rstrip("/")
    check = _ParentCheck(root)
    seen: dict[tuple[int, int], str] = {}
    buf = bytearray()

    for change in sorted(changes, key=_sort_key):
        rel = change.path.strip("/")
        if not rel or rel == ".":
            continue
        parent, _, base = rel.rpartition("/")
        if change.kind == "D":
            buf += _header(_wh(parent, base), 0o644, 0, 0, 0, 0, b"0")
            continue
        if change.kind not in ("A", "C"):
            raise ValueError(f"unknown change kind {change.kind!r} for {change.path!r}")
        path = root + "/" + rel
        if not check(rel):
            raise StorageError(f"cannot pack {change.path!r}: a parent directory is a symlink")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise StorageError(f"cannot pack {change.path!r}: it vanished") from None
        m = st.st_mode
        perm = stat.S_IMODE(m)
        mtime = st.st_mtime_ns // 1_000_000_000
        uid, gid = st.st_uid, st.st_gid

        if stat.S_ISDIR(m):
            buf += _header(rel + "/", perm, uid, gid, 0, mtime, b"5", xattrs=_caps(path))
            if overlay and _is_opaque(path):
                buf += _header(rel + "/" + WHITEOUT_OPAQUE, 0o644, 0, 0, 0, 0, b"0")
        elif stat.S_ISREG(m):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                first = seen.get(key)
                if first is not None:
                    buf += _header(rel, perm, uid, gid, 0, mtime, b"1", linkname=first)
                    continue
                seen[key] = rel
            buf += _header(rel, perm, uid, gid, st.st_size, mtime, b"0", xattrs=_caps(path))
            if st.st_size:
                if len(buf) >= CHUNK:
                    yield bytes(buf)
                    buf.clear()
                yield from _file_data(path, st, buf)
        elif stat.S_ISLNK(m):
            target = os.readlink(path)
            buf += _header(rel, perm, uid, gid, 0, mtime, b"2", linkname=target, xattrs=_caps(path))
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            if overlay and stat.S_ISCHR(m) and st.st_rdev == 0:
                buf += _header(_wh(parent, base), 0o644, 0, 0, 0, 0, b"0")
                continue
            buf += _header(rel, perm, uid, gid, 0, mtime, b"3" if stat.S_ISCHR(m) else b"4",
                           devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev),
                           xattrs=_caps(path))
        elif stat.S_ISFIFO(m):
            buf += _header(rel, perm, uid, gid, 0, mtime, b"6", xattrs=_caps(path))
        else:
            continue  # sockets cannot be represented in a tar
        if len(buf) >= CHUNK:
            yield bytes(buf)
            buf.clear()
    buf += _END
    yield bytes(buf)


def _wh(parent: str, base: str) -> str:
    return (parent + "/" if parent else "") + WHITEOUT_PREFIX + base


def _caps(path: str) -> dict[str, bytes] | None:
    cap = _capability(path)
    return {_CAP_XATTR: cap} if cap is not None else None


def _file_data(path: str, st: os.stat_result, buf: bytearray) -> Iterator[bytes]:
    """Yield the content of a regular file (``st.st_size`` bytes, padded to
    a block); small files are appended to ``buf`` instead."""
    size = st.st_size
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise StorageError(f"cannot pack {path!r}: {exc.strerror}") from exc
    try:
        fst = os.fstat(fd)
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise StorageError(f"cannot pack {path!r}: it changed while packing")
        left = size
        while left > 0:
            data = os.read(fd, min(left, CHUNK))
            if not data:
                raise StorageError(f"cannot pack {path!r}: it shrank while packing")
            left -= len(data)
            if len(buf) + len(data) < CHUNK:
                buf += data
            else:
                if buf:
                    yield bytes(buf)
                    buf.clear()
                yield data
    finally:
        os.close(fd)
    pad = -size % BLOCK
    if pad:
        buf += bytes(pad)


def pack_overlay_diff(diff_dir: str) -> Iterator[bytes]:
    """Yield an image-format layer tar of a whole overlayfs upper directory."""
    root = os.path.abspath(diff_dir).rstrip("/")
    paths: list[Change] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(root + "/" + rel if rel else root) as it:
                entries = list(it)
        except OSError as exc:
            if exc.errno == errno.ENOENT and rel:
                continue
            raise StorageError(f"cannot read {diff_dir!r}: {exc.strerror}") from exc
        for d in entries:
            crel = rel + "/" + d.name if rel else d.name
            paths.append(Change("/" + crel, "A"))
            if d.is_dir(follow_symlinks=False):
                stack.append(crel)
    yield from pack_paths(root, paths, whiteout_source="overlay")
