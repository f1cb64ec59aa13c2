"""Mount operations used while building a container's root, one per kind of entry.

All functions work on paths relative to a ``root`` (``"."`` while the working
directory is the container's root, before pivot_root) and resolve destinations
with :func:`.resolve.secure_join`, so nothing is mounted outside the root.  Bind
sources and host device nodes arrive as detached mounts that the parent cloned
in the host's mount namespace (open_tree); they are attached here with
move_mount, which also works inside a user namespace whose root could not walk
the host directories above them.
"""
from __future__ import annotations

import os
import stat

from pyrt_core.runtime.config import (
    MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME,
    MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_NOSYMFOLLOW, MS_SLAVE, MS_SYNCHRONOUS,
    MS_MANDLOCK, MS_MOVE,
)
from pyrt_core.records import TupleRecord

from . import resolve, syscalls

#: the mount tree's propagation before the rootfs is set up, when the config
#: names none (runc's default: host mounts still reach the container, not back)
ROOT_DEFAULT_PROPAGATION = MS_SLAVE | MS_REC

# statvfs f_flag bits -> mount flags, to keep what a bind remount must not clear
_ST_TO_MS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC),
             (16, MS_SYNCHRONOUS), (64, MS_MANDLOCK), (1024, MS_NOATIME),
             (2048, MS_NODIRATIME), (4096, MS_RELATIME), (8192, MS_NOSYMFOLLOW))
_PER_MOUNT = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME \
    | MS_RELATIME | MS_NOSYMFOLLOW


class PreparedMount(TupleRecord):
    """A config mount plus, for binds, a detached clone of its source (open_tree fd)."""

    mount: object  # pyrt_core.runtime.config.Mount
    source_fd: int | None = None
    source_is_dir: bool = True


class CgroupHierarchy(TupleRecord):
    """A host cgroup hierarchy to show under /sys/fs/cgroup."""

    name: str         # directory under the destination ("" = the destination itself)
    fstype: str       # cgroup or cgroup2
    options: str      # mount data: the controllers, e.g. "cpu,cpuacct" or "name=systemd"
    host_path: str    # the container's own cgroup directory on the host


def attach(tree_fd: int, target: str, what: str) -> None:
    """Attach a detached mount (from open_tree OPEN_TREE_CLONE) at target."""
    try:
        syscalls.move_mount(tree_fd, "", syscalls.AT_FDCWD, target, syscalls.MOVE_MOUNT_F_EMPTY_PATH)
    except OSError as e:
        raise OSError(e.errno, f"mount {what}: {os.strerror(e.errno)}") from None


def renew(target: str, recursive: bool) -> None:
    """Replace the mount attached at target by a copy made now.

    Since Linux 6.8 mountinfo lists mounts in creation order, and the parent
    cloned bind sources before any other container mount: without this, they
    would all be listed first, out of the config's order.  A detached mount
    cannot be copied from another mount namespace, so copy it once attached.
    Best effort: if anything is refused, the original stays.
    """
    flags = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC
    if recursive:
        flags |= syscalls.AT_RECURSIVE
    try:
        tree = syscalls.open_tree(syscalls.AT_FDCWD, target, flags)
    except OSError:
        return
    try:
        try:
            syscalls.umount2(target, syscalls.MNT_DETACH)
        except OSError:
            return
        attach(tree, target, what=f"the copy of the mount on {target}")
    finally:
        os.close(tree)


def current_flags(path: str) -> int:
    """The per-mount flags of the mount at path (from statvfs)."""
    f = os.statvfs(path).f_flag
    flags = 0
    for st_bit, ms in _ST_TO_MS:
        if f & st_bit:
            flags |= ms
    return flags & _PER_MOUNT


def remount_bind(target: str, flags: int, what: str, keep_current: bool = False) -> None:
    """Change a bind mount's per-mount flags (MS_REMOUNT|MS_BIND).

    With ``keep_current`` the flags already on the mount are kept (so making it
    read-only does not clear nosuid).  Otherwise the given flags are tried alone
    first; a refusal (flags locked by a user namespace) retries keeping them.
    """
    base = MS_REMOUNT | MS_BIND
    if keep_current:
        syscalls.mount(None, target, None, base | flags | current_flags(target), what=what)
        return
    try:
        syscalls.mount(None, target, None, base | flags, what=what)
    except PermissionError:
        syscalls.mount(None, target, None, base | flags | current_flags(target), what=what)


def _extra_flags(m) -> int:
    return m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)


def bind(root: str, pm: PreparedMount) -> str:
    m = pm.mount
    if pm.source_is_dir:
        target = resolve.make_dirs(root, m.destination)
    else:
        target = resolve.make_file(root, m.destination)
    attach(pm.source_fd, target, what=f"{m.source} on {m.destination}")
    renew(target, bool(m.flags & MS_REC))
    if _extra_flags(m):
        remount_bind(target, _extra_flags(m), what=f"{m.destination} ({','.join(m.options)})")
    return target


