"""The overlay storage driver: layers as overlayfs upper directories.

On-disk layout under the driver's home::

    l/<short>          symlink to ../<id>/diff (short names keep mount options small)
    empty/             the lower directory of layers without a parent
    <id>/diff/         the layer's own files (the overlay upper dir)
    <id>/work/         overlayfs' work dir
    <id>/merged/       where ``get`` mounts the layer
    <id>/link          the layer's short name (26 characters, A-Z and 2-7)
    <id>/lower         parents' short links, nearest first: ``l/AAA:l/BBB``
    .pyrt-overlay-probe   cached result of the host probe

A layer is mounted with ``lowerdir=<lower>,upperdir=<id>/diff,workdir=<id>/work``.
Options are given with absolute paths while they fit in one page; deeper
stacks (up to :data:`MAX_LAYERS`) are mounted by a forked child that
changes into home and passes paths relative to it.

Whiteouts are kept the overlayfs way (0/0 character devices, the
``trusted.overlay.opaque`` xattr); the native diff translates them to the
image format's ``.wh.`` entries.

This module is imported whenever drivers are listed, so it imports nothing
heavier than :mod:`os` at the top; ctypes and friends load on first use.
"""
from __future__ import annotations

import os

from pyrt_core.errors import (
    ConflictError,
    DriverNotSupported,
    NotFoundError,
    StorageError,
    UsageError,
)
from pyrt_core.api import Change, StorageDriver

#: overlayfs refuses more than 500 lower layers
MAX_LAYERS = 500
PROBE_FILE = ".pyrt-overlay-probe"
PROBE_VERSION = "1"
MNT_DETACH = 2
_OVERLAY_PARAMS = "/sys/module/overlay/parameters"
_RESERVED = {"l", "empty"}


# -- small system helpers ------------------------------------------------------
_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes

        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_ulong, ctypes.c_char_p]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc = lib
    return _libc


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def mount_overlay(target: str, options: str, cwd: str | None = None) -> None:
    """mount(2) an overlay at ``target``; with ``cwd``, from a child process
    whose working directory is ``cwd`` so relative paths in ``options`` work
    (changing the working directory of this process would affect every
    thread)."""
    lib = libc()
    t, o = os.fsencode(target), os.fsencode(options)
    if cwd is None:
        if lib.mount(b"overlay", t, b"overlay", 0, o) != 0:
            err = _errno()
            raise OSError(err, os.strerror(err), target)
        return
    c = os.fsencode(cwd)
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, only chdir + mount
        code = 255
        try:
            os.chdir(c)
            code = 0 if lib.mount(b"overlay", t, b"overlay", 0, o) == 0 else (_errno() or 255)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = code if 0 < code < 255 else 0
        raise OSError(err, os.strerror(err) if err else "mount helper failed", target)


def unmount(target: str) -> None:
    """Lazily unmount ``target`` (MNT_DETACH: copies of the mount in other
    mount namespaces do not keep it busy)."""
    if libc().umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = _errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, os.strerror(err), target)


def mounts_under(path: str) -> list[str]:
    """Mount points strictly below ``path`` (from /proc/self/mountinfo), deepest first."""
    prefix = path.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            mp = _unescape(line.split(b" ", 5)[4])
            if mp.startswith(prefix):
                out.append(mp)
    return sorted(set(out), key=lambda m: (-m.count("/"), m))


def _unescape(field: bytes) -> str:
    if b"\\" in field:
        import re

        field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
    return os.fsdecode(field)


