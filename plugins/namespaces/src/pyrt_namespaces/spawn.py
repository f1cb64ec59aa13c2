"""The three interfaces: create a process in new namespaces, join, unshare.

create (runc's order, see shared/reference/isolation.md)::

    caller (subreaper)          intermediate child               grandchild (PID 1)
    ------------------          ------------------               ------------------
    fork ------------------->   fchdir(rootfs)
                                [unshare(USER)] -- "userns" -->
    write uid/gid maps <------- wait "maps"; become root
                                setns(joined), unshare(mnt,uts,ipc,net,pid,time)
                                [time offsets]
                                fork --------------------------> wait "go"
    "pid N" <------------------ report pid; _exit(0)
    reap it; place_process(N)
    "go" [+ what to join] ------------------------------------> [join its cgroups],
                                                                 oom_score_adj,
                                                                 [unshare(CGROUP)], hostname,
                                                                 domainname, mounts, devices
    run prestart, createRuntime <------------------------------ "hooks" (if any)
    "hooks done" ---------------------------------------------> createContainer hooks,
                                                                 pivot_root (or MS_MOVE+chroot)
    console master to the socket <----------------------------- "console" + fd (if asked)
                                                                 lo, sysctls, read-only and
                                                                 masked paths, rlimits
    "created" <----------------------------------------------- wait "start"
    start(): "start" -----------------------------------------> startContainer hooks,
                                                                 personality, user, caps,
                                                                 cwd, execve
    EOF (exec done) or "error CODE TEXT" <---------------------

The grandchild is reparented to the caller when the intermediate exits, because
the caller is a child subreaper; the caller reaps it with waitpid.
"""
from __future__ import annotations

import _socket  # socket.py would import enum and selectors (~7 ms); see channel
import os
import stat

from pyrt_core.errors import ExecError, PyrtError, RuntimeError_
from pyrt_core.records import TupleRecord
from pyrt_core.runtime.config import DEFAULT_DEVICES, MS_REC, SECCOMP_CACHE_ANNOTATION

# Everything the children use is imported here: after pivot_root they cannot import.
from . import (caps, channel, exechelper, execute, lookup, mounts, network, nstypes, resolve,
               rootfs, syscalls, userns)
from .handle import NamespacedProcess

DEFAULT_UMASK = 0o022

# sysctls that belong to a namespace, and which one (as runc checks them)
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_UTS_SYSCTLS = {"kernel.hostname", "kernel.domainname"}

_subreaper = False


def become_subreaper() -> None:
    """Make the calling process a child subreaper for good (orphaned descendants come to it)."""
    global _subreaper
    if not _subreaper:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1, what="PR_SET_CHILD_SUBREAPER")
        _subreaper = True


def _subreaper_begin() -> None:
    """Be a child subreaper while a container's intermediate process exits, so that
    the process it forked (the container's init, or an exec'd process) becomes ours."""
    if not _subreaper:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1, what="PR_SET_CHILD_SUBREAPER")


def _subreaper_end() -> None:
    """Undo :func:`_subreaper_begin` once the intermediate is reaped: the caller
    (pytest, a long-lived tool) must not collect unrelated orphans afterwards."""
    if not _subreaper:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 0, what="PR_SET_CHILD_SUBREAPER")


# ---------------------------------------------------------------------------
# Plans: everything validated and opened in the parent, before forking
# ---------------------------------------------------------------------------

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


def _sysctl_plan(config, has_ns) -> list:
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


def _open(path: str, flags: int, what: str, opened: list) -> int:
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


