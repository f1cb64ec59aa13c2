"""Mount operations used while building a container's root, one per kind of entry.

Every destination is reached through a handle, never a path string: the
functions take ``root_fd`` (an O_PATH fd of the container's root, before
pivot_root) and resolve destinations with :func:`.resolve.open_in_root`,
:func:`.resolve.mkdir_all` and :func:`.resolve.make_file`, so nothing is mounted
outside the root even if another container swaps a directory of a shared volume
for a symlink meanwhile (runc's CVE-2021-30465).  Bind sources and host device
nodes arrive as detached mounts that the parent cloned in the host's mount
namespace (open_tree) and already gave their attributes (mount_setattr; ``ro``
of a bind is recursive there when asked, docker's ``rro``); they are attached
here with move_mount to the destination's fd.  Other filesystems are mounted on
``/proc/self/fd/N`` of the destination's fd.
"""
from __future__ import annotations

import os
import stat

from pyrt_core.api import (
    MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME,
    MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_NOSYMFOLLOW, MS_SLAVE, MS_SYNCHRONOUS,
    MS_MANDLOCK, MS_MOVE, MS_STRICTATIME,
)
from pyrt_core.api import TupleRecord

from . import resolve, syscalls

#: the mount tree's propagation before the rootfs is set up, when the config
#: names none (runc's default: host mounts still reach the container, not back)
ROOT_DEFAULT_PROPAGATION = MS_SLAVE | MS_REC

# statvfs f_flag bits -> mount flags, to keep what a bind remount must not clear
_ST_TO_MS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC),
             (16, MS_SYNCHRONOUS), (64, MS_MANDLOCK), (1024, MS_NOATIME),
             (2048, MS_NODIRATIME), (4096, MS_RELATIME), (8192, MS_NOSYMFOLLOW))
_PER_MOUNT = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_STRICTATIME \
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


def attach(tree_fd: int, target_fd: int, what: str) -> None:
    """Attach a detached mount (from open_tree OPEN_TREE_CLONE) on what target_fd names."""
    try:
        syscalls.move_mount(tree_fd, "", target_fd, "",
                            syscalls.MOVE_MOUNT_F_EMPTY_PATH | syscalls.MOVE_MOUNT_T_EMPTY_PATH)
    except OSError as e:
        raise OSError(e.errno, f"mount {what}: {os.strerror(e.errno)}") from None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def renew(root_fd: int, target_fd: int, destination: str, source: os.stat_result,
          recursive: bool) -> None:
    """Replace the mount just attached at ``destination`` by a copy made now.

    Since Linux 6.8 mountinfo lists mounts in creation order, and the parent
    cloned bind sources before any other container mount: without this, they
    would all be listed first, out of the config's order.  A detached mount
    cannot be copied from another mount namespace, so copy it once attached.
    The mount is found again inside the root and must still show the source's
    root (``source``): if it does not (the path was swapped), nothing is done.
    Best effort: if anything is refused, the original stays.
    """
    flags = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC | syscalls.AT_EMPTY_PATH
    if recursive:
        flags |= syscalls.AT_RECURSIVE
    try:
        top = resolve.open_in_root(root_fd, destination)
    except OSError:
        return
    try:
        if not _same_file(os.fstat(top), source):
            return
        try:
            tree = syscalls.open_tree(top, "", flags)
        except OSError:
            return
        try:
            try:
                syscalls.umount2(resolve.proc_fd(top), syscalls.MNT_DETACH)
            except OSError:
                return
            attach(tree, target_fd, what=f"the copy of the mount on {destination}")
        finally:
            os.close(tree)
    finally:
        os.close(top)


# mount(2) per-mount flags -> mount_setattr(2) attributes
_MS_TO_ATTR = ((MS_RDONLY, syscalls.MOUNT_ATTR_RDONLY), (MS_NOSUID, syscalls.MOUNT_ATTR_NOSUID),
               (MS_NODEV, syscalls.MOUNT_ATTR_NODEV), (MS_NOEXEC, syscalls.MOUNT_ATTR_NOEXEC),
               (MS_NODIRATIME, syscalls.MOUNT_ATTR_NODIRATIME),
               (MS_NOSYMFOLLOW, syscalls.MOUNT_ATTR_NOSYMFOLLOW))


