"""join: a new process in the namespaces of a running container (setns; ``exec``).

The parent forks an intermediate that joins the container's cgroups and namespaces,
which forks the final process (a joined pid namespace applies to children only); that
one waits for "go", opens a console if asked, and execs.  Both are children of
:func:`.channel.run_child`: everything they use is imported here, before the fork.
"""
from __future__ import annotations

import os

from pyrt_core.errors import RuntimeError_

from . import channel, execute, mounts, nstypes, syscalls
from .container_init import expect, not_dumpable, open_console
from .handle import NamespacedProcess
from .parent import (failure, fork_child, kill_and_reap, reap, send_console, subreaper_begin,
                     subreaper_end)
from .plans import exec_plan, open_fd


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
    not_dumpable()  # before entering the container's pid namespace; the final child inherits it
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
    expect(sock, b"go")
    if console:
        xp = xp._replace(stdio=open_console(sock, xp.uid))
    execute.apply_rlimits(xp.rlimits)
    execute.exec_process(xp, report_fd=sock)


#: ioctl(2) NS_GET_USERNS (_IO(0xb7, 0x1)): the user namespace owning a namespace
NS_GET_USERNS = 0xB701


def _foreign_first(fds: list) -> list:
    """The namespaces to join, those not owned by the container's user namespace first.

    A container with a user namespace of its own may sit in a namespace made outside it
    (the network namespace the engine made and the runtime joined by path, as runc
    does): setns into it needs capabilities in its owner, the host's user namespace,
    which are gone once the joiner is in the container's.  So those are joined before
    the user namespace (the container's own after it, as before)."""
    user = [f for f in fds if f[2] == "user"]
    if not user:
        return fds
    import fcntl

    user_ino = os.fstat(user[0][0]).st_ino
    foreign, rest = [], []
    for entry in fds:
        if entry[2] != "user":
            try:
                owner = fcntl.ioctl(entry[0], NS_GET_USERNS)
            except OSError:
                owner = -1
            if owner >= 0:
                try:
                    if os.fstat(owner).st_ino != user_ino:
                        foreign.append(entry)
                        continue
                finally:
                    os.close(owner)
        rest.append(entry)
    return foreign + rest


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
            fds.append((open_fd(path, os.O_RDONLY, f"{name} namespace", opened),
                        nstypes.clone_flag(name), name))
        fds = _foreign_first(fds)
        cgroup_procs = _cgroup_procs_files(pid) if "cgroup" in wanted else []
        subreaper_begin()
        try:
            middle, sock = fork_child(_join_intermediate, fds, cgroup_procs, xp,
                                      bool(console_socket or on_console))
        except BaseException:
            subreaper_end()
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
        status, middle = reap(middle), None
        if final is None:
            raise failure(msg, what, status)
        channel.send(sock, b"go")
        msg, passed = channel.recv_fds(sock)  # EOF = exec done
        if msg == b"console" and passed:
            for fd in passed[1:]:
                os.close(fd)
            if on_console is not None:
                on_console(passed[0])  # theirs now
            else:
                try:
                    send_console(console_socket, passed[0])
                finally:
                    os.close(passed[0])
            msg = channel.recv(sock)
        else:
            for fd in passed:
                os.close(fd)
        if msg:
            status, final = reap(final), None
            raise failure(msg, what, status)
    except BaseException:
        kill_and_reap(middle)
        kill_and_reap(final)
        raise
    finally:
        os.close(sock)
        subreaper_end()
    return NamespacedProcess(final, None, started=True)
