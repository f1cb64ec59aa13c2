"""The btrfs storage driver: one subvolume per layer.

On-disk layout under the driver's home (which must be on btrfs)::

    subvolumes/<id>    the layer: a subvolume, created empty
                       (BTRFS_IOC_SUBVOL_CREATE) or as a writable snapshot of
                       its parent's subvolume (BTRFS_IOC_SNAP_CREATE_V2)
    quotas/<id>        the layer's size limit in bytes, when it has one

``get`` returns the subvolume's directory (nothing is mounted) and ``put``
does nothing.  ``remove`` destroys subvolumes nested in the layer first
(deepest first; found through the root tree's ROOT_REF items), then the
layer's own (BTRFS_IOC_SNAP_DESTROY).  Diffs are computed by comparing
directories (:class:`~pyrt_core.storage.driver.NaiveDiffDriver`).

Size limits (``create_rw(..., {"size": "10G"})``, or the driver option
``btrfs.size`` as every container's default) turn on quota groups for the
filesystem (BTRFS_IOC_QUOTA_CTL) the first time one is asked for, then
limit the referenced bytes (``max_rfer``) of the container subvolume's
level-0 qgroup (BTRFS_IOC_QGROUP_LIMIT), as docker does.  A snapshot
references all of its parent's data, so the limit counts the image's files
as well as what the container writes.  The limit is persisted in
``quotas/<id>`` and applied again by every ``get`` (after ``btrfs quota
disable``, a restored store or a re-created filesystem it comes back).

Everything is done with ioctls (:mod:`pyrt_storage_btrfs.ioctl`); no
btrfs-progs command is run.
"""
from __future__ import annotations

import errno
import os
import re

from pyrt_core.errors import (
    ConflictError,
    DriverNotSupported,
    DriverPrerequisitesMissing,
    NotFoundError,
    StorageError,
    UsageError,
)
from pyrt_core.api import NaiveDiffDriver

from . import ioctl
from .units import human_size, parse_size

#: no container size limit below this: btrfs reserves metadata per write
#: against the same qgroup, so tiny limits fail every write
MIN_SIZE = 1 << 20
OPTIONS = ("size", "min_space")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _check_id(id: str) -> None:
    if not isinstance(id, str) or not _ID_RE.fullmatch(id):
        raise UsageError(f"invalid layer id {id!r}")


def _existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _fstype_name(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (for messages)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                left, _, right = line.partition(b" - ")
                mp = os.fsdecode(left.split(b" ")[4])
                if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                    best, fstype = mp, os.fsdecode(right.split(b" ")[0])
    except OSError:
        pass
    return fstype


def _kernel_has_btrfs() -> bool:
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1:] == ["btrfs"] for line in f)
    except OSError:
        return True  # cannot tell: let the filesystem check speak


def _size_option(value: str, what: str) -> int:
    try:
        size = parse_size(value)
    except ValueError as e:
        raise UsageError(f"btrfs: {what}: {e}") from None
    return size