def attrs_of_flags(flags: int) -> tuple[int, int]:
    """(attributes to set, to clear) for the per-mount ``MS_*`` flags asked for."""
    attr_set = 0
    for ms, attr in _MS_TO_ATTR:
        if flags & ms:
            attr_set |= attr
    attr_clr = 0
    if flags & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME):
        attr_clr = syscalls.MOUNT_ATTR__ATIME
        if flags & MS_NOATIME:
            attr_set |= syscalls.MOUNT_ATTR_NOATIME
        elif flags & MS_STRICTATIME:
            attr_set |= syscalls.MOUNT_ATTR_STRICTATIME
    return attr_set, attr_clr


def set_attrs(tree_fd: int, flags: int, what: str, rec_set: int = 0, rec_clr: int = 0) -> None:
    """Give a mount (by fd: a detached tree, or a mount's root) the per-mount ``flags``
    (its top mount) and the recursive attributes ``rec_set``/``rec_clr`` (every mount
    below it too), as a bind remount would, but without a path."""
    if rec_set or rec_clr:
        syscalls.mount_setattr(tree_fd, "", syscalls.AT_EMPTY_PATH | syscalls.AT_RECURSIVE,
                               rec_set, rec_clr, what=f"{what} (recursive)")
    attr_set, attr_clr = attrs_of_flags(flags)
    if attr_set or attr_clr:
        syscalls.mount_setattr(tree_fd, "", syscalls.AT_EMPTY_PATH, attr_set, attr_clr,
                               what=what)


def clone_tree(path: str, recursive: bool) -> int:
    """A detached copy of the mount at ``path`` (open_tree OPEN_TREE_CLONE)."""
    flags = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC
    if recursive:
        flags |= syscalls.AT_RECURSIVE
    return syscalls.open_tree(syscalls.AT_FDCWD, path, flags)


def bind_host_path(path: str, target_fd: int, flags: int, what: str) -> None:
    """Bind a host path (recursively) on target_fd with the per-mount ``flags``, which
    the copy gets before it is attached (the container never sees it without them)."""
    tree = clone_tree(path, recursive=True)
    try:
        set_attrs(tree, flags, what)
        attach(tree, target_fd, what)
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


def bind_flags(m) -> int:
    """The per-mount flags a bind mount asks for (ro, nosuid, ...; not bind/rec)."""
    return _extra_flags(m) & _PER_MOUNT


def bind(root_fd: int, pm: PreparedMount) -> int:
    """Attach a bind mount's detached source (attributes set by the parent) at its
    destination; returns an O_PATH fd of the destination (the caller closes it)."""
    m = pm.mount
    if pm.source_is_dir:
        target = resolve.mkdir_all(root_fd, m.destination)
    else:
        target = resolve.make_file(root_fd, m.destination)
    try:
        source = os.fstat(pm.source_fd)
        attach(pm.source_fd, target, what=f"{m.source} on {m.destination}")
        renew(root_fd, target, m.destination, source, bool(m.flags & MS_REC))
    except BaseException:
        os.close(target)
        raise
    return target


def filesystem(root_fd: int, pm: PreparedMount, in_userns: bool) -> int:
    m = pm.mount
    target = resolve.mkdir_all(root_fd, m.destination)
    try:
        flags = m.flags & ~MS_REMOUNT
        try:
            syscalls.mount(m.source or m.type, resolve.proc_fd(target), m.type, flags, m.data,
                           what=f"{m.type} on {m.destination}")
        except PermissionError:
            # A user namespace that does not own the network namespace may not mount
            # sysfs: show the host's /sys instead, read-only like the request (runc).
            if not (in_userns and m.type == "sysfs"):
                raise
            bind_host_path("/sys", target, flags, what=f"/sys on {m.destination}")
    except BaseException:
        os.close(target)
        raise
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


