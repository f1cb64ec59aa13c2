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

The driver class is here; :mod:`.mounts` holds the mount system calls and
mountinfo, :mod:`.probe` the host probe and its cache, :mod:`.changes` the
changes read from an upper dir (the native diff).

This module is imported whenever drivers are listed, so it (and the modules
above) import nothing heavier than :mod:`os` at the top; ctypes and friends
load on first use.
"""
from __future__ import annotations

import os

from pyrt_core.errors import (
    ConflictError,
    NotFoundError,
    StorageError,
    UsageError,
)
from pyrt_core.api import StorageDriver

TYPE_CHECKING = False  # (not typing's; Change is an attrs class: rm and stop never need it)
if TYPE_CHECKING:
    from pyrt_core.api import Change

from .mounts import mount_overlay, mounts_under, unmount
from .probe import probe_home
from .probe import read_text as _read
from .probe import write_text as _write

#: overlayfs refuses more than 500 lower layers
MAX_LAYERS = 500
_RESERVED = {"l", "empty"}


_ID_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ID_CHARS = _ID_FIRST | frozenset("_.-")


def _check_id(id: str) -> None:
    """``[A-Za-z0-9][A-Za-z0-9_.-]{0,127}``, checked without ``re`` (with enum ~5-10 ms of
    every ``rm`` and ``stop``, which unmount and remove layers)."""
    if (not isinstance(id, str) or id in _RESERVED or not 0 < len(id) <= 128
            or id[0] not in _ID_FIRST or not _ID_CHARS.issuperset(id)):
        raise UsageError(f"invalid layer id {id!r}")


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
        return probe_home(home)

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
        while True:
            name = _b32_name()
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
        from .changes import upper_changes

        upper = os.path.join(self.home, id, "diff")
        if parent is None:
            return upper_changes(upper, None)
        lower_root = self.get(parent)
        try:
            return upper_changes(upper, lower_root)
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


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _b32_name() -> str:
    """26 random base32 characters (130 bits), the form of containers/storage's short
    link names (``base64.b32encode(os.urandom(16))[:26]``, without base64's import)."""
    n = int.from_bytes(os.urandom(17), "big")
    return "".join(_B32[(n >> (5 * i)) & 31] for i in range(26))
