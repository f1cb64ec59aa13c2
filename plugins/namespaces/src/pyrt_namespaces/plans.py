"""The plans: a container's config validated, opened and resolved in the parent, before
any fork.

:func:`create_plan` turns a :class:`~pyrt_core.runtime.config.RuntimeConfig` into a
:class:`CreatePlan`, :func:`exec_plan` a process into an
:class:`~pyrt_namespaces.execute.ExecPlan`: every check that can fail is made here,
where an error is one exception in the caller, and every host file the children need
(the rootfs, namespaces to join, bind sources, device nodes) is opened here, where the
host's paths are still the host's.  The children (:mod:`.container_init`) only act on
the plan.
"""
from __future__ import annotations

import os
import stat

from pyrt_core.errors import RuntimeError_
from pyrt_core.api import DEFAULT_DEVICES, MS_REC, SECCOMP_CACHE_ANNOTATION, TupleRecord

from . import caps, exechelper, execute, lookup, mounts, nstypes, resolve, rootfs, syscalls

DEFAULT_UMASK = 0o022

# sysctls that belong to a namespace, and which one (as runc checks them)
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_UTS_SYSCTLS = {"kernel.hostname", "kernel.domainname"}


class CreatePlan(TupleRecord):
    root_fd: int
    new_user: bool
    user_fd: int | None                # a user namespace to join
    join_fds: list                     # [(fd, clone flag, name)] other namespaces to join
    unshare_flags: int                 # new namespaces except user and cgroup
    new_cgroupns: bool
    new_net: bool
    hostname: str | None
    rootfs: rootfs.RootfsPlan
    sysctls: list                      # [(path under /proc/sys, value)]
    rlimits: list
    oom_score_adj: int | None
    exec: execute.ExecPlan
    root_path: str = ""                # to enter again after joining a mount namespace
    join_mount: bool = False
    domainname: str | None = None
    personality: int | None = None
    parent_hooks: bool = False         # prestart/createRuntime: ask the parent to run them
    create_container_hooks: tuple = ()
    start_container_hooks: tuple = ()
    state: dict | None = None          # the OCI state for hooks run inside (pid filled in)
    console: bool = False              # open a pty in the container, send its master back
    own_mounts: bool = True            # a mount namespace (else: chroot, the host's mounts)
    join_resources: object = None      # join_resources of pyrt_isolation_create (see "go")
    time_offsets: str = ""             # /proc/self/timens_offsets lines for the new time ns


def exec_plan(process, stdio, last_cap: int | None = None,
              seccomp_config=None, seccomp_cache: str | None = None) -> execute.ExecPlan:
    """Validate a ProcessConfig into what the child needs (raises RuntimeError_).

    ``seccomp_config`` (default: ``process.seccomp``, which the callers of join
    set to the container's) is compiled here, before any fork (with the
    compiled program cached in the directory ``seccomp_cache``, if given)."""
    if not process.args:
        raise RuntimeError_("process.args is empty")
    capsets = None
    if process.capabilities is not None:
        try:
            capsets = caps.resolve(process.capabilities, last_cap)
        except caps.UnknownCapability as e:
            raise RuntimeError_(str(e)) from None
    try:
        rlimits = execute.resolve_rlimits(process.rlimits)
    except ValueError as e:
        raise RuntimeError_(str(e)) from None
    if stdio is not None:
        stdio = tuple(stdio)
        if len(stdio) != 3:
            raise RuntimeError_("stdio must be three file descriptors")
    xp = execute.ExecPlan(
        args=list(process.args),
        env=lookup.env_dict(process.env),
        search_path=lookup.env_path(process.env),
        cwd=process.cwd or "/",
        uid=process.uid,
        gid=process.gid,
        additional_gids=list(process.additional_gids),
        umask=DEFAULT_UMASK if process.umask is None else int(process.umask),
        capsets=capsets,
        no_new_privs=process.no_new_privileges,
        stdio=stdio,
        rlimits=rlimits,
        terminal=process.terminal,
        preserve_fds=getattr(process, "preserve_fds", 0),
        seccomp=_seccomp_program(seccomp_config if seccomp_config is not None
                                 else getattr(process, "seccomp", None), seccomp_cache),
        helper_fd=exechelper.fd(),
    )
    execute.preload(xp)
    return xp


def _seccomp_program(config, cache_dir):
    if config is None:
        return None
    from . import seccomp

    return seccomp.compile_program(config, cache_dir)