def cgroup(root_fd: int, pm: PreparedMount, hierarchies, own_namespace: bool) -> int:
    """Show the container's cgroups at the destination.

    v1 (and hybrid): a tmpfs with one directory per hierarchy; v2: the unified
    hierarchy itself.  In its own cgroup namespace each hierarchy is mounted
    (the kernel roots it at the container's cgroup); otherwise, or if that is
    refused, the container's cgroup directory on the host is bound.
    """
    m = pm.mount
    target = resolve.mkdir_all(root_fd, m.destination)
    flags = _extra_flags(m) | MS_NOSUID | MS_NODEV | MS_NOEXEC
    unified_only = len(hierarchies) == 1 and hierarchies[0].name == ""
    try:
        if not unified_only:
            syscalls.mount("tmpfs", resolve.proc_fd(target), "tmpfs", (flags & ~MS_RDONLY),
                           "mode=755", what=f"tmpfs on {m.destination}")
        for h in hierarchies:
            if unified_only:
                sub = os.dup(target)
            elif h.name == "":
                continue
            else:
                sub = resolve.mkdir_all(root_fd, os.path.join(m.destination, h.name))
            where = os.path.join(m.destination, h.name)
            try:
                if own_namespace:
                    try:
                        syscalls.mount("cgroup", resolve.proc_fd(sub), h.fstype, flags,
                                       h.options or None, what=f"{h.fstype} on {where}")
                        continue
                    except OSError:
                        pass
                bind_host_path(h.host_path, sub, flags, what=f"{h.host_path} on {where}")
            finally:
                os.close(sub)
        if not unified_only and flags & MS_RDONLY:
            top = resolve.open_in_root(root_fd, m.destination)  # the tmpfs, mounted above
            try:
                set_attrs(top, MS_RDONLY, what=f"{m.destination} read-only")
            finally:
                os.close(top)
    except BaseException:
        os.close(target)
        raise
    return target


def tree_propagation(path: str, flags: int) -> None:
    """Set the propagation of the mount tree at ``path`` (``/``: this namespace's)."""
    if flags:
        syscalls.mount(None, path, None, flags, what=f"{path} (propagation {flags:#x})")


def propagation(root_fd: int, destination: str, flags: int) -> None:
    """Set the propagation of the mount now at ``destination`` (found inside the root)."""
    if flags:
        top = resolve.open_in_root(root_fd, destination)
        try:
            syscalls.mount(None, resolve.proc_fd(top), None, flags,
                           what=f"{destination} (propagation {flags:#x})")
        finally:
            os.close(top)


def mount_entry(root_fd: int, pm: PreparedMount, *, in_userns: bool, hierarchies=(),
                own_cgroupns: bool = False) -> None:
    """Mount one config entry inside the root."""
    m = pm.mount
    if m.is_bind:
        target = bind(root_fd, pm)
    elif m.type == "cgroup":
        target = cgroup(root_fd, pm, hierarchies, own_cgroupns)
    else:
        target = filesystem(root_fd, pm, in_userns)
    os.close(target)
    propagation(root_fd, m.destination, m.propagation)


# -- devices ------------------------------------------------------------------

_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_device(root_fd: int, dev, host_fd: int | None = None) -> None:
    """Create a device node at dev.path (mknod), or bind the host's node (host_fd)."""
    if host_fd is not None:
        target = resolve.make_file(root_fd, dev.path)
        try:
            attach(host_fd, target, what=f"host {dev.path} on {dev.path}")
        finally:
            os.close(target)
        return
    parent, name = os.path.split(os.path.normpath("/" + dev.path))
    dir_fd = resolve.mkdir_all(root_fd, parent)
    try:
        kind = _DEVICE_TYPES[dev.type]
        number = os.makedev(dev.major, dev.minor) if kind != stat.S_IFIFO else 0
        old_umask = os.umask(0)  # the node gets exactly its mode
        try:
            try:
                os.mknod(name, kind | (dev.file_mode & 0o7777), number, dir_fd=dir_fd)
            except FileExistsError:
                os.unlink(name, dir_fd=dir_fd)
                os.mknod(name, kind | (dev.file_mode & 0o7777), number, dir_fd=dir_fd)
        finally:
            os.umask(old_umask)
        os.chown(name, dev.uid, dev.gid, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(dir_fd)


DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)


def dev_symlinks(root_fd: int, ptmx: bool, core: bool) -> None:
    links = list(DEV_SYMLINKS)
    if ptmx:
        links.append(("pts/ptmx", "/dev/ptmx"))
    if core:
        links.append(("/proc/kcore", "/dev/core"))
    dev = resolve.mkdir_all(root_fd, "/dev")
    try:
        for target, link in links:
            try:
                os.symlink(target, os.path.basename(link), dir_fd=dev)
            except FileExistsError:
                pass
    finally:
        os.close(dev)


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
