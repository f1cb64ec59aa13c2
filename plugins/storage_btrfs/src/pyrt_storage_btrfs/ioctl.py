"""The btrfs ioctls the driver needs, issued with :func:`fcntl.ioctl`.

Structure layouts follow the kernel's ``include/uapi/linux/btrfs.h``
(checked against the installed header: every argument block below has the
size the kernel's ``_IOC`` number encodes):

=====================================  ======  ==========================================
structure                              bytes   layout used here
=====================================  ======  ==========================================
``btrfs_ioctl_vol_args``               4096    ``__s64 fd; char name[4088]``
``btrfs_ioctl_vol_args_v2``            4096    ``__s64 fd; __u64 transid, flags;
                                               __u64 unused[4]; char name[4040]`` (name at 56)
``btrfs_ioctl_ino_lookup_args``        4096    ``__u64 treeid, objectid; char name[4080]``
``btrfs_ioctl_quota_ctl_args``         16      ``__u64 cmd, status``
``btrfs_ioctl_qgroup_create_args``     16      ``__u64 create, qgroupid``
``btrfs_ioctl_qgroup_limit_args``      48      ``__u64 qgroupid; btrfs_qgroup_limit lim``
                                               (``flags, max_rfer, max_excl, rsv_rfer, rsv_excl``)
``btrfs_ioctl_quota_rescan_args``      64      ``__u64 flags, progress, reserved[6]``
``btrfs_ioctl_fs_info_args``           1024    ``__u64 max_id, num_devices; __u8 fsid[16]; ...``
``btrfs_ioctl_search_args``            4096    ``btrfs_ioctl_search_key key`` (104: ``tree_id,
                                               min/max_objectid, min/max_offset,
                                               min/max_transid; __u32 min/max_type,
                                               nr_items``, padding) + ``char buf[3992]``
=====================================  ======  ==========================================

Only :mod:`os`, :mod:`fcntl` and :mod:`struct` are imported at the top;
ctypes (for ``statfs``) loads on first use.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct

# -- ioctl numbers ---------------------------------------------------------------
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
BTRFS_IOCTL_MAGIC = 0x94


def _ioc(direction: int, nr: int, size: int) -> int:
    """Linux's generic ``_IOC(dir, type, nr, size)`` for the btrfs magic."""
    return (direction << 30) | (size << 16) | (BTRFS_IOCTL_MAGIC << 8) | nr


VOL_ARGS_SIZE = 4096
VOL_ARGS_V2_SIZE = 4096
VOL_ARGS_V2_NAME_OFFSET = 56
PATH_NAME_MAX = 4087  # BTRFS_PATH_NAME_MAX: name[] of btrfs_ioctl_vol_args holds 4087 + NUL
SUBVOL_NAME_MAX = 4039  # BTRFS_SUBVOL_NAME_MAX: name[] of the v2 args holds 4039 + NUL
INO_LOOKUP_SIZE = 4096
TREE_SEARCH_SIZE = 4096  # btrfs_ioctl_search_args: search_key (104) + buf[3992]
SEARCH_KEY_SIZE = 104
SEARCH_HEADER_SIZE = 32  # btrfs_ioctl_search_header: transid, objectid, offset, type, len
QUOTA_CTL_SIZE = 16
QGROUP_CREATE_SIZE = 16
QGROUP_LIMIT_SIZE = 48
QUOTA_RESCAN_SIZE = 64
FS_INFO_SIZE = 1024

IOC_SUBVOL_CREATE = _ioc(_IOC_WRITE, 14, VOL_ARGS_SIZE)            # 0x5000940e
IOC_SNAP_DESTROY = _ioc(_IOC_WRITE, 15, VOL_ARGS_SIZE)             # 0x5000940f
IOC_TREE_SEARCH = _ioc(_IOC_READ | _IOC_WRITE, 17, TREE_SEARCH_SIZE)  # 0xd0009411
IOC_INO_LOOKUP = _ioc(_IOC_READ | _IOC_WRITE, 18, INO_LOOKUP_SIZE)  # 0xd0009412
IOC_SNAP_CREATE_V2 = _ioc(_IOC_WRITE, 23, VOL_ARGS_V2_SIZE)        # 0x50009417
IOC_SUBVOL_GETFLAGS = _ioc(_IOC_READ, 25, 8)                       # 0x80089419 (__u64)
IOC_SUBVOL_SETFLAGS = _ioc(_IOC_WRITE, 26, 8)                      # 0x4008941a (__u64)
IOC_FS_INFO = _ioc(_IOC_READ, 31, FS_INFO_SIZE)                    # 0x8400941f
IOC_QUOTA_CTL = _ioc(_IOC_READ | _IOC_WRITE, 40, QUOTA_CTL_SIZE)    # 0xc0109428
IOC_QGROUP_CREATE = _ioc(_IOC_WRITE, 42, QGROUP_CREATE_SIZE)       # 0x4010942a
IOC_QGROUP_LIMIT = _ioc(_IOC_READ, 43, QGROUP_LIMIT_SIZE)          # 0x8030942b (_IOR in the uapi)
IOC_QUOTA_RESCAN_STATUS = _ioc(_IOC_READ, 45, QUOTA_RESCAN_SIZE)   # 0x8040942d
IOC_QUOTA_RESCAN_WAIT = _ioc(_IOC_NONE, 46, 0)                     # 0x942e

