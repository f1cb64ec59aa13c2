"""What a created container's processes run after the fork: the intermediate process
and the init (PID 1), step by step, and the steps join's children share.

See :mod:`.create` for the sequence and the messages on the control channel.  Each
runs under :func:`.channel.run_child`: a failure is one ``error CODE TEXT`` message to
the parent, then ``os._exit``.  These functions run in the container, after pivot_root,
where nothing can be imported: every module they use is imported at the top of this
module, which :mod:`.create` and :mod:`.join` import before they fork.
"""
from __future__ import annotations

import os

from pyrt_core.errors import PyrtError

# Everything the children use is imported here: after pivot_root they cannot import.
from . import channel, execute, lookup, mounts, network, nstypes, rootfs, syscalls
from .plans import DEFAULT_UMASK, CreatePlan


def expect(sock: int, want: bytes) -> None:
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


def _join(plan: CreatePlan) -> None:
    for fd, flag, name in plan.join_fds:
        with channel.stage(f"joining the {name} namespace"):
            syscalls.setns(fd, flag, name)
    if plan.join_mount:
        # setns moved us to that namespace's root: find the rootfs there by path.
        with channel.stage(f"entering the root filesystem {plan.root_path} in the joined "
                           "mount namespace"):
            os.chdir(plan.root_path)


def intermediate(plan: CreatePlan, sock: int) -> None:
    os.fchdir(plan.root_fd)
    if plan.user_fd is not None:
        with channel.stage("joining the user namespace"):
            syscalls.setns(plan.user_fd, nstypes.CLONE_NEWUSER, "user")
        _become_root()
        _join(plan)
    elif plan.new_user:
        # the namespaces joined by path (a network namespace the engine made) belong to
        # this user namespace: setns needs its capabilities, which the new one's root
        # has not, so they are joined first (as runc does)
        _join(plan)
        with channel.stage("creating the user namespace"):
            syscalls.unshare(nstypes.CLONE_NEWUSER)
        channel.send(sock, b"userns")
        expect(sock, b"maps")
        _become_root()
    else:
        _join(plan)
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
        channel.run_child(sock, container_init, plan, sock)
    channel.send(sock, b"pid %d" % pid)


def not_dumpable() -> None:
    """Until its exec, a process that is or joins a container is a copy of the host's
    interpreter holding host fds: make /proc/PID/{exe,fd,cwd,root,mem} of it unreachable
    for the container's other processes (they lack CAP_SYS_PTRACE), as runc does.  The
    exec (the helper's) makes the process dumpable again."""
    with channel.stage("making the process non-dumpable"):
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0, what="PR_SET_DUMPABLE")


def container_init(plan: CreatePlan, sock: int) -> None:
    in_userns = plan.new_user or plan.user_fd is not None
    if not in_userns:
        not_dumpable()
    # "go": the parent has placed us in our cgroups; "go {JSON}": we move ourselves
    msg = channel.recv(sock)
    if msg != b"go" and not msg.startswith(b"go "):
        os._exit(channel.EXIT_SETUP)  # the parent went away (EOF) or gave up
    if len(msg) > 2:
        from pyrt_core.api import json_loads as loads

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
        not_dumpable()
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
        expect(sock, b"hooks done")
    if plan.create_container_hooks:
        _run_hooks_inside(plan.create_container_hooks, plan.state, "createContainer")
    if plan.own_mounts:
        rootfs.enter(plan.rootfs)
    else:
        with channel.stage("chroot into the root filesystem"):
            os.chroot(".")
            os.chdir("/")
    if plan.console:
        stdio = open_console(sock, plan.exec.uid)
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
    from pyrt_core.api import run_hooks  # resolved by create_plan, before the fork

    try:
        run_hooks(hooks, dict(state, pid=os.getpid()), phase)
    except PyrtError as e:
        raise channel.ChildError(str(e)) from None


def open_console(sock: int, uid: int) -> tuple:
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
        # Someone else will start us by writing to the FIFO (fifo.start_fifo).
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