def _create_plan(config, stdio, opened: list) -> CreatePlan:
    ns_by_type = {ns.type: ns for ns in config.namespaces}
    for t in ns_by_type:
        nstypes.clone_flag(t)
    new = {t for t, ns in ns_by_type.items() if not ns.path}
    mnt = ns_by_type.get("mount")
    if config.hostname and "uts" not in ns_by_type:
        raise RuntimeError_("setting the hostname needs a uts namespace")
    if config.domainname and "uts" not in ns_by_type:
        raise RuntimeError_("setting the domainname needs a uts namespace")
    console = bool(_console_socket(config)) or config.on_console is not None
    if console and not config.process.terminal:
        raise RuntimeError_("a console socket needs process.terminal to be true")
    user = ns_by_type.get("user")
    new_user = "user" in new
    if new_user and not (config.uid_mappings and config.gid_mappings):
        raise RuntimeError_("a user namespace needs uid and gid mappings")

    xp = exec_plan(config.process, stdio, seccomp_config=config.seccomp,
                   seccomp_cache=config.annotations.get(SECCOMP_CACHE_ANNOTATION))
    sysctls = _sysctl_plan(config, lambda t: t in ns_by_type)
    if config.process.oom_score_adj is not None and not -1000 <= config.process.oom_score_adj <= 1000:
        raise RuntimeError_(f"oom_score_adj {config.process.oom_score_adj} is not in -1000..1000")

    root_fd = _open(config.root_path, os.O_PATH | os.O_DIRECTORY, "root filesystem", opened)
    user_fd = None
    if user is not None and user.path:
        user_fd = _open(user.path, os.O_RDONLY, "user namespace", opened)
    join_fds = []
    for name in nstypes.JOIN_ORDER:
        ns = ns_by_type.get(name)
        if name != "user" and ns is not None and ns.path:
            join_fds.append((_open(ns.path, os.O_RDONLY, f"{name} namespace", opened),
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
        import pyrt_core.runtime.hooks  # noqa: F401
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


# ---------------------------------------------------------------------------
# Children (run_child: errors go to the parent, then os._exit)
# ---------------------------------------------------------------------------

def _expect(sock: int, want: bytes) -> None:
    msg = channel.recv(sock)
    if msg != want:
        # The parent went away (EOF) or gave up: leave quietly.
        os._exit(channel.EXIT_SETUP)


def _become_root() -> None:
    with channel.stage("becoming root in the user namespace (is 0 mapped?)"):
        try:
            os.setgroups([])
        except PermissionError:
            pass  # setgroups is denied in this user namespace
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)


def _intermediate(plan: CreatePlan, sock: int) -> None:
    os.fchdir(plan.root_fd)
    if plan.user_fd is not None:
        with channel.stage("joining the user namespace"):
            syscalls.setns(plan.user_fd, nstypes.CLONE_NEWUSER, "user")
        _become_root()
    elif plan.new_user:
        with channel.stage("creating the user namespace"):
            syscalls.unshare(nstypes.CLONE_NEWUSER)
        channel.send(sock, b"userns")
        _expect(sock, b"maps")
        _become_root()
    for fd, flag, name in plan.join_fds:
        with channel.stage(f"joining the {name} namespace"):
            syscalls.setns(fd, flag, name)
    if plan.join_mount:
        # setns moved us to that namespace's root: find the rootfs there by path.
        with channel.stage(f"entering the root filesystem {plan.root_path} in the joined "
                           "mount namespace"):
            os.chdir(plan.root_path)
    if plan.unshare_flags:
        with channel.stage("creating namespaces"):
            syscalls.unshare(plan.unshare_flags)
    if plan.time_offsets:
        # a new time namespace takes its clocks' offsets before its first process (the
        # init, forked next) enters it
        with channel.stage("setting the time namespace's offsets"):
            with open("/proc/self/timens_offsets", "w") as f:
                f.write(plan.time_offsets)
    pid = os.fork()
    if pid == 0:
        channel.run_child(sock, _container_init, plan, sock)
    channel.send(sock, b"pid %d" % pid)


def _not_dumpable() -> None:
    """Until its exec, a process that is or joins a container is a copy of the host's
    interpreter holding host fds: make /proc/PID/{exe,fd,cwd,root,mem} of it unreachable
    for the container's other processes (they lack CAP_SYS_PTRACE), as runc does.  The
    exec (the helper's) makes the process dumpable again."""
    with channel.stage("making the process non-dumpable"):
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0, what="PR_SET_DUMPABLE")


