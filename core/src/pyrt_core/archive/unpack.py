"""Applying image layer tars to a directory, as if chrooted there.

:func:`apply_layer` reads an uncompressed layer tar (image format) as a
stream (:mod:`pyrt_core.archive.tarreader`) and writes it into a directory:
nothing is ever created, changed or removed outside that directory.
Whiteouts are either carried out (``whiteouts="delete"``, for drivers whose
layers start as a copy or snapshot of their parent) or turned into overlayfs
whiteouts (``whiteouts="overlay"``, for the overlay driver's per-layer diff
dirs).  A compressed blob is first opened with
:func:`pyrt_core.archive.decompress.open_layer_stream`.

Safety: entry names are normalised lexically (``a/../b`` is ``b``; a
leading ``/`` is relative to the root; a ``..`` climbing above the root is
refused).  The directory that is to hold an entry is resolved component by
component with ``lstat``; a symlink met on the way is followed only when its
target is relative and stays inside the root.  The entry's own (last)
component is never followed: an existing node there is removed and the new
one made with ``O_EXCL|O_NOFOLLOW`` (or ``mkdir``/``symlink``/``mknod``/
``link``, which do not follow either).  Hard links must name an entry inside
the root; overlayfs' own xattrs are never taken from a layer.
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from typing import BinaryIO

from ..errors import LayerError, StorageError
from ..fsutil import remove_tree
from .layerformat import (
    OVERLAY_OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIXES,
    WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
)
from .tarreader import BLK, CHR, DIR, FIFO, HARD, REG, SYM, Entry, SourceFailure, TarReader

log = logging.getLogger(__name__)

__all__ = ["apply_layer"]

_MAX_SYMLINKS = 40
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FS_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


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
    def __init__(self, root: str, overlay: bool, reader: TarReader):
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
            if k.startswith(OVERLAY_XATTR_PREFIXES):
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
    def apply(self, e: Entry) -> None:
        name = e.name
        parts = _split_name(name)
        if not parts:
            if e.type != DIR:
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
        if t == HARD:
            self.hardlink(e, key, base)
            return
        preal = self.resolve_dir(key, name, True)
        self.mark(preal)
        rel = _join(preal, base)
        path = self.full(rel)
        # Create optimistically; an existing node there (EEXIST: O_EXCL,
        # mkdir, symlink and mknod never follow it) is replaced.
        if t == REG:
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
        elif t == DIR:
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
        elif t == SYM:
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
            kind = {CHR: stat.S_IFCHR, BLK: stat.S_IFBLK, FIFO: stat.S_IFIFO}[t]
            dev = os.makedev(e.devmajor, e.devminor) if t != FIFO else 0
            try:
                try:
                    os.mknod(path, kind | 0o600, dev)
                except FileExistsError:
                    self.remove(rel, os.lstat(path))
                    os.mknod(path, kind | 0o600, dev)
            except PermissionError:
                if t == FIFO:
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

    def dir_over_dir(self, rel: str, e: Entry) -> None:
        path = self.full(rel)
        if self.privileged:
            os.chown(path, e.uid, e.gid, follow_symlinks=False)
        if e.xattrs:
            self.set_xattrs(path, e.xattrs, e.name)
        self.dirs[rel] = (e.mode, e.mtime_ns)

    def hardlink(self, e: Entry, key: str, base: str) -> None:
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

    def whiteout(self, e: Entry, key: str, base: str) -> None:
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
    reader = TarReader(tar)
    app = _Applier(root, whiteouts == "overlay", reader)
    name = None
    try:
        for entry in reader.entries():
            name = entry.name
            app.apply(entry)
        name = None
        reader.drain()
        app.finish()
    except SourceFailure as f:
        raise f.exc
    except OSError as exc:
        raise _os_error(name, exc) from exc
    except (ValueError, UnicodeError) as exc:  # e.g. an embedded NUL in a PAX name
        raise LayerError(f"cannot unpack layer entry {name!r}: {exc}") from exc
    return app.written