def owns_namespace(ns) -> bool:
    """Whether the container has a namespace of its own for a sysctl: a new one, or one
    joined by path that is not this runtime's own (the host's, as runc checks for the
    network namespace: a container joined to one that shares the host's would write
    the host's value)."""
    if ns is None:
        return False
    if not ns.path:
        return True
    try:
        st = os.stat(ns.path)
        ours = os.stat(f"/proc/self/ns/{nstypes.proc_name(ns.type)}")
    except OSError:
        return True  # the join itself reports the path
    return (st.st_dev, st.st_ino) != (ours.st_dev, ours.st_ino)


def sysctl_plan(config, has_ns) -> list:
    out = []
    for key, value in config.sysctl.items():
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            needed = "ipc"
        elif key.startswith("net."):
            needed = "network"
        elif key in _UTS_SYSCTLS:
            needed = "uts"
        else:
            raise RuntimeError_(f"sysctl {key!r} is not in a separate kernel namespace "
                                "and cannot be set for a container")
        if not has_ns(needed):
            raise RuntimeError_(f"sysctl {key!r} needs the container to have its own "
                                f"{needed} namespace")
        if "/" in key or "" in key.split("."):
            raise RuntimeError_(f"invalid sysctl name {key!r}")
        out.append(("/proc/sys/" + key.replace(".", "/"), str(value)))
    return out


def open_fd(path: str, flags: int, what: str, opened: list) -> int:
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeError_(f"{what} {path}: {e.strerror}") from None
    opened.append(fd)
    return fd


def _clone_mount(path: str, recursive: bool, what: str, opened: list) -> int:
    """A detached bind mount of a host path (open_tree), to attach inside the container.

    Made here, in the host's mount namespace: a path or O_PATH fd from here could
    not be bound from inside the container's new mount namespace (EINVAL), and
    the container's root may not even be able to walk to it.
    """
    flags = syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC
    if recursive:
        flags |= syscalls.AT_RECURSIVE
    try:
        fd = syscalls.open_tree(syscalls.AT_FDCWD, path, flags)
    except OSError as e:
        raise RuntimeError_(f"{what} {path}: {os.strerror(e.errno)}") from None
    opened.append(fd)
    return fd


def _bind_source(m, bundle: str, opened: list) -> tuple[int, bool]:
    """The detached copy of a bind mount's source, with the mount's attributes already
    set (per-mount flags on its top, the recursive ones on its whole tree): the container
    never sees it without them, and nothing is remounted by path inside the container."""
    src = m.source if os.path.isabs(m.source) else os.path.join(bundle, m.source)
    what = f"bind mount source for {m.destination}:"
    fd = _clone_mount(src, bool(m.flags & MS_REC), what, opened)
    try:
        mounts.set_attrs(fd, mounts.bind_flags(m), f"{src} for {m.destination}",
                         m.rec_set, m.rec_clr)
    except OSError as e:
        raise RuntimeError_(f"{what} {src}: {e.strerror}") from None
    return fd, stat.S_ISDIR(os.fstat(fd).st_mode)


def _make_mount_point(root_fd: int, destination: str, is_dir: bool) -> None:
    """Create a mount point in the rootfs while still the host's root.

    Inside a user namespace the container's root may not own the rootfs's
    directories (an image unpacked by the host's root), so it could not create
    /etc/hostname or a volume's directory there itself."""
    try:
        os.close((resolve.mkdir_all if is_dir else resolve.make_file)(root_fd, destination))
    except OSError:
        pass  # the container's setup reports the problem with its own message