def filesystem(root: str, pm: PreparedMount, in_userns: bool) -> str:
    m = pm.mount
    target = resolve.make_dirs(root, m.destination)
    flags = m.flags & ~MS_REMOUNT
    try:
        syscalls.mount(m.source or m.type, target, m.type, flags, m.data,
                       what=f"{m.type} on {m.destination}")
    except PermissionError:
        # A user namespace that does not own the network namespace may not mount
        # sysfs: show the host's /sys instead, read-only like the request (runc).
        if not (in_userns and m.type == "sysfs"):
            raise
        syscalls.mount("/sys", target, None, MS_BIND | MS_REC, what=f"/sys on {m.destination}")
        remount_bind(target, flags, what=m.destination, keep_current=True)
    return target


def cgroup_hierarchies(mountinfo: str = "/proc/self/mountinfo",
                       cgroup_file: str = "/proc/self/cgroup") -> list[CgroupHierarchy]:
    """The host's cgroup hierarchies under /sys/fs/cgroup and this process's place in each.

    Read before unsharing the cgroup namespace (paths are then host paths).
    """
    own: list[tuple[set[str], str, str]] = []
    with open(cgroup_file) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own.append((set(ctrls.split(",")) if ctrls else set(), ctrls, path))
    out = []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, mroot, mpoint = fields[sep + 1], fields[3], _unescape(fields[4])
            if fstype not in ("cgroup", "cgroup2"):
                continue
            if mpoint == "/sys/fs/cgroup":
                name = ""
            elif mpoint.startswith("/sys/fs/cgroup/"):
                name = mpoint[len("/sys/fs/cgroup/"):]
            else:
                continue
            super_opts = set(fields[sep + 3].split(","))
            for ctrl_set, ctrls, path in own:
                if fstype == "cgroup2" and not ctrls or \
                        fstype == "cgroup" and ctrl_set and ctrl_set <= super_opts:
                    break
            else:
                continue
            rel = path if mroot == "/" else (path[len(mroot):] if path.startswith(mroot) else None)
            if rel is None:
                continue
            out.append(CgroupHierarchy(name, fstype, ctrls, os.path.normpath(mpoint + "/" + rel)))
    return out


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def cgroup(root: str, pm: PreparedMount, hierarchies, own_namespace: bool) -> str:
    """Show the container's cgroups at the destination.

    v1 (and hybrid): a tmpfs with one directory per hierarchy; v2: the unified
    hierarchy itself.  In its own cgroup namespace each hierarchy is mounted
    (the kernel roots it at the container's cgroup); otherwise, or if that is
    refused, the container's cgroup directory on the host is bound.
    """
    m = pm.mount
    target = resolve.make_dirs(root, m.destination)
    flags = _extra_flags(m) | MS_NOSUID | MS_NODEV | MS_NOEXEC
    unified_only = len(hierarchies) == 1 and hierarchies[0].name == ""
    if not unified_only:
        syscalls.mount("tmpfs", target, "tmpfs", (flags & ~MS_RDONLY), "mode=755",
                       what=f"tmpfs on {m.destination}")
    for h in hierarchies:
        if unified_only:
            sub = target
        elif h.name == "":
            continue
        else:
            sub = resolve.make_dirs(root, os.path.join(m.destination, h.name))
        where = os.path.join(m.destination, h.name)
        if own_namespace:
            try:
                syscalls.mount("cgroup", sub, h.fstype, flags, h.options or None,
                               what=f"{h.fstype} on {where}")
                continue
            except OSError:
                pass
        syscalls.mount(h.host_path, sub, None, MS_BIND | MS_REC, what=f"{h.host_path} on {where}")
        remount_bind(sub, flags, what=where, keep_current=True)
    if not unified_only and flags & MS_RDONLY:
        remount_bind(target, flags, what=m.destination, keep_current=True)
    return target


def propagation(target: str, flags: int, what: str) -> None:
    if flags:
        syscalls.mount(None, target, None, flags, what=f"{what} (propagation {flags:#x})")


def mount_entry(root: str, pm: PreparedMount, *, in_userns: bool, hierarchies=(),
                own_cgroupns: bool = False) -> None:
    """Mount one config entry inside root."""
    m = pm.mount
    if m.is_bind:
        target = bind(root, pm)
    elif m.type == "cgroup":
        target = cgroup(root, pm, hierarchies, own_cgroupns)
    else:
        target = filesystem(root, pm, in_userns)
    propagation(target, m.propagation, m.destination)


# -- devices ------------------------------------------------------------------