BTRFS_SUPER_MAGIC = 0x9123683E
#: the inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID)
SUBVOL_ROOT_INO = 256
BTRFS_FS_TREE_OBJECTID = 5
BTRFS_ROOT_TREE_OBJECTID = 1
#: root tree item: key (parent subvolume id, ROOT_REF, child subvolume id) ->
#: btrfs_root_ref {__le64 dirid; __le64 sequence; __le16 name_len; name}
BTRFS_ROOT_REF_KEY = 156

SUBVOL_RDONLY = 1 << 1
QUOTA_CTL_ENABLE = 1
QUOTA_CTL_DISABLE = 2
QGROUP_LIMIT_MAX_RFER = 1 << 0
#: "no limit" for a qgroup limit field (the kernel's CLEAR_VALUE)
QGROUP_NO_LIMIT = (1 << 64) - 1


# -- helpers -----------------------------------------------------------------------
def _open_dir(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _ioctl(fd: int, request: int, buf: bytearray | int, path: str) -> None:
    """``ioctl(fd, request, buf)``; errors carry ``path``."""
    try:
        fcntl.ioctl(fd, request, buf, True) if isinstance(buf, bytearray) else fcntl.ioctl(fd, request, buf)
    except OSError as e:
        raise OSError(e.errno, os.strerror(e.errno), path) from None


def _name_bytes(name: str, limit: int) -> bytes:
    raw = os.fsencode(name)
    if not raw or b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        raise OSError(errno.EINVAL, "invalid subvolume name", name)
    if len(raw) > min(limit, 255):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), name)
    return raw


def _vol_args(name: str, fd: int = 0) -> bytearray:
    buf = bytearray(VOL_ARGS_SIZE)
    struct.pack_into("=q", buf, 0, fd)
    raw = _name_bytes(name, PATH_NAME_MAX)
    buf[8:8 + len(raw)] = raw
    return buf


# -- subvolumes ----------------------------------------------------------------------
def subvolume_create(parent: str, name: str) -> None:
    """Create an empty subvolume ``parent/name`` (BTRFS_IOC_SUBVOL_CREATE)."""
    buf = _vol_args(name)
    fd = _open_dir(parent)
    try:
        _ioctl(fd, IOC_SUBVOL_CREATE, buf, os.path.join(parent, name))
    finally:
        os.close(fd)


def snapshot_create(source: str, parent: str, name: str, readonly: bool = False) -> None:
    """Snapshot the subvolume ``source`` as ``parent/name`` (BTRFS_IOC_SNAP_CREATE_V2)."""
    raw = _name_bytes(name, SUBVOL_NAME_MAX)
    src = _open_dir(source)
    try:
        buf = bytearray(VOL_ARGS_V2_SIZE)
        struct.pack_into("=qQQ", buf, 0, src, 0, SUBVOL_RDONLY if readonly else 0)
        buf[VOL_ARGS_V2_NAME_OFFSET:VOL_ARGS_V2_NAME_OFFSET + len(raw)] = raw
        fd = _open_dir(parent)
        try:
            _ioctl(fd, IOC_SNAP_CREATE_V2, buf, os.path.join(parent, name))
        finally:
            os.close(fd)
    finally:
        os.close(src)


def subvolume_destroy(parent: str, name: str) -> None:
    """Destroy the subvolume ``parent/name`` (BTRFS_IOC_SNAP_DESTROY).  Its
    directory entry goes at once; the kernel frees its extents in the
    background.  Fails with ENOTEMPTY while it holds nested subvolumes."""
    buf = _vol_args(name)
    fd = _open_dir(parent)
    try:
        _ioctl(fd, IOC_SNAP_DESTROY, buf, os.path.join(parent, name))
    finally:
        os.close(fd)


def subvolume_readonly(path: str) -> bool:
    """Whether the subvolume rooted at ``path`` is read-only (BTRFS_IOC_SUBVOL_GETFLAGS)."""
    buf = bytearray(8)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_SUBVOL_GETFLAGS, buf, path)
    finally:
        os.close(fd)
    return bool(struct.unpack("=Q", buf)[0] & SUBVOL_RDONLY)