def _container_init(plan: CreatePlan, sock: int) -> None:
    in_userns = plan.new_user or plan.user_fd is not None
    if not in_userns:
        _not_dumpable()
    # "go": the parent has placed us in our cgroups; "go {JSON}": we move ourselves
    msg = channel.recv(sock)
    if msg != b"go" and not msg.startswith(b"go "):
        os._exit(channel.EXIT_SETUP)  # the parent went away (EOF) or gave up
    if len(msg) > 2:
        from pyrt_core.jsonlean import loads

        with channel.stage("joining the container's cgroups"):
            plan.join_resources(loads(msg[3:]))
    os.umask(DEFAULT_UMASK)
    if plan.oom_score_adj is not None:
        # Through the host's /proc, still in place before pivot_root.
        with channel.stage(f"setting oom_score_adj to {plan.oom_score_adj} "
                           "(lowering it needs CAP_SYS_RESOURCE)"):
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(plan.oom_score_adj))
    if in_userns:
        # only now: a non-dumpable process's /proc/self files belong to the host's root,
        # which the user namespace's root is not
        _not_dumpable()
    hierarchies = ()
    if plan.rootfs.wants_cgroup_mount:
        with channel.stage("reading the host's cgroup hierarchies"):
            hierarchies = mounts.cgroup_hierarchies()
    if plan.new_cgroupns:
        with channel.stage("creating the cgroup namespace"):
            syscalls.unshare(nstypes.CLONE_NEWCGROUP)
    if plan.hostname:
        with channel.stage(f"setting the hostname to {plan.hostname!r}"):
            syscalls.sethostname(plan.hostname)
    if plan.domainname:
        with channel.stage(f"setting the domainname to {plan.domainname!r}"):
            syscalls.setdomainname(plan.domainname)
    if plan.own_mounts:
        rootfs.prepare(plan.rootfs, hierarchies)
    else:
        _write_sysctls(plan.sysctls)  # through the host's /proc: the root has no mounts
    if plan.parent_hooks:
        # prestart and createRuntime run in the runtime's namespaces, by the parent.
        channel.send(sock, b"hooks")
        _expect(sock, b"hooks done")
    if plan.create_container_hooks:
        _run_hooks_inside(plan.create_container_hooks, plan.state, "createContainer")
    if plan.own_mounts:
        rootfs.enter(plan.rootfs)
    else:
        with channel.stage("chroot into the root filesystem"):
            os.chroot(".")
            os.chdir("/")
    if plan.console:
        stdio = _open_console(sock, plan.exec.uid)
        # as runc: the pty becomes the init's stdio at once, so the runtime's own stdio
        # (containerd's shim reads it to EOF before it calls start) is not held open
        execute.install_stdio(stdio)
        plan = plan._replace(exec=plan.exec._replace(stdio=stdio))
    if plan.new_net:
        with channel.stage("bringing up the loopback interface"):
            network.set_up("lo")
    if plan.own_mounts:
        _write_sysctls(plan.sysctls)
        rootfs.finalize(plan.rootfs)
    # the host's fds (the rootfs handle, mount sources, devices) are no longer needed:
    # closed before anything looks at the working directory or the executable
    execute.close_fds(plan.exec.preserve_fds,
                      keep=(sock, plan.exec.helper_fd, *(plan.exec.stdio or ())))
    execute.apply_rlimits(plan.rlimits)
    with channel.stage(f"checking the working directory {plan.exec.cwd}"):
        if not os.path.isdir(plan.exec.cwd):
            raise FileNotFoundError(2, "no such directory in the container")
    _check_executable(plan.exec)
    channel.send(sock, b"created")
    _wait_for_start(sock)
    if plan.start_container_hooks:
        state = dict(plan.state, status="created")
        _run_hooks_inside(plan.start_container_hooks, state, "startContainer")
    if plan.personality is not None:
        with channel.stage("setting the personality"):
            syscalls.personality(plan.personality)
    execute.exec_process(plan.exec, report_fd=sock)


def _write_sysctls(sysctls) -> None:
    for path, value in sysctls:
        with channel.stage(f"writing sysctl {path}"):
            with open(path, "w") as f:
                f.write(value)