class BtrfsDriver(NaiveDiffDriver):
    """Layers as btrfs subvolumes and snapshots, with qgroup size limits."""

    name = "btrfs"

    def __init__(self, home: str, options: dict[str, str] | None = None):
        super().__init__(home, options)
        self.home = home = os.path.abspath(home)
        try:
            self.probe(home)
        except (DriverNotSupported, DriverPrerequisitesMissing):
            try:
                os.rmdir(home)  # made empty for us by the selector: leave no trace
            except OSError:
                pass
            raise
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise UsageError(f"storage driver 'btrfs' does not know the options {', '.join(unknown)} "
                             f"(known: {', '.join(OPTIONS)})")
        self.min_size = MIN_SIZE
        if "min_space" in self.options:
            self.min_size = max(MIN_SIZE, _size_option(self.options["min_space"], "min_space"))
        self.default_size = None
        if self.options.get("size"):
            self.default_size = self._check_size(self.options["size"], "size")
        self._subvols = os.path.join(home, "subvolumes")
        self._quotas = os.path.join(home, "quotas")
        for d in (home, self._subvols, self._quotas):
            os.makedirs(d, mode=0o700, exist_ok=True)

    @staticmethod
    def probe(home: str) -> dict[str, str]:
        """Check that ``home`` (or, when it does not exist yet, the directory
        it would be made in) is on btrfs.  Raises DriverPrerequisitesMissing
        (another filesystem) or DriverNotSupported (no btrfs in the kernel)."""
        where = _existing_ancestor(home)
        try:
            ftype = ioctl.statfs_type(where)
        except OSError as e:
            raise DriverPrerequisitesMissing(f"btrfs: cannot examine {where}: {e.strerror}") from None
        if ftype == ioctl.BTRFS_SUPER_MAGIC:
            return {"fstype": "btrfs"}
        fstype = _fstype_name(where)
        if not _kernel_has_btrfs():
            raise DriverNotSupported(f"btrfs: the kernel does not support btrfs, and {home} is on "
                                     f"{fstype}, not btrfs")
        raise DriverPrerequisitesMissing(
            f"btrfs: {home} is on {fstype}, not btrfs (the btrfs driver needs the store root "
            "on a btrfs filesystem)")

    # -- paths --------------------------------------------------------------------------
    def _path(self, id: str) -> str:
        _check_id(id)
        return os.path.join(self._subvols, id)

    def _quota_file(self, id: str) -> str:
        return os.path.join(self._quotas, id)

    def _check_size(self, text: str, what: str = "size") -> int:
        size = _size_option(text, what)
        if size < self.min_size:
            raise UsageError(f"btrfs: {what} {text} is too small: the minimum is "
                             f"{human_size(self.min_size)}")
        return size

    # -- layers ---------------------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        path = self._path(id)
        if os.path.lexists(path):
            raise ConflictError(f"layer {id} already exists")
        if parent is None:
            try:
                ioctl.subvolume_create(self._subvols, id)
                os.chmod(path, 0o755)  # not subject to the umask
            except OSError as e:
                self._destroy_quietly(path)
                raise StorageError(f"btrfs: creating subvolume for layer {id}: {e.strerror}") from None
            return
        ppath = self._path(parent)
        if not os.path.isdir(ppath):
            raise NotFoundError(f"parent layer {parent} does not exist")
        try:
            ioctl.snapshot_create(ppath, self._subvols, id)
        except OSError as e:
            raise StorageError(f"btrfs: snapshotting layer {parent} for {id}: {e.strerror}") from None

    def create_rw(self, id: str, parent: str | None, options: dict[str, str] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - {"size"})
        if unknown:
            raise UsageError(f"storage driver 'btrfs' does not support the storage options "
                             f"{', '.join(unknown)} (supported: size)")
        size = self.default_size
        if options.get("size"):
            size = self._check_size(options["size"])
        self.create(id, parent)
        if size is None:
            return
        try:
            self._set_quota(id, size)
        except BaseException:
            self.remove(id)
            raise

    def _set_quota(self, id: str, size: int) -> None:
        from pyrt_core.api import atomic_write

        path = self._path(id)
        self._ensure_quota_enabled()
        try:
            sid = ioctl.subvolume_id(path)
            self._limit(path, sid, size)
        except OSError as e:
            raise StorageError(f"btrfs: limiting layer {id} to {human_size(size)}: {e.strerror}") from None
        usage = ioctl.qgroup_usage(path, sid)
        if usage is not None and usage["referenced"] >= size:
            raise UsageError(
                f"btrfs: size {human_size(size)} is too small for this container: its image "
                f"already takes {human_size(usage['referenced'])}, and the limit counts the "
                "image's data too")
        atomic_write(self._quota_file(id), f"{size}\n", 0o600)

    def _ensure_quota_enabled(self) -> None:
        try:
            if ioctl.quota_enabled(self._subvols):
                return
            ioctl.quota_enable(self._subvols)
            # enabling on a filesystem holding data starts a rescan: wait for
            # it so usage (and limits) are right from the first write
            ioctl.quota_rescan_wait(self._subvols)
        except OSError as e:
            raise StorageError(f"btrfs: enabling quota groups on the filesystem of {self.home}: "
                               f"{e.strerror}") from None

    @staticmethod
    def _limit(path: str, sid: int, size: int | None) -> None:
        qg = ioctl.qgroupid(0, sid)
        try:
            ioctl.qgroup_limit(path, qg, size)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            ioctl.qgroup_create(path, qg)  # made before quotas were enabled and not scanned yet
            ioctl.qgroup_limit(path, qg, size)

    def _read_quota(self, id: str) -> int | None:
        try:
            with open(self._quota_file(id)) as f:
                return int(f.read().strip())
        except FileNotFoundError:
            return None
        except ValueError:
            raise StorageError(f"btrfs: the size limit file of layer {id} is corrupt "
                               f"({self._quota_file(id)})") from None

    def _reapply_quota(self, id: str, path: str) -> None:
        size = self._read_quota(id)
        if size is None:
            return
        self._ensure_quota_enabled()
        try:
            self._limit(path, ioctl.subvolume_id(path), size)
        except OSError as e:
            raise StorageError(f"btrfs: re-applying the size limit of layer {id}: {e.strerror}") from None

    def remove(self, id: str) -> None:
        path = self._path(id)
        if not os.path.lexists(path):
            try:
                os.unlink(self._quota_file(id))
            except FileNotFoundError:
                pass
            return
        sid = None
        if os.path.exists(self._quota_file(id)):
            # drop the limit first: older kernels keep a dead subvolume's qgroup
            try:
                sid = ioctl.subvolume_id(path)
                ioctl.qgroup_limit(path, ioctl.qgroupid(0, sid), None)
            except OSError:
                pass
        try:
            st = os.lstat(path)
            if not ioctl.is_subvolume_root(st):
                from pyrt_core.api import remove_tree

                remove_tree(path)  # not ours to destroy as a subvolume: a plain directory
            else:
                nested = ioctl.nested_subvolumes(path)
                # an entry can only be removed from a writable subvolume: a
                # read-only one (btrfs property set ro) is made writable first
                for sub in [path] + nested[::-1]:
                    if ioctl.subvolume_readonly(sub):
                        ioctl.set_subvolume_readonly(sub, False)
                for sub in nested:
                    self._destroy(sub)
                self._destroy(path)
        except OSError as e:
            raise StorageError(f"btrfs: removing layer {id}: {e.strerror}"
                               + (f" ({e.filename})" if e.filename and e.filename != path else "")) from None
        try:
            os.unlink(self._quota_file(id))
        except FileNotFoundError:
            pass
        if sid is not None:
            try:  # the kernel refuses (EBUSY) until the subvolume's extents are freed
                ioctl.qgroup_destroy(self._subvols, ioctl.qgroupid(0, sid))
            except OSError:
                pass

    @staticmethod
    def _destroy(path: str) -> None:
        try:
            ioctl.subvolume_destroy(os.path.dirname(path), os.path.basename(path))
        except OSError as e:
            if e.errno == errno.EPERM and os.geteuid() != 0:
                raise OSError(e.errno, "only root may destroy subvolumes (or mount with "
                              "user_subvol_rm_allowed)", path) from None
            raise

    def _destroy_quietly(self, path: str) -> None:
        try:
            if os.path.lexists(path):
                self._destroy(path)
        except OSError:
            pass

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._path(id))

    def get(self, id: str) -> str:
        path = self._path(id)
        if not os.path.isdir(path):
            raise NotFoundError(f"layer {id} does not exist")
        self._reapply_quota(id, path)
        return path

    def put(self, id: str) -> None:
        pass

    def cleanup(self) -> None:
        pass  # nothing is mounted

    def supports_parallel_apply(self) -> bool:
        return False  # a layer is a snapshot of its parent's content

    # -- information ------------------------------------------------------------------------
    def quota(self, id: str) -> int | None:
        """The size limit of layer ``id`` in bytes, None without one."""
        _check_id(id)
        return self._read_quota(id)

    def status(self) -> list[tuple[str, str]]:
        out = [("Backing Filesystem", "btrfs")]
        try:
            out.append(("Filesystem UUID", ioctl.fsid(self._subvols)))
        except OSError:
            pass
        try:
            enabled = ioctl.quota_enabled(self._subvols)
        except OSError:
            enabled = None
        if enabled is None:
            quotas = "unknown"
        elif enabled:
            quotas = "yes"
            try:
                with open(os.path.join(ioctl.sysfs_dir(self._subvols), "qgroups",
                                       "inconsistent")) as f:
                    if f.read().strip() not in ("", "0"):
                        quotas += " (inconsistent: a rescan is needed)"
            except OSError:
                pass
        else:
            quotas = "no"
        out.append(("Quotas Enabled", quotas))
        if self.default_size is not None:
            out.append(("Default Container Size", human_size(self.default_size)))
        st = os.statvfs(self._subvols)
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        out += [("Space Used", human_size(used)), ("Space Total", human_size(total)),
                ("Space Available", human_size(free))]
        try:
            layers = sum(1 for n in os.listdir(self._subvols) if not n.startswith("."))
        except OSError:
            layers = 0
        out.append(("Layers", str(layers)))
        return out

    def metadata(self, id: str) -> dict[str, str]:
        path = self._path(id)
        if not os.path.isdir(path):
            raise NotFoundError(f"layer {id} does not exist")
        out = {"Path": path}
        try:
            sid = ioctl.subvolume_id(path)
            out["SubvolumeID"] = str(sid)
        except OSError:
            sid = None
        size = self._read_quota(id)
        if size is not None:
            out["Size"] = str(size)
            usage = ioctl.qgroup_usage(path, sid) if sid is not None else None
            if usage is not None:
                out["Referenced"] = str(usage["referenced"])
        return out