def set_subvolume_readonly(path: str, readonly: bool) -> None:
    """Make the subvolume rooted at ``path`` read-only or writable (BTRFS_IOC_SUBVOL_SETFLAGS)."""
    buf = bytearray(8)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_SUBVOL_GETFLAGS, buf, path)
        flags = struct.unpack("=Q", buf)[0]
        flags = (flags | SUBVOL_RDONLY) if readonly else (flags & ~SUBVOL_RDONLY)
        _ioctl(fd, IOC_SUBVOL_SETFLAGS, bytearray(struct.pack("=Q", flags)), path)
    finally:
        os.close(fd)


def is_subvolume_root(st: os.stat_result) -> bool:
    """Whether ``st`` (of a path on btrfs) is a subvolume's root directory."""
    return st.st_ino == SUBVOL_ROOT_INO and (st.st_mode & 0o170000) == 0o040000


def subvolume_id(path: str) -> int:
    """The id of the subvolume holding ``path`` (BTRFS_IOC_INO_LOOKUP, treeid 0)."""
    buf = bytearray(INO_LOOKUP_SIZE)
    struct.pack_into("=QQ", buf, 0, 0, SUBVOL_ROOT_INO)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_INO_LOOKUP, buf, path)
    finally:
        os.close(fd)
    return struct.unpack_from("=Q", buf, 0)[0]


def _mounts_below(path: str) -> set[str]:
    prefix = path.rstrip("/") + "/"
    out = set()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            field = line.split(b" ", 5)[4]
            if b"\\" in field:
                import re

                field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
            mp = os.fsdecode(field)
            if mp.startswith(prefix):
                out.add(mp)
    return out


def _walk_subvolumes(path: str) -> list[str]:
    """Subvolume roots below ``path`` found by walking the tree (any user)."""
    skip = _mounts_below(path)
    found: list[str] = []
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for e in it:
                try:
                    if not e.is_dir(follow_symlinks=False) or e.path in skip:
                        continue
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if is_subvolume_root(st):
                    found.append(e.path)
                stack.append(e.path)
    return found


def child_subvolumes(path: str) -> list[tuple[int, str]]:
    """``(id, path)`` of the subvolumes whose parent is the subvolume rooted at
    ``path``, from the root tree's ROOT_REF items (BTRFS_IOC_TREE_SEARCH) and
    BTRFS_IOC_INO_LOOKUP for the directory each one sits in.  Needs CAP_SYS_ADMIN."""
    parent_id = subvolume_id(path)
    refs: list[tuple[int, int, bytes]] = []  # (child id, dir inode, name)
    min_offset = 0
    fd = _open_dir(path)
    try:
        while True:
            buf = bytearray(TREE_SEARCH_SIZE)
            struct.pack_into("=QQQQQQQIII", buf, 0, BTRFS_ROOT_TREE_OBJECTID,
                             parent_id, parent_id, min_offset, (1 << 64) - 1, 0, (1 << 64) - 1,
                             BTRFS_ROOT_REF_KEY, BTRFS_ROOT_REF_KEY, 4096)
            _ioctl(fd, IOC_TREE_SEARCH, buf, path)
            nr = struct.unpack_from("=I", buf, 64)[0]
            if nr == 0:
                break
            off = SEARCH_KEY_SIZE
            last = None
            for _ in range(nr):
                _transid, objectid, offset, type_, length = struct.unpack_from("=QQQII", buf, off)
                off += SEARCH_HEADER_SIZE
                if type_ == BTRFS_ROOT_REF_KEY and objectid == parent_id:
                    dirid, _seq, name_len = struct.unpack_from("=QQH", buf, off)
                    name = bytes(buf[off + 18:off + 18 + name_len])
                    refs.append((offset, dirid, name))
                off += length
                last = offset
            if last is None or last >= (1 << 64) - 1:
                break
            min_offset = last + 1
    finally:
        os.close(fd)
    out = []
    for child, dirid, name in refs:
        out.append((child, os.path.join(path, _inode_path(path, parent_id, dirid), os.fsdecode(name))))
    return out


def _inode_path(path: str, treeid: int, ino: int) -> str:
    """The path of directory inode ``ino`` relative to the root of subvolume
    ``treeid`` ("" for the root itself), by BTRFS_IOC_INO_LOOKUP."""
    if ino == SUBVOL_ROOT_INO:
        return ""
    buf = bytearray(INO_LOOKUP_SIZE)
    struct.pack_into("=QQ", buf, 0, treeid, ino)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_INO_LOOKUP, buf, path)
    finally:
        os.close(fd)
    return os.fsdecode(bytes(buf[16:]).split(b"\0", 1)[0])