def _run_hooks_inside(hooks, state: dict, phase: str) -> None:
    """Run hooks from the container's init (createContainer, startContainer)."""
    from pyrt_core.runtime import hooks as hooklib  # imported by _create_plan, before the fork

    try:
        hooklib.run_hooks(hooks, dict(state, pid=os.getpid()), phase)
    except PyrtError as e:
        raise channel.ChildError(str(e)) from None


def _open_console(sock: int, uid: int) -> tuple:
    """Open a pty in the container's own devpts, send the master to the parent
    (SCM_RIGHTS), return the slave as the process's stdio (runc's console)."""
    with channel.stage("opening the container's console (/dev/ptmx)"):
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            slave_path = syscalls.unlock_pty(master)
            slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            try:
                os.fchown(slave, uid, -1)
            except OSError:
                pass  # an unmapped uid keeps the slave owned by root
            channel.send_fds(sock, b"console", [master])
        finally:
            os.close(master)
    return (slave, slave, slave)


def _check_executable(xp: execute.ExecPlan) -> None:
    """Fail create, not start, when the process's executable is missing (as runc):
    engines (podman) map only a create error to exit 127.  Permission is left to
    execve: the user switch has not happened yet."""
    name = xp.args[0]
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(xp.cwd, name)
        if not os.path.lexists(path):
            raise channel.ChildError(f"exec {name!r}: no such file or directory",
                                     channel.EXIT_NOT_FOUND)
        return
    try:
        lookup.find_executable(name, xp.search_path)
    except lookup.LookupFailed as e:
        if e.exit_code == channel.EXIT_NOT_FOUND:
            raise channel.ChildError(str(e), e.exit_code) from None


def _wait_for_start(sock: int) -> None:
    msg, fds = channel.recvmsg_fds(sock, 64, 2)
    if msg == b"start":
        return
    if msg == b"detach" and fds:
        # Someone else will start us by writing to the FIFO (handle.start_fifo).
        # A second fd, if sent, takes the control socket's place for reporting a
        # failed exec (it is close-on-exec: EOF there means the exec succeeded).
        if len(fds) > 1:
            os.dup2(fds[1], sock, inheritable=False)
            os.close(fds[1])
        while not os.read(fds[0], 1):
            pass
        os.close(fds[0])
        return
    os._exit(0)  # the owner went away without starting the container


# ---------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------

