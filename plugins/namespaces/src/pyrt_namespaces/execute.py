"""The last steps of a container process, in a child: identity, capabilities, exec.

Shared by create (after ``start``) and join (at once): signals and stdio reset,
a new session (stdin as the controlling terminal when ``process.terminal``),
umask, the bounding set dropped while still root, groups/gid/uid switched with
PR_SET_KEEPCAPS, the capability sets applied, no_new_privs, the working
directory, the PATH lookup in the *container's* environment, the seccomp
filter (earlier, before capabilities are dropped, when neither no_new_privs
nor CAP_SYS_ADMIN would remain to allow it), then execve through the sealed
exec helper (:mod:`.exechelper`), so that no process of the container ever
runs, or sees as ``/proc/self/exe``, the host's interpreter.
Failures raise :class:`.channel.ChildError` with 127 (not found), 126 (cannot
execute) or 125 (setup).

Every file descriptor above 2 is *closed* (not merely marked close-on-exec)
before the working directory is entered and the executable looked up: a host
directory's fd still open there would let ``-w /proc/self/fd/N`` or an
``args[0]`` of ``/proc/self/fd/N/../..`` reach the host (runc's
CVE-2024-21626).  Only the caller's ``preserve_fds``, the control socket and the
exec helper survive; the working directory is then checked to be inside the
container's root.
"""
from __future__ import annotations

import _signal  # signal.py would import enum
import errno
import fcntl
import os
import resource

from pyrt_core.api import NULL_STDIO, TupleRecord

from . import caps, exechelper, lookup, syscalls
from .channel import EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, ChildError, stage


class ExecPlan(TupleRecord):
    args: list
    env: dict
    search_path: str
    cwd: str
    uid: int
    gid: int
    additional_gids: list
    umask: int
    capsets: caps.CapSets | None
    no_new_privs: bool
    stdio: tuple | None
    rlimits: list       # [(RLIMIT_* number, soft, hard, name)]
    terminal: bool = False  # stdin is the container's terminal: make it the controlling tty
    seccomp: object | None = None  # seccomp.Program compiled in the parent, installed last
    preserve_fds: int = 0  # fds 3..3+N-1 stay open across exec (runc's --preserve-fds)
    helper_fd: int | None = None  # the sealed exec helper (exechelper.fd()), opened before fork


def resolve_rlimits(rlimits) -> list:
    """Config Rlimit objects -> (number, soft, hard, name); ValueError for unknown names."""
    out = []
    for r in rlimits:
        num = getattr(resource, r.type, None)
        if not r.type.startswith("RLIMIT_") or not isinstance(num, int):
            raise ValueError(f"unknown rlimit {r.type!r}")
        out.append((num, _limit(r.soft), _limit(r.hard), r.type))
    return out


def _limit(v: int) -> int:
    """The spec's limits are unsigned 64-bit numbers, "unlimited" 2**64-1 (RLIM_INFINITY,
    docker's -1); setrlimit here takes a signed one (resource.RLIM_INFINITY is -1)."""
    return resource.RLIM_INFINITY if v >= 1 << 63 else v


def apply_rlimits(rlimits) -> None:
    for num, soft, hard, name in rlimits:
        try:
            resource.setrlimit(num, (soft, hard))
        except ValueError as e:  # Python turns EPERM into "not allowed to raise maximum limit"
            raise ChildError(f"setting {name} to soft={soft} hard={hard}: {e} "
                             "(raising a hard limit needs CAP_SYS_RESOURCE)") from None
        except OSError as e:
            raise ChildError(f"setting {name} to soft={soft} hard={hard}: {e.strerror}") from None


def reset_signals() -> None:
    """Default dispositions and an empty mask: ignored signals would survive execve."""
    for sig in _signal.valid_signals():
        if sig in (_signal.SIGKILL, _signal.SIGSTOP):
            continue
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())


def install_stdio(stdio) -> None:
    """dup2 the given fds onto 0, 1, 2 (None keeps what is there; NULL_STDIO opens the
    container's own /dev/null: the process is inside the container's mounts by now)."""
    if stdio is None:
        return
    if NULL_STDIO in stdio:
        with stage("opening the container's /dev/null"):
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        stdio = tuple(null if fd == NULL_STDIO else fd for fd in stdio)
    else:
        null = None
    # Copy them above 2 first, so that e.g. (1, 0, 2) does not clobber itself.
    high = [None if fd is None else fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in stdio]
    if null is not None:
        os.close(null)
    for target, fd in enumerate(high):
        if fd is not None:
            os.dup2(fd, target, inheritable=True)
            os.close(fd)


_LAST_FD = 0xFFFFFFFF


def _close_from(first: int, last: int = _LAST_FD) -> None:
    if first > last:
        return
    try:
        syscalls.close_range(first, last)
    except OSError:  # before Linux 5.9
        import resource

        top = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        os.closerange(first, min(last + 1, top if top > 0 else 1 << 20))


def close_fds(preserve: int = 0, keep=()) -> None:
    """Close every fd above 2 except the ``preserve`` fds from 3 on (made inheritable:
    they go to the process) and those in ``keep`` (close-on-exec ones of our own)."""
    for fd in range(3, 3 + preserve):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    first = 3 + preserve
    for fd in sorted(k for k in keep if isinstance(k, int) and k >= first):
        _close_from(first, fd - 1)
        first = fd + 1
    _close_from(first)