def nested_subvolumes(path: str) -> list[str]:
    """Subvolume roots strictly below the subvolume root ``path``, deepest
    first so they can be destroyed in that order.  Uses the root tree
    (``child_subvolumes``); without CAP_SYS_ADMIN it walks the directory tree
    looking for directories with inode 256 instead (never entering mounts)."""
    try:
        found: list[str] = []
        todo = [path]
        while todo:
            for _id, child in child_subvolumes(todo.pop()):
                found.append(child)
                todo.append(child)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EACCES):
            raise
        found = _walk_subvolumes(path)
    found.sort(key=lambda p: (-p.count("/"), p))
    return found


# -- quotas --------------------------------------------------------------------------
def quota_ctl(path: str, cmd: int) -> None:
    buf = bytearray(QUOTA_CTL_SIZE)
    struct.pack_into("=QQ", buf, 0, cmd, 0)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_QUOTA_CTL, buf, path)
    finally:
        os.close(fd)


def quota_enable(path: str) -> None:
    """Turn on quota groups for the filesystem holding ``path`` (a no-op when on)."""
    quota_ctl(path, QUOTA_CTL_ENABLE)


def quota_disable(path: str) -> None:
    quota_ctl(path, QUOTA_CTL_DISABLE)


def quota_rescan_wait(path: str) -> None:
    """Wait until a running quota rescan has finished (none running: returns at once)."""
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_QUOTA_RESCAN_WAIT, 0, path)
    finally:
        os.close(fd)


def quota_rescan_running(path: str) -> bool:
    buf = bytearray(QUOTA_RESCAN_SIZE)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_QUOTA_RESCAN_STATUS, buf, path)
    finally:
        os.close(fd)
    return struct.unpack_from("=Q", buf, 0)[0] != 0


def qgroupid(level: int, id: int) -> int:
    """A qgroup id ``level/id`` as the kernel encodes it (level in the top 16 bits)."""
    return (level << 48) | id


def qgroup_create(path: str, qgid: int) -> None:
    buf = bytearray(QGROUP_CREATE_SIZE)
    struct.pack_into("=QQ", buf, 0, 1, qgid)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_QGROUP_CREATE, buf, path)
    finally:
        os.close(fd)


def qgroup_destroy(path: str, qgid: int) -> None:
    buf = bytearray(QGROUP_CREATE_SIZE)
    struct.pack_into("=QQ", buf, 0, 0, qgid)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_QGROUP_CREATE, buf, path)
    finally:
        os.close(fd)


def qgroup_limit(path: str, qgid: int, max_rfer: int | None) -> None:
    """Limit the referenced bytes of qgroup ``qgid`` (None removes the limit)."""
    buf = bytearray(QGROUP_LIMIT_SIZE)
    value = QGROUP_NO_LIMIT if max_rfer is None else int(max_rfer)
    struct.pack_into("=QQQQQQ", buf, 0, qgid, QGROUP_LIMIT_MAX_RFER, value, 0, 0, 0)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_QGROUP_LIMIT, buf, path)
    finally:
        os.close(fd)


# -- the filesystem ------------------------------------------------------------------
def fsid(path: str) -> str:
    """The filesystem's UUID (BTRFS_IOC_FS_INFO), as 8-4-4-4-12 hex."""
    buf = bytearray(FS_INFO_SIZE)
    fd = _open_dir(path)
    try:
        _ioctl(fd, IOC_FS_INFO, buf, path)
    finally:
        os.close(fd)
    h = bytes(buf[16:32]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sysfs_dir(path: str) -> str:
    return os.path.join("/sys/fs/btrfs", fsid(path))


def quota_enabled(path: str) -> bool | None:
    """Whether quota groups are on for the filesystem holding ``path``
    (the kernel lists them under /sys/fs/btrfs/<fsid>/qgroups only then);
    None when sysfs does not tell."""
    d = sysfs_dir(path)
    if not os.path.isdir(d):
        return None
    return os.path.isdir(os.path.join(d, "qgroups"))


def qgroup_usage(path: str, subvolid: int) -> dict[str, int] | None:
    """``{"referenced", "exclusive", "max_referenced"}`` of qgroup 0/<subvolid>
    from sysfs (max_referenced 0 = no limit); None when quotas are off."""
    d = os.path.join(sysfs_dir(path), "qgroups", f"0_{subvolid}")
    out = {}
    for key in ("referenced", "exclusive", "max_referenced"):
        try:
            with open(os.path.join(d, key)) as f:
                out[key] = int(f.read().strip())
        except (OSError, ValueError):
            return None
    return out


def statfs_type(path: str) -> int:
    """``f_type`` of statfs(2) on ``path`` (the filesystem's magic number)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    # struct statfs starts with __fsword_t f_type (a long on 64-bit Linux,
    # an int on 32-bit); 256 bytes hold the whole structure on every ABI.
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    size = ctypes.sizeof(ctypes.c_long)
    return int.from_bytes(buf.raw[:size], "little" if struct.pack("=H", 1)[0] else "big") & 0xFFFFFFFF