def backing_filesystem(path: str) -> str:
    """The filesystem type of the mount holding ``path``."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, _, right = line.partition(b" - ")
            mp = _unescape(left.split(b" ")[4])
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, fstype = mp, os.fsdecode(right.split(b" ")[0])
    return fstype


def dir_entry_types(path: str) -> dict[str, int]:
    """``{name: d_type}`` of a directory's entries, read with getdents64(2)."""
    import ctypes
    import struct

    lib = libc()
    buf = ctypes.create_string_buffer(65536)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    out = {}
    try:
        fn = getattr(lib, "getdents64", None)
        if fn is not None:
            fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
            fn.restype = ctypes.c_ssize_t
            call = lambda: fn(fd, buf, len(buf))  # noqa: E731
        else:
            import platform

            nr = {"x86_64": 217, "aarch64": 61, "riscv64": 61, "ppc64le": 202, "s390x": 220}[
                platform.machine()]
            lib.syscall.restype = ctypes.c_long
            call = lambda: lib.syscall(nr, fd, buf, ctypes.c_size_t(len(buf)))  # noqa: E731
        while True:
            n = call()
            if n < 0:
                err = _errno()
                raise OSError(err, os.strerror(err), path)
            if n == 0:
                break
            raw = buf.raw[:n]
            off = 0
            while off < n:
                _ino, _doff, reclen, dtype = struct.unpack_from("=QqHB", raw, off)
                name = raw[off + 19:off + reclen].split(b"\0", 1)[0]
                out[os.fsdecode(name)] = dtype
                off += reclen
    finally:
        os.close(fd)
    return out


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _is_whiteout(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _check_id(id: str) -> None:
    import re

    if (not isinstance(id, str) or id in _RESERVED
            or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", id)):
        raise UsageError(f"invalid layer id {id!r}")


# -- the host probe ------------------------------------------------------------
def _kernel_defaults_to_disable() -> str:
    """Mount options turning off overlay features that the kernel enables by
    default and that would break the driver: ``index`` (refuses lower dirs
    that are another mount's upper), ``redirect_dir`` and ``metacopy``
    (their upper dirs no longer hold a layer's complete change set)."""
    extra = []
    for param, opt in (("index", "index=off"), ("redirect_dir", "redirect_dir=off"),
                       ("metacopy", "metacopy=off")):
        try:
            value = _read(os.path.join(_OVERLAY_PARAMS, param))
        except OSError:
            continue
        if value in ("Y", "on", "1"):
            extra.append(opt)
    return "".join("," + o for o in extra)


def _probe_host(home: str) -> dict[str, str]:
    """Check d_type, that ``home`` can hold overlay upper dirs, and whether
    upper dirs are complete diffs (native diff).  Raises DriverNotSupported."""
    import tempfile

    from pyrt_core.api import remove_tree

    extra = _kernel_defaults_to_disable()
    fstype = backing_filesystem(home)
    tmp = tempfile.mkdtemp(prefix=".probe-", dir=home)
    try:
        lower, upper, work, merged = (os.path.join(tmp, n) for n in ("lower", "upper", "work", "merged"))
        for d in (lower, upper, work, merged, os.path.join(lower, "dir")):
            os.mkdir(d)
        for f in ("file", "gone", "owned"):
            _write(os.path.join(lower, f), "x")
        types = dir_entry_types(lower)
        if types.get("file", 0) == 0:  # DT_UNKNOWN
            raise DriverNotSupported(
                f"overlay: the backing filesystem of {home} ({fstype}) lacks d_type support "
                "(on xfs: format with ftype=1)")
        try:
            # relative to the probe dir: home may hold "," or ":"
            mount_overlay("merged", f"lowerdir=lower,upperdir=upper,workdir=work{extra}", cwd=tmp)
        except OSError as e:
            raise DriverNotSupported(
                f"overlay: {home} ({fstype}) cannot hold overlay upper directories: "
                f"mount failed: {e.strerror}") from None
        native = True
        try:
            try:
                os.rename(os.path.join(merged, "dir"), os.path.join(merged, "dir2"))
            except OSError:
                pass  # EXDEV: no redirects, userspace would copy
            os.chown(os.path.join(merged, "owned"), 1, 1)
            os.unlink(os.path.join(merged, "gone"))
            for name, xattr in (("dir2", "trusted.overlay.redirect"),
                                ("owned", "trusted.overlay.metacopy")):
                try:
                    os.getxattr(os.path.join(upper, name), xattr, follow_symlinks=False)
                    native = False
                except OSError:
                    pass
        finally:
            unmount(merged)
        try:
            if not _is_whiteout(os.lstat(os.path.join(upper, "gone"))):
                native = False
        except OSError:
            native = False
    finally:
        remove_tree(tmp)
    return {"version": PROBE_VERSION, "fstype": fstype, "d_type": "true",
            "native_diff": "true" if native else "false", "mount_options": extra}


def _probe_key(home: str) -> str:
    return f"{os.stat(home).st_dev}:{os.uname().release}"


def _read_probe(home: str) -> dict[str, str] | None:
    try:
        with open(os.path.join(home, PROBE_FILE)) as f:
            data = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except (OSError, ValueError):
        return None
    if data.get("version") != PROBE_VERSION or data.get("key") != _probe_key(home):
        return None
    return data


def _check_overlay_in_kernel() -> None:
    try:
        with open("/proc/filesystems") as f:
            known = any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        known = False
    if not known:
        raise DriverNotSupported("overlay: the kernel does not support overlayfs "
                                 "(not in /proc/filesystems; try: modprobe overlay)")


# -- the driver ------------------------------------------------------------------
class OverlayDriver(StorageDriver):
    """Layers as overlayfs upper directories with short lower links."""

    name = "overlay"

    def __init__(self, home: str, options: dict[str, str] | None = None):
        super().__init__(home, options)
        if self.options:
            raise UsageError("storage driver 'overlay' has no options (got "
                             + ", ".join(sorted(self.options)) + ")")
        self.home = home = os.path.abspath(home)
        self._probe = self.probe(home)
        for d in ("l", "empty"):
            try:
                os.mkdir(os.path.join(home, d), 0o700 if d == "l" else 0o755)
            except FileExistsError:
                pass
        self._native = self._probe.get("native_diff") == "true"
        self._extra = self._probe.get("mount_options", "")
        self._refs: dict[str, int] = {}

    @classmethod
    def probe(cls, home: str) -> dict[str, str]:
        """Check the host for ``home`` (cached in ``<home>/.pyrt-overlay-probe``,
        keyed by home's device and the kernel release).  Raises DriverNotSupported."""
        _check_overlay_in_kernel()
        created = False
        if not os.path.isdir(home):
            os.makedirs(home, mode=0o700)
            created = True
        cached = _read_probe(home)
        if cached is not None:
            return cached
        try:
            result = _probe_host(home)
        except BaseException:
            if created:
                os.rmdir(home)
            raise
        result["key"] = _probe_key(home)
        tmp = os.path.join(home, f".{PROBE_FILE}.{os.getpid()}")
        _write(tmp, "".join(f"{k}={v}\n" for k, v in sorted(result.items())))
        os.rename(tmp, os.path.join(home, PROBE_FILE))
        return result

    # -- paths --------------------------------------------------------------------
    def _dir(self, id: str) -> str:
        _check_id(id)
        return os.path.join(self.home, id)

    def _lower(self, id: str) -> str:
        """The layer's lower chain (``l/A:l/B``), "" for a layer without parent."""
        try:
            return _read(os.path.join(self.home, id, "lower"))
        except FileNotFoundError:
            return ""

    def _link(self, id: str) -> str:
        return _read(os.path.join(self.home, id, "link"))

    def _recorded_parent_is(self, id: str, parent: str | None) -> bool:
        first = self._lower(id).split(":", 1)[0]
        if parent is None:
            return first == ""
        try:
            return first == "l/" + self._link(parent)
        except (OSError, UsageError):
            return False

    def _new_link(self) -> str:
        import base64

        while True:
            name = base64.b32encode(os.urandom(16)).decode()[:26]
            if not os.path.lexists(os.path.join(self.home, "l", name)):
                return name

    # -- layers ---------------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        from pyrt_core.api import remove_tree

        d = self._dir(id)
        if os.path.lexists(d):
            raise ConflictError(f"layer {id} already exists")
        lower, pst = "", None
        if parent is not None:
            pd = self._dir(parent)
            try:
                pst = os.stat(os.path.join(pd, "diff"))
                plink = self._link(parent)
            except FileNotFoundError:
                raise NotFoundError(f"parent layer {parent} does not exist") from None
            plower = self._lower(parent)
            lower = f"l/{plink}" + (f":{plower}" if plower else "")
            if lower.count(":") + 1 > MAX_LAYERS:
                raise StorageError(f"overlay: layer {id} would have more than {MAX_LAYERS} "
                                   "parent layers (the kernel's limit)")
        tmp = os.path.join(self.home, f".tmp-{id}-{os.getpid()}")
        remove_tree(tmp)
        link = self._new_link()
        try:
            os.mkdir(tmp, 0o700)
            diff = os.path.join(tmp, "diff")
            os.mkdir(diff)
            if pst is not None:  # the merged root keeps the parent's root metadata
                os.chown(diff, pst.st_uid, pst.st_gid)
                os.chmod(diff, pst.st_mode & 0o7777)
            else:
                os.chmod(diff, 0o755)
            os.mkdir(os.path.join(tmp, "work"), 0o700)
            os.mkdir(os.path.join(tmp, "merged"), 0o700)
            _write(os.path.join(tmp, "link"), link)
            if lower:
                _write(os.path.join(tmp, "lower"), lower)
            os.rename(tmp, d)
        except BaseException:
            remove_tree(tmp)
            raise
        try:
            os.symlink(f"../{id}/diff", os.path.join(self.home, "l", link))
        except BaseException:
            remove_tree(d)
            raise

    def create_rw(self, id: str, parent: str | None, options: dict[str, str] | None = None) -> None:
        if options:
            raise UsageError(
                "storage driver 'overlay' does not support per-container storage options "
                f"({', '.join(sorted(options))}): a size limit needs the driver home on xfs "
                f"mounted with project quota (pquota); {self.home} is on "
                f"{self._probe.get('fstype', 'unknown')}")
        self.create(id, parent)

    def exists(self, id: str) -> bool:
        return os.path.isdir(os.path.join(self._dir(id), "diff"))

    def remove(self, id: str) -> None:
        from pyrt_core.api import remove_tree

        d = self._dir(id)
        if not os.path.lexists(d):
            return
        self._refs.pop(id, None)
        merged = os.path.join(d, "merged")
        if os.path.ismount(merged):
            self._unmount(merged)
        try:
            os.unlink(os.path.join(self.home, "l", self._link(id)))
        except (FileNotFoundError, ValueError):
            pass
        doomed = os.path.join(self.home, f".removing-{id}-{os.getpid()}")
        remove_tree(doomed)
        os.rename(d, doomed)
        remove_tree(doomed)

    def get(self, id: str) -> str:
        d = self._dir(id)
        if not os.path.isdir(os.path.join(d, "diff")):
            raise NotFoundError(f"layer {id} does not exist")
        merged = os.path.join(d, "merged")
        if not os.path.ismount(merged):
            self._mount(id)
            self._refs[id] = 0
        self._refs[id] = self._refs.get(id, 0) + 1
        return merged

    def put(self, id: str) -> None:
        n = self._refs.pop(id, 0)
        if n > 1:
            self._refs[id] = n - 1
            return
        merged = os.path.join(self._dir(id), "merged")
        if os.path.ismount(merged):
            self._unmount(merged)

    def _mount(self, id: str) -> None:
        lower = self._lower(id)
        lowers = lower.split(":") if lower else ["empty"]
        home = self.home
        rel = (lower or "empty", f"{id}/diff", f"{id}/work")
        absolute = (":".join(os.path.join(home, x) for x in lowers),
                    os.path.join(home, rel[1]), os.path.join(home, rel[2]))
        fmt = "lowerdir={},upperdir={},workdir={}" + self._extra
        opts = fmt.format(*absolute)
        page = os.sysconf("SC_PAGESIZE")
        try:
            if len(os.fsencode(opts)) < page and not any(c in home for c in ",:\\"):
                mount_overlay(os.path.join(home, id, "merged"), opts)
            else:
                opts = fmt.format(*rel)
                if len(os.fsencode(opts)) >= page:
                    raise StorageError(f"overlay: mount options for layer {id} exceed one page "
                                       f"({len(lowers)} layers)")
                mount_overlay(f"{id}/merged", opts, cwd=home)
        except OSError as e:
            missing = [x for x in lowers if not os.path.exists(os.path.join(home, x))]
            hint = f" (missing parent layers: {', '.join(missing)})" if missing else ""
            raise StorageError(f"overlay: mounting layer {id} failed: {e.strerror}{hint}") from None

    def _unmount(self, merged: str) -> None:
        try:
            unmount(merged)
        except OSError as e:
            raise StorageError(f"overlay: unmounting {merged} failed: {e.strerror}") from None

    def status(self) -> list[tuple[str, str]]:
        return [("Backing Filesystem", self._probe.get("fstype", "unknown")),
                ("Supports d_type", self._probe.get("d_type", "true")),
                ("Native Overlay Diff", "true" if self._native else "false")]

    def metadata(self, id: str) -> dict[str, str]:
        d = self._dir(id)
        if not os.path.isdir(d):
            raise NotFoundError(f"layer {id} does not exist")
        lower = self._lower(id)
        out = {"UpperDir": os.path.join(d, "diff"), "WorkDir": os.path.join(d, "work"),
               "MergedDir": os.path.join(d, "merged")}
        if lower:
            out["LowerDir"] = ":".join(os.path.realpath(os.path.join(self.home, x))
                                       for x in lower.split(":"))
        return out

    def cleanup(self) -> None:
        from pyrt_core.api import remove_tree

        self._refs.clear()
        for mp in mounts_under(self.home):
            self._unmount(mp)
        for n in os.listdir(self.home):
            if n.startswith((".tmp-", ".removing-", ".probe-")):
                remove_tree(os.path.join(self.home, n))

    def supports_parallel_apply(self) -> bool:
        return True

    # -- diffs ----------------------------------------------------------------------
    def _use_native(self, id: str, parent: str | None) -> bool:
        if not self.exists(id):
            raise NotFoundError(f"layer {id} does not exist")
        return self._native and self._recorded_parent_is(id, parent)

    def apply_diff(self, id, parent, tar) -> int:
        from pyrt_core.api import apply_layer

        if not self.exists(id):
            raise NotFoundError(f"layer {id} does not exist")
        return apply_layer(tar, os.path.join(self.home, id, "diff"), whiteouts="overlay")

    def diff(self, id, parent):
        if self._use_native(id, parent):
            from pyrt_core.api import pack_overlay_diff

            return pack_overlay_diff(os.path.join(self.home, id, "diff"))
        from pyrt_core.api import naivediff

        return naivediff.diff(self, id, parent)

    def changes(self, id, parent) -> list[Change]:
        if not self._use_native(id, parent):
            from pyrt_core.api import naivediff

            return naivediff.changes(self, id, parent)
        upper = os.path.join(self.home, id, "diff")
        if parent is None:
            return _upper_changes(upper, None)
        lower_root = self.get(parent)
        try:
            return _upper_changes(upper, lower_root)
        finally:
            self.put(parent)

    def diff_size(self, id, parent) -> int:
        if not self.exists(id):
            return 0
        if not self._use_native(id, parent):
            return super().diff_size(id, parent)
        upper = os.path.join(self.home, id, "diff")
        size = 0
        for ch in self.changes(id, parent):
            if ch.kind != "D":
                st = os.lstat(upper + ch.path)
                if (st.st_mode & 0o170000) != 0o040000:
                    size += st.st_size
        return size


def _upper_changes(upper: str, lower_root: str | None) -> list[Change]:
    """Changes recorded in an overlay upper dir against the mounted parent
    ``lower_root`` (None: no parent).  A path counts as changed by the same
    rules as :mod:`pyrt_core.archive.changes` (mode, owner, rdev; for
    non-directories mtime, size and symlink target; ``security.capability``;
    directories holding changes), so both give the same answer; only the
    upper dir is walked, not the whole tree."""
    import stat as S

    out: list[Change] = []

    def lower_stat(path):
        if lower_root is None:
            return None
        try:
            return os.lstat(lower_root + path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def added_below(path):
        for e in sorted(os.scandir(upper + path), key=lambda e: e.name):
            p = f"{path}/{e.name}"
            st = e.stat(follow_symlinks=False)
            if _is_whiteout(st):
                continue
            out.append(Change(p, "A"))
            if S.S_ISDIR(st.st_mode):
                added_below(p)

    def visit(path, opaque):
        seen = set()
        for e in sorted(os.scandir(upper + path), key=lambda e: e.name):
            p = f"{path}/{e.name}"
            seen.add(e.name)
            st = e.stat(follow_symlinks=False)
            low = lower_stat(p)
            if _is_whiteout(st):
                if low is not None:
                    out.append(Change(p, "D"))
                continue
            if low is None:
                out.append(Change(p, "A"))
                if S.S_ISDIR(st.st_mode):
                    added_below(p)
                continue
            if _differs(st, low, upper + p, lower_root + p):
                out.append(Change(p, "C"))
            if S.S_ISDIR(st.st_mode):
                if S.S_ISDIR(low.st_mode):
                    # below an opaque dir nothing of the parent shows through
                    visit(p, opaque or _is_opaque(upper + p))
                else:
                    added_below(p)
        if opaque and lower_root is not None:
            try:
                below = os.listdir(lower_root + path)
            except OSError:
                below = []
            out.extend(Change(f"{path}/{n}", "D") for n in below if n not in seen)

    visit("", _is_opaque(upper))
    # as the naive diff does: a directory holding changes is changed itself
    found = {c.path: c.kind for c in out}
    for path in list(found):
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found[parent] = "C"
            parent = parent.rpartition("/")[0]
    return [Change(p, found[p]) for p in sorted(found)]


def _differs(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid, a.st_rdev) != (b.st_mode, b.st_uid, b.st_gid, b.st_rdev):
        return True
    if (a.st_mode & 0o170000) != 0o040000:
        if a.st_size != b.st_size or not _same_time(a.st_mtime_ns, b.st_mtime_ns):
            return True
        if (a.st_mode & 0o170000) == 0o120000 and os.readlink(pa) != os.readlink(pb):
            return True

    def cap(p):
        try:
            return os.getxattr(p, "security.capability", follow_symlinks=False)
        except OSError:
            return None

    return cap(pa) != cap(pb)


def _same_time(a: int, b: int) -> bool:
    """Equal mtimes, or equal seconds with nanoseconds 0 on one side (a tar
    carries whole seconds)."""
    if a == b:
        return True
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)