def create_plan(config, stdio, opened: list) -> CreatePlan:
    ns_by_type = {ns.type: ns for ns in config.namespaces}
    for t in ns_by_type:
        nstypes.clone_flag(t)
    new = {t for t, ns in ns_by_type.items() if not ns.path}
    mnt = ns_by_type.get("mount")
    if config.hostname and "uts" not in ns_by_type:
        raise RuntimeError_("setting the hostname needs a uts namespace")
    if config.domainname and "uts" not in ns_by_type:
        raise RuntimeError_("setting the domainname needs a uts namespace")
    console = bool(console_socket(config)) or config.on_console is not None
    if console and not config.process.terminal:
        raise RuntimeError_("a console socket needs process.terminal to be true")
    user = ns_by_type.get("user")
    new_user = "user" in new
    if new_user and not (config.uid_mappings and config.gid_mappings):
        raise RuntimeError_("a user namespace needs uid and gid mappings")

    xp = exec_plan(config.process, stdio, seccomp_config=config.seccomp,
                   seccomp_cache=config.annotations.get(SECCOMP_CACHE_ANNOTATION))
    sysctls = sysctl_plan(config, lambda t: owns_namespace(ns_by_type.get(t)))
    if config.process.oom_score_adj is not None and not -1000 <= config.process.oom_score_adj <= 1000:
        raise RuntimeError_(f"oom_score_adj {config.process.oom_score_adj} is not in -1000..1000")

    root_fd = open_fd(config.root_path, os.O_PATH | os.O_DIRECTORY, "root filesystem", opened)
    user_fd = None
    if user is not None and user.path:
        user_fd = open_fd(user.path, os.O_RDONLY, "user namespace", opened)
    join_fds = []
    for name in nstypes.JOIN_ORDER:
        ns = ns_by_type.get(name)
        if name != "user" and ns is not None and ns.path:
            join_fds.append((open_fd(ns.path, os.O_RDONLY, f"{name} namespace", opened),
                             nstypes.clone_flag(name), name))
    in_userns = user is not None

    prepared = []
    for m in (config.mounts if mnt is not None else ()):
        if m.is_bind:
            fd, is_dir = _bind_source(m, config.bundle, opened)
            prepared.append(mounts.PreparedMount(m, fd, is_dir))
        else:
            is_dir = True
            prepared.append(mounts.PreparedMount(m))
        if in_userns:
            _make_mount_point(root_fd, m.destination, is_dir)
    destinations = {os.path.normpath(m.destination) for m in config.mounts}
    # As runc: unless /dev is a bind mount, /dev gets the default devices and symlinks.
    setup_dev = not any(os.path.normpath(m.destination) == "/dev" and m.is_bind
                        for m in config.mounts)
    wanted = list(config.devices) if mnt is not None else []
    if setup_dev and mnt is not None:
        given = {os.path.normpath(d.path) for d in config.devices}
        wanted += [d for d in DEFAULT_DEVICES if d.path not in given]
    devices = []
    for d in wanted:
        if d.type not in ("c", "u", "b", "p"):
            raise RuntimeError_(f"device {d.path}: unknown type {d.type!r}")
        # In a user namespace mknod is refused: bind the host's node instead.
        host_fd = _clone_mount(d.path, False, "device node", opened) if in_userns else None
        devices.append((d, host_fd))

    plan = rootfs.RootfsPlan(
        mounts=prepared,
        devices=devices,
        dev_symlinks=setup_dev and "/dev" in destinations,
        core_symlink=os.path.exists("/proc/kcore"),  # as runc: no dangling /dev/core
        ptmx_symlink="/dev/pts" in destinations,
        in_userns=in_userns,
        own_cgroupns="cgroup" in ns_by_type,
        masked_paths=list(config.masked_paths),
        readonly_paths=list(config.readonly_paths),
        root_readonly=config.root_readonly,
        rootfs_propagation=config.rootfs_propagation,
        no_pivot=bool(getattr(config, "no_pivot", False)),
    )
    hooks = config.hooks
    if hooks.create_container or hooks.start_container:
        # the init runs these, some after pivot_root, where it cannot import
        from pyrt_core.api import run_hooks  # noqa: F401 - resolved (and cached) now
    persona = None
    if config.personality is not None:
        persona = syscalls.PERSONALITY.get(config.personality)
        if persona is None:
            raise RuntimeError_(f"unknown personality domain {config.personality!r}")
    return CreatePlan(
        root_fd=root_fd,
        new_user=new_user,
        user_fd=user_fd,
        join_fds=join_fds,
        unshare_flags=nstypes.clone_flags(new - {"user", "cgroup"}),
        new_cgroupns="cgroup" in new,
        new_net="network" in new,
        hostname=config.hostname,
        rootfs=plan,
        sysctls=sysctls,
        rlimits=xp.rlimits,
        oom_score_adj=config.process.oom_score_adj,
        exec=xp,
        root_path=config.root_path,
        join_mount=bool(mnt is not None and mnt.path),
        own_mounts=mnt is not None,
        domainname=config.domainname,
        personality=persona,
        parent_hooks=bool(hooks.prestart or hooks.create_runtime),
        create_container_hooks=tuple(hooks.create_container),
        start_container_hooks=tuple(hooks.start_container),
        state=oci_state(config, "creating", 0),
        console=console,
        time_offsets="".join(f"{clock} {secs} {nsecs}\n" for clock, (secs, nsecs)
                             in sorted((getattr(config, "time_offsets", None) or {}).items())),
    )


def oci_state(config, status: str, pid: int) -> dict:
    """The runtime-spec state a hook reads on its stdin."""
    return {"ociVersion": "1.0.2", "id": config.id, "status": status, "pid": pid,
            "bundle": config.bundle, "annotations": dict(config.annotations)}


def console_socket(config) -> str | None:
    """Where the console of a created container goes (``create --console-socket``)."""
    return config.console_socket or getattr(config.process, "console_socket", None)