_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_device(root: str, dev, host_fd: int | None = None) -> None:
    """Create a device node at dev.path (mknod), or bind the host's node (host_fd)."""
    if host_fd is not None:
        target = resolve.make_file(root, dev.path)
        attach(host_fd, target, what=f"host {dev.path} on {dev.path}")
        return
    resolve.make_dirs(root, os.path.dirname(dev.path) or "/")
    target = resolve.secure_join(root, dev.path)
    kind = _DEVICE_TYPES[dev.type]
    number = os.makedev(dev.major, dev.minor) if kind != stat.S_IFIFO else 0
    try:
        os.mknod(target, kind | (dev.file_mode & 0o7777), number)
    except FileExistsError:
        os.unlink(target)
        os.mknod(target, kind | (dev.file_mode & 0o7777), number)
    os.chown(target, dev.uid, dev.gid, follow_symlinks=False)
    os.chmod(target, dev.file_mode & 0o7777)  # mknod's mode was cut by the umask


DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)


def dev_symlinks(root: str, ptmx: bool, core: bool) -> None:
    links = list(DEV_SYMLINKS)
    if ptmx:
        links.append(("pts/ptmx", "/dev/ptmx"))
    if core:
        links.append(("/proc/kcore", "/dev/core"))
    for target, link in links:
        try:
            os.symlink(target, resolve.secure_join(root, link))
        except FileExistsError:
            pass


# -- root ---------------------------------------------------------------------

def make_private(path: str = "/") -> None:
    syscalls.mount(None, path, None, MS_REC | MS_PRIVATE, what=f"{path} (rprivate)")


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list[tuple[str, str]]:
    """[(mount point, optional fields)] in mountinfo order."""
    out = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append((_unescape(fields[4]), " ".join(fields[6:sep])))
    return out


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")


def make_parent_private(root: str = ".") -> None:
    """Make the mount holding ``root`` private if it is shared (pivot_root and
    MS_MOVE refuse a shared parent; a shared rootfs propagation asks for one)."""
    path = os.path.realpath(root)
    best = None
    for mpoint, optional in read_mountinfo():
        if _under(path, mpoint) and (best is None or len(mpoint) >= len(best[0])):
            best = (mpoint, optional)
    if best is not None and "shared:" in best[1]:
        syscalls.mount(None, best[0], None, MS_PRIVATE, what=f"{best[0]} (private)")


def bind_cwd_onto_itself() -> None:
    """Bind the working directory (the rootfs) onto itself and step onto that mount.

    pivot_root needs the new root to be a mount point.  open_tree+move_mount give
    a handle on the new mount, so the working directory can enter it without
    walking the host path again (which a user namespace's root may not do).
    """
    tree = syscalls.open_tree(syscalls.AT_FDCWD, ".", syscalls.OPEN_TREE_CLONE
                              | syscalls.AT_RECURSIVE | syscalls.OPEN_TREE_CLOEXEC)
    try:
        syscalls.move_mount(tree, "", syscalls.AT_FDCWD, ".", syscalls.MOVE_MOUNT_F_EMPTY_PATH)
        os.fchdir(tree)
    finally:
        os.close(tree)


def pivot_to_cwd() -> None:
    """Make the working directory the root and detach the old root (no put_old dir)."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.pivot_root(".", ".")
        # The old root is now stacked on the new one; from its top, detach it.
        os.fchdir(old_root)
        syscalls.mount(None, ".", None, MS_SLAVE | MS_REC, what="old root (rslave)")
        syscalls.umount2(".", syscalls.MNT_DETACH)
    finally:
        os.close(old_root)
    os.chdir("/")


def move_cwd_to_root() -> None:
    """The no-pivot way in (runc's --no-pivot, for roots pivot_root refuses, such
    as a ramfs): detach the host's other mounts, MS_MOVE the root onto /, chroot."""
    here = os.getcwd()
    for mpoint, _ in reversed(read_mountinfo()):
        if mpoint == "/" or _under(mpoint, here) or _under(here, mpoint):
            continue
        try:
            syscalls.umount2(mpoint, syscalls.MNT_DETACH)
        except OSError:
            pass  # locked (user namespace) or already gone with its parent
    syscalls.mount(".", "/", None, MS_MOVE, what="the root filesystem onto / (MS_MOVE)")
    os.chroot(".")
    os.chdir("/")


# -- after pivot_root (container paths) -------------------------------------------

def make_readonly(path: str) -> bool:
    """Bind path onto itself read-only; False when it does not exist."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    syscalls.mount(path, path, None, MS_BIND | MS_REC, what=f"{path} on itself")
    remount_bind(path, MS_RDONLY, what=f"{path} read-only", keep_current=True)
    return True


def mask(path: str) -> bool:
    """Hide path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        syscalls.mount("tmpfs", path, "tmpfs", MS_RDONLY, None, what=f"masking tmpfs on {path}")
    else:
        syscalls.mount("/dev/null", path, None, MS_BIND, what=f"/dev/null on {path}")
    return True


def root_readonly() -> None:
    remount_bind("/", MS_RDONLY, what="/ read-only", keep_current=True)