def enter_working_directory(cwd: str) -> None:
    """chdir, then make sure the directory is inside the container's root: the kernel
    calls a directory outside the process's root "unreachable" (getcwd fails)."""
    with stage(f"changing to the working directory {cwd}"):
        os.chdir(cwd)
    try:
        here = os.getcwd()
    except OSError:
        here = None
    if here is None or not here.startswith("/"):
        raise ChildError(f"the working directory {cwd} is outside the container's root "
                         "(refused: a possible container breakout)")


def switch_user(plan: ExecPlan) -> None:
    with stage(f"setting supplementary groups {plan.additional_gids}"):
        try:
            os.setgroups(plan.additional_gids)
        except PermissionError:
            # A user namespace with setgroups "deny" can only keep an empty list.
            if plan.additional_gids:
                raise
    with stage(f"switching to uid {plan.uid} gid {plan.gid}"):
        os.setresgid(plan.gid, plan.gid, plan.gid)
        if plan.capsets is not None:
            syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1, what="PR_SET_KEEPCAPS")
        os.setresuid(plan.uid, plan.uid, plan.uid)
        if plan.capsets is not None:
            syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0, what="PR_SET_KEEPCAPS")


def preload(plan: ExecPlan) -> None:
    """Import, before the fork, what :func:`exec_process` will need for ``plan``
    (after pivot_root nothing can be imported)."""
    if plan.terminal:
        import termios  # noqa: F401 - only a process with a terminal needs it (new_session)


def new_session(terminal: bool) -> None:
    """Leave the caller's session (and terminal); adopt stdin as the controlling tty."""
    with stage("starting a new session"):
        os.setsid()
    if terminal and os.isatty(0):
        import termios  # loaded by preload(), before the fork

        with stage("making stdin the controlling terminal"):
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def seccomp_can_wait(plan: ExecPlan) -> bool:
    """Whether the filter can be installed as the very last step: that needs
    no_new_privs or CAP_SYS_ADMIN (bit 21) still effective after the switch.  Else
    it goes in before capabilities are dropped, as runc does."""
    if plan.no_new_privs:
        return True
    if plan.capsets is None:
        return plan.uid == 0
    return bool(plan.capsets.effective >> 21 & 1)


def install_seccomp(plan: ExecPlan) -> None:
    # imported here: ctypes and hashlib cost a container without seccomp ~7 ms; one
    # with a filter has it imported already (compiled by the parent, plans.exec_plan)
    from . import seccomp

    with stage("installing the seccomp filter"):
        seccomp.install(plan.seccomp)


def exec_through_helper(plan: ExecPlan, path: str, report_fd: int) -> None:
    """execve ``path`` through the sealed exec helper; returns only by raising ChildError.

    execveat on the memfd first; a seccomp profile that allows execve but not
    execveat gets the helper through the container's /proc/self/fd instead."""
    argv = exechelper.argv(report_fd, path, plan.args)
    os.set_inheritable(report_fd, True)  # the helper sets close-on-exec again
    try:
        os.execve(plan.helper_fd, argv, plan.env)
    except OSError as e:
        first = e
    try:
        os.execve(f"/proc/self/fd/{plan.helper_fd}", argv, plan.env)
    except OSError:
        pass
    os.set_inheritable(report_fd, False)
    raise ChildError(f"exec {path}: starting pyrt's exec helper: {first.strerror} (the "
                     "container needs execveat, or execve and /proc)", EXIT_CANNOT_EXECUTE)


def exec_process(plan: ExecPlan, report_fd: int | None = None) -> None:
    """Become the container's process; returns only by raising ChildError.

    ``report_fd`` is the control socket (close-on-exec), where the exec helper
    reports an execve that failed."""
    reset_signals()
    install_stdio(plan.stdio)
    close_fds(plan.preserve_fds, keep=(report_fd, plan.helper_fd))
    new_session(plan.terminal)
    os.umask(plan.umask)
    late_seccomp = plan.seccomp is not None and seccomp_can_wait(plan)
    if plan.seccomp is not None and not late_seccomp:
        install_seccomp(plan)
    if plan.capsets is not None:
        with stage("dropping capabilities from the bounding set"):
            caps.drop_bounding(plan.capsets)
    switch_user(plan)
    if plan.capsets is not None:
        with stage("setting capabilities"):
            caps.apply(plan.capsets)
    if plan.no_new_privs:
        with stage("setting no_new_privs"):
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1, what="PR_SET_NO_NEW_PRIVS")
    enter_working_directory(plan.cwd)
    try:
        path = lookup.find_executable(plan.args[0], plan.search_path)
    except lookup.LookupFailed as e:
        raise ChildError(str(e), e.exit_code) from None
    if late_seccomp:
        install_seccomp(plan)
    if plan.helper_fd is not None and report_fd is not None:
        exec_through_helper(plan, path, report_fd)
    try:
        os.execve(path, plan.args, plan.env)
    except OSError as e:
        code = EXIT_NOT_FOUND if e.errno in (errno.ENOENT, errno.ENOTDIR) else EXIT_CANNOT_EXECUTE
        raise ChildError(f"exec {path}: {e.strerror}", code) from None