def _reap(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def _kill_and_reap(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    _reap(pid)


def _failure(msg: bytes, what: str, status: int | None = None) -> RuntimeError_:
    """The exception for a child's ``error`` message (or for its silent death)."""
    err = channel.parse_error(msg)
    if err is None:
        detail = f" (exit code {os.waitstatus_to_exitcode(status)})" if status else ""
        return RuntimeError_(f"{what}: the process ended without saying why{detail}")
    code, text = err
    if code in (channel.EXIT_CANNOT_EXECUTE, channel.EXIT_NOT_FOUND):
        return ExecError(text, code)
    return RuntimeError_(f"{what}: {text}")


def _fork_child(target, *args) -> tuple[int, int]:
    """Fork a child running ``target(*args, child_sock)``; return (pid, parent's socket)."""
    parent_sock, child_sock = channel.socketpair()
    try:
        pid = os.fork()
    except BaseException:
        os.close(parent_sock)
        os.close(child_sock)
        raise
    if pid == 0:
        os.close(parent_sock)
        channel.run_child(child_sock, target, *args, child_sock)
    os.close(child_sock)
    return pid, parent_sock


def _console_socket(config) -> str | None:
    """Where the console of a created container goes (``create --console-socket``)."""
    return config.console_socket or getattr(config.process, "console_socket", None)


def _send_console(path: str, master: int) -> None:
    """Hand the pty master to the caller's console socket (as runc: SCM_RIGHTS)."""
    try:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.connect(path)
            channel.send_fds(s.fileno(), b"/dev/ptmx", [master])
        finally:
            s.close()
    except OSError as e:
        raise RuntimeError_(f"sending the console to {path}: {e.strerror or e}") from None


def _warn_no_mount_namespace(config) -> None:
    skipped = [what for what, items in (("mounts", config.mounts),
                                        ("masked paths", config.masked_paths),
                                        ("read-only paths", config.readonly_paths))
               if items]
    if config.root_readonly:
        skipped.append("a read-only root")
    if skipped:
        import sys

        sys.stderr.write(f"pyrt: warning: container {config.id} has no mount namespace: it "
                         f"shares the host's mounts, so its {', '.join(skipped)} are not "
                         "applied (they would change the host)\n")


def create(config, stdio, place_process, join_resources=None) -> NamespacedProcess:
    """Create the container's init process in new namespaces, stopped before exec.

    With ``join_resources`` (see the hook spec, pyrt_isolation_create), the init
    process is offered to move itself into its cgroups: what ``place_process``
    returns then goes with "go", and the init passes it to ``join_resources``."""
    opened: list[int] = []
    try:
        plan = _create_plan(config, stdio, opened)
        if plan.new_user or plan.user_fd is not None:
            # in a user namespace the init is no longer the host's root: the cgroup files
            # (the host root's) are not its to open; the parent places it
            join_resources = None
        if join_resources is not None:
            plan = plan._replace(join_resources=join_resources)
        if not plan.own_mounts:
            _warn_no_mount_namespace(config)
        _subreaper_begin()
        try:
            middle, sock = _fork_child(_intermediate, plan)
        except BaseException:
            _subreaper_end()
            raise
    finally:
        for fd in opened:
            os.close(fd)

    what = f"creating container {config.id}"
    pid = None
    try:
        msg = channel.recv(sock)
        if msg == b"userns":
            try:
                userns.write_maps(middle, config.uid_mappings, config.gid_mappings)
            except OSError as e:
                raise RuntimeError_(f"{what}: {e.strerror}") from None
            channel.send(sock, b"maps")
            msg = channel.recv(sock)
        if not msg.startswith(b"pid "):
            status, middle = _reap(middle), None
            raise _failure(msg, what, status)
        pid = int(msg[4:])
        if join_resources is None:
            place_process(pid)
            channel.send(sock, b"go")
        else:
            todo = place_process(pid, self_join=True)
            if todo:
                from pyrt_core.jsonlean import dumps

                channel.send(sock, b"go " + dumps(todo).encode())
            else:
                channel.send(sock, b"go")
        # The intermediate has exited meanwhile; once reaped, its child is ours.
        _reap(middle)
        middle = None
        while True:
            msg, fds = channel.recv_fds(sock)
            if msg == b"hooks":
                from pyrt_core.runtime import hooks as hooklib

                state = oci_state(config, "creating", pid)
                hooklib.run_hooks(config.hooks.prestart, state, "prestart")
                hooklib.run_hooks(config.hooks.create_runtime, state, "createRuntime")
                channel.send(sock, b"hooks done")
            elif msg == b"console" and fds:
                for fd in fds[1:]:
                    os.close(fd)
                if config.on_console is not None:
                    config.on_console(fds[0])  # theirs now
                else:
                    try:
                        _send_console(_console_socket(config), fds[0])
                    finally:
                        os.close(fds[0])
            elif msg == b"created":
                break
            else:
                for fd in fds:
                    os.close(fd)
                status, pid = _reap(pid), None
                raise _failure(msg, what, status)
    except BaseException:
        _kill_and_reap(middle)
        _kill_and_reap(pid)
        os.close(sock)
        raise
    finally:
        _subreaper_end()
    return NamespacedProcess(pid, sock)


# -- join -----------------------------------------------------------------------

def _same_namespace(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _cgroup_procs_files(pid: int) -> list[str]:
    """The cgroup.procs files of the cgroups process pid is in (host view)."""
    try:
        hierarchies = mounts.cgroup_hierarchies(cgroup_file=f"/proc/{pid}/cgroup")
    except OSError:
        return []
    return [os.path.join(h.host_path, "cgroup.procs") for h in hierarchies]


def _join_intermediate(fds: list, cgroup_procs: list, xp: execute.ExecPlan, console: bool,
                       sock: int) -> None:
    _not_dumpable()  # before entering the container's pid namespace; the final child inherits it
    me = str(os.getpid())
    for path in cgroup_procs:
        with channel.stage(f"joining cgroup {os.path.dirname(path)}"):
            try:
                with open(path, "w") as f:
                    f.write(me)
            except FileNotFoundError:
                pass
    for fd, flag, name in fds:
        with channel.stage(f"joining the {name} namespace"):
            syscalls.setns(fd, flag, name)
    pid = os.fork()  # a joined pid namespace applies to children only
    if pid == 0:
        channel.run_child(sock, _join_final, xp, console, sock)
    channel.send(sock, b"pid %d" % pid)


def _join_final(xp: execute.ExecPlan, console: bool, sock: int) -> None:
    # Wait until the parent knows our pid: a failure reported before the
    # intermediate's "pid N" would leave the parent unable to reap us.
    _expect(sock, b"go")
    if console:
        xp = xp._replace(stdio=_open_console(sock, xp.uid))
    execute.apply_rlimits(xp.rlimits)
    execute.exec_process(xp, report_fd=sock)


def join(pid: int, namespaces, process, stdio) -> NamespacedProcess:
    """Run ``process`` in the namespaces of the running process ``pid``; already started."""
    xp = exec_plan(process, stdio, seccomp_cache=getattr(process, "seccomp_cache", None))
    console_socket = getattr(process, "console_socket", None)
    on_console = getattr(process, "on_console", None)
    if (console_socket or on_console) and not process.terminal:
        raise RuntimeError_("a console socket needs process.terminal to be true")
    opened: list[int] = []
    try:
        fds = []
        wanted = set(namespaces)
        for name in wanted:
            nstypes.clone_flag(name)
        for name in nstypes.JOIN_ORDER:
            if name not in wanted:
                continue
            proc = nstypes.proc_name(name)
            path = f"/proc/{pid}/ns/{proc}"
            try:
                if _same_namespace(path, f"/proc/self/ns/{proc}"):
                    continue  # setns into one's own user namespace fails; others are no-ops
            except FileNotFoundError:
                raise RuntimeError_(f"process {pid} does not exist or has no {name} namespace") from None
            fds.append((_open(path, os.O_RDONLY, f"{name} namespace", opened),
                        nstypes.clone_flag(name), name))
        cgroup_procs = _cgroup_procs_files(pid) if "cgroup" in wanted else []
        _subreaper_begin()
        try:
            middle, sock = _fork_child(_join_intermediate, fds, cgroup_procs, xp,
                                       bool(console_socket or on_console))
        except BaseException:
            _subreaper_end()
            raise
    finally:
        for fd in opened:
            os.close(fd)

    what = f"joining process {pid}"
    final = None
    try:
        msg = channel.recv(sock)
        if msg.startswith(b"pid "):
            final = int(msg[4:])
        status, middle = _reap(middle), None
        if final is None:
            raise _failure(msg, what, status)
        channel.send(sock, b"go")
        msg, passed = channel.recv_fds(sock)  # EOF = exec done
        if msg == b"console" and passed:
            for fd in passed[1:]:
                os.close(fd)
            if on_console is not None:
                on_console(passed[0])  # theirs now
            else:
                try:
                    _send_console(console_socket, passed[0])
                finally:
                    os.close(passed[0])
            msg = channel.recv(sock)
        else:
            for fd in passed:
                os.close(fd)
        if msg:
            status, final = _reap(final), None
            raise _failure(msg, what, status)
    except BaseException:
        _kill_and_reap(middle)
        _kill_and_reap(final)
        raise
    finally:
        os.close(sock)
        _subreaper_end()
    return NamespacedProcess(final, None, started=True)


# -- unshare --------------------------------------------------------------------

def unshare(namespaces) -> None:
    """Move the calling process into new namespaces of the given types."""
    try:
        flags = nstypes.clone_flags(namespaces)
    except ValueError as e:
        raise RuntimeError_(str(e)) from None
    try:
        syscalls.unshare(flags)
    except OSError as e:
        raise RuntimeError_(f"unshare {', '.join(namespaces)}: {e.strerror}") from None
