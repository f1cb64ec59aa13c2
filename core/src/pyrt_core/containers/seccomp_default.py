"""pyrt's default seccomp profile, equivalent to Docker's, and docker-format profiles.

The default denies (EPERM) every system call not listed, allows the ordinary
ones (files, memory, processes, signals, sockets, IPC, time), and opens more
only when the container holds the capability that makes them useful: e.g.
``mount``/``unshare``/``setns`` with CAP_SYS_ADMIN, ``ptrace`` with
CAP_SYS_PTRACE, module loading with CAP_SYS_MODULE.  Without CAP_SYS_ADMIN,
``clone`` may not create namespaces and ``clone3`` answers ENOSYS (so that
libc falls back to ``clone``, whose flags can be checked); ``socket`` refuses
AF_ALG and AF_VSOCK; ``personality`` accepts only the harmless personas.

The tables below are pyrt's own: whitespace-separated syscall names grouped
by topic, the conditional groups keyed by capability or machine.
:func:`default_profile` resolves them for one container into a runtime-spec
``linux.seccomp`` object.  :func:`profile_from_docker` does the same for a
user's profile in Docker's format (``archMap``, ``includes``/``excludes``).
"""
from __future__ import annotations

import os

from ..errors import UsageError

TYPE_CHECKING = False  # (not typing's: run builds the default profile)
if TYPE_CHECKING:
    from typing import Iterable

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
EPERM, ENOSYS = 1, 38
AF_ALG, AF_VSOCK = 38, 40
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
# personality(2) values a container may ask for: PER_LINUX, PER_LINUX32,
# UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query only)
SAFE_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# -- always allowed -----------------------------------------------------------------

_ALWAYS = {
    "files": """
        access faccessat faccessat2 chdir fchdir getcwd umask
        chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32 fchownat lchown lchown32
        open openat openat2 creat close close_range dup dup2 dup3 fcntl fcntl64 flock ioctl
        name_to_handle_at read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
        lseek _llseek sendfile sendfile64 copy_file_range splice tee vmsplice
        fallocate fadvise64 fadvise64_64 readahead fsync fdatasync sync syncfs sync_file_range
        truncate truncate64 ftruncate ftruncate64
        link linkat symlink symlinkat unlink unlinkat rename renameat renameat2
        mkdir mkdirat rmdir mknod mknodat readlink readlinkat
        utime utimes utimensat utimensat_time64 futimesat getdents getdents64
        stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64 cachestat statmount listmount
    """,
    "extended attributes": """
        getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat
        listxattr llistxattr flistxattr listxattrat
        removexattr lremovexattr fremovexattr removexattrat
    """,
    "waiting for events": """
        pipe pipe2 eventfd eventfd2 signalfd signalfd4
        timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
        epoll_wait epoll_wait_old poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
        ioprio_get ioprio_set
    """,
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 mlockall
        munlock munlockall remap_file_pages membarrier memfd_create memfd_secret
        pkey_alloc pkey_free pkey_mprotect map_shadow_stack mseal process_mrelease
    """,
    "processes": """
        fork vfork execve execveat exit exit_group wait4 waitid waitpid
        kill tkill tgkill pidfd_open pidfd_send_signal
        getpid getppid gettid getpgid getpgrp setpgid getsid setsid
        prctl set_tid_address set_robust_list get_robust_list rseq restart_syscall seccomp
        getrlimit setrlimit ugetrlimit prlimit64 getrusage times getpriority setpriority
        getcpu sysinfo uname set_thread_area get_thread_area uretprobe riscv_hwprobe
        landlock_create_ruleset landlock_add_rule landlock_restrict_self capget capset
        sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam
        sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max
        sched_get_priority_min sched_rr_get_interval sched_rr_get_interval_time64 sched_yield
    """,
    "identity": """
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
        getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
        setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
        setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
        setgroups setgroups32
    """,
    "signals and time": """
        rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
        rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask
        sigreturn pause alarm
        time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64
        clock_nanosleep clock_nanosleep_time64 nanosleep adjtimex clock_adjtime clock_adjtime64
        getitimer setitimer timer_create timer_delete timer_getoverrun timer_gettime
        timer_gettime64 timer_settime timer_settime64
        futex futex_time64 futex_wait futex_wake futex_waitv futex_requeue getrandom
    """,
    "sockets (socket(2) itself is checked below)": """
        accept accept4 bind connect listen getpeername getsockname getsockopt setsockopt
        recv recvfrom recvmsg recvmmsg recvmmsg_time64 send sendto sendmsg sendmmsg
        shutdown socketpair socketcall
    """,
    "System V IPC and POSIX message queues": """
        ipc msgget msgctl msgrcv msgsnd semget semctl semop semtimedop semtimedop_time64
        shmat shmctl shmdt shmget mq_open mq_unlink mq_getsetattr mq_notify
        mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
    """,
}

# Since Linux 4.8 ptrace cannot be used to get around seccomp: allowed for all then.
_FROM_KERNEL_4_8 = "ptrace process_vm_readv process_vm_writev"

# -- allowed with a capability ------------------------------------------------------

_WITH_CAP = {
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_ADMIN": """
        bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
        lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
        open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns
        syslog umount umount2 unshare
    """,
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# -- per machine ------------------------------------------------------------------------

# os.uname().machine -> (Docker's name for it, runtime-spec architectures the filter covers)
_MACHINES = {
    "x86_64": ("amd64", ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    "i686": ("x86", ("SCMP_ARCH_X86",)),
    "i386": ("x86", ("SCMP_ARCH_X86",)),
    "aarch64": ("arm64", ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")),
    "armv7l": ("arm", ("SCMP_ARCH_ARM",)),
    "s390x": ("s390x", ("SCMP_ARCH_S390X", "SCMP_ARCH_S390")),
    "riscv64": ("riscv64", ("SCMP_ARCH_RISCV64",)),
    "loongarch64": ("loongarch64", ("SCMP_ARCH_LOONGARCH64",)),
    "ppc64le": ("ppc64le", ()),
    "mips64": ("mips64", ("SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
}

# Docker machine names -> their extra calls
_ON_MACHINE = (
    (("ppc64le",), "sync_file_range2 swapcontext"),
    (("arm", "arm64"), "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint "
                       "cacheflush set_tls"),
    (("amd64", "x32"), "arch_prctl"),
    (("amd64", "x32", "x86"), "modify_ldt"),
    (("s390", "s390x"), "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
    (("riscv64",), "riscv_flush_icache"),
)


def _names(text: str) -> list[str]:
    return text.split()


def always_allowed() -> list[str]:
    """Every name the default profile allows unconditionally, in table order."""
    out: list[str] = []
    for text in _ALWAYS.values():
        out += _names(text)
    return out


def _machine(machine: str | None) -> tuple[str, tuple[str, ...]]:
    machine = machine or os.uname().machine
    return _MACHINES.get(machine, (machine, ()))


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of a kernel release string such as ``6.1.0-18-amd64``."""
    text = release or os.uname().release
    parts = text.split(".", 2)
    if len(parts) < 2:
        return (0, 0)
    minor = parts[1]
    digits = len(minor) - len(minor.lstrip("0123456789"))  # re.match(r"(\d+)\.(\d+)")
    if not parts[0].isdigit() or not parts[0].isascii() or not digits:
        return (0, 0)
    return (int(parts[0]), int(minor[:digits]))


def _arg_rules(name: str, index: int, values, op: str = "SCMP_CMP_EQ") -> list[dict]:
    return [{"names": [name], "action": ALLOW,
             "args": [{"index": index, "value": v, "op": op}]} for v in values]


def default_profile(capabilities: Iterable[str], machine: str | None = None,
                    kernel: tuple[int, int] | None = None) -> dict:
    """The runtime-spec ``linux.seccomp`` for a container whose bounding set is
    ``capabilities`` (capability names, ``CAP_`` prefix), on ``machine``
    (``os.uname().machine``, default this one) and ``kernel`` (major, minor)."""
    caps = set(capabilities)
    docker_arch, arches = _machine(machine)
    kernel = kernel or kernel_version()
    allowed = always_allowed()
    if kernel >= (4, 8):
        allowed += _names(_FROM_KERNEL_4_8)
    for arch_names, text in _ON_MACHINE:
        if docker_arch in arch_names:
            allowed += _names(text)
    for cap, text in _WITH_CAP.items():
        if cap in caps:
            allowed += _names(text)
    rules = [{"names": list(dict.fromkeys(allowed)), "action": ALLOW}]
    # socket(2): every address family but AF_ALG (38) and AF_VSOCK (40)
    rules.append({"names": ["socket"], "action": ALLOW,
                  "args": [{"index": 0, "value": AF_ALG, "op": "SCMP_CMP_LT"}]})
    rules += _arg_rules("socket", 0, [AF_ALG + 1])
    rules.append({"names": ["socket"], "action": ALLOW,
                  "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_GT"}]})
    rules += _arg_rules("personality", 0, SAFE_PERSONAS)
    if "CAP_SYS_ADMIN" not in caps:
        # clone without namespace flags; on s390 the flags are the second argument
        index = 1 if docker_arch in ("s390", "s390x") else 0
        rules.append({"names": ["clone"], "action": ALLOW,
                      "args": [{"index": index, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]})
        # clone3 passes its flags in memory, out of the filter's reach: make libc fall back
        rules.append({"names": ["clone3"], "action": ERRNO, "errnoRet": ENOSYS})
    profile = {"defaultAction": ERRNO, "defaultErrnoRet": EPERM, "syscalls": rules}
    if arches:
        profile["architectures"] = list(arches)
    return profile


# -- Docker-format profiles (--security-opt seccomp=FILE) ------------------------------------

def _applies(cond: dict | None, caps: set, docker_arch: str, kernel: tuple[int, int],
             include: bool, where: str) -> bool:
    """Whether an ``includes`` (include=True) or ``excludes`` filter lets a rule in."""
    if not cond:
        return True
    if not isinstance(cond, dict):
        raise UsageError(f"invalid seccomp profile: {where} must be an object")
    arches = cond.get("arches") or []
    want_caps = cond.get("caps") or []
    min_kernel = cond.get("minKernel")
    if min_kernel:
        try:
            mk = tuple(int(x) for x in str(min_kernel).split(".")[:2])
            mk = mk + (0,) * (2 - len(mk))
        except ValueError:
            raise UsageError(f"invalid seccomp profile: {where}.minKernel "
                             f"{min_kernel!r} is not a kernel version") from None
    if include:
        if arches and docker_arch not in arches:
            return False
        if want_caps and not all(c in caps for c in want_caps):
            return False
        if min_kernel and kernel < mk:
            return False
        return True
    if arches and docker_arch in arches:
        return False
    if want_caps and any(c in caps for c in want_caps):
        return False
    if min_kernel and kernel >= mk:
        return False
    return True


def profile_from_docker(doc: dict, capabilities: Iterable[str], machine: str | None = None,
                        kernel: tuple[int, int] | None = None) -> dict | None:
    """Resolve a profile in Docker's format for one container, as Docker does:
    ``archMap`` picks this machine's architectures; each rule's ``includes``
    (all of: arches, caps, minKernel) and ``excludes`` (any of) decide whether it
    applies.  A plain runtime-spec ``linux.seccomp`` object passes through.
    None for a profile with neither a default action nor rules (no filter)."""
    if not isinstance(doc, dict):
        raise UsageError("invalid seccomp profile: not a JSON object")
    caps = set(capabilities)
    docker_arch, _ = _machine(machine)
    kernel = kernel or kernel_version()
    if not doc.get("defaultAction") and not doc.get("syscalls"):
        return None
    if doc.get("architectures") and doc.get("archMap"):
        raise UsageError("invalid seccomp profile: both 'architectures' and 'archMap' are "
                         "given; use one of them")
    out = {k: v for k, v in doc.items()
           if k in ("defaultAction", "defaultErrnoRet", "architectures", "flags",
                    "listenerPath", "listenerMetadata")}
    archmap = doc.get("archMap") or []
    if not isinstance(archmap, list):
        raise UsageError("invalid seccomp profile: archMap must be a list")
    native = {"amd64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "arm64": "SCMP_ARCH_AARCH64",
              "arm": "SCMP_ARCH_ARM", "s390x": "SCMP_ARCH_S390X", "riscv64": "SCMP_ARCH_RISCV64",
              "ppc64le": "SCMP_ARCH_PPC64LE", "loongarch64": "SCMP_ARCH_LOONGARCH64",
              "mips64": "SCMP_ARCH_MIPS64"}.get(docker_arch)
    for entry in archmap:
        if isinstance(entry, dict) and entry.get("architecture") == native:
            out["architectures"] = [native] + list(entry.get("subArchitectures") or [])
            break
    rules = []
    syscalls = doc.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise UsageError("invalid seccomp profile: syscalls must be a list")
    for i, call in enumerate(syscalls):
        where = f"syscalls[{i}]"
        if not isinstance(call, dict):
            raise UsageError(f"invalid seccomp profile: {where} must be an object")
        if call.get("name") and call.get("names"):
            raise UsageError(f"invalid seccomp profile: {where} has both 'name' and 'names'")
        if not _applies(call.get("excludes"), caps, docker_arch, kernel, False, where + ".excludes"):
            continue
        if not _applies(call.get("includes"), caps, docker_arch, kernel, True, where + ".includes"):
            continue
        rule = {k: v for k, v in call.items() if k in ("names", "action", "errnoRet", "args")}
        if call.get("name"):
            rule["names"] = [call["name"]]
        rules.append(rule)
    out["syscalls"] = rules
    return out


def load_profile(path: str) -> str:
    """Read a ``--security-opt seccomp=FILE`` profile; its text is kept with the
    container (as Docker does), checked to be a JSON object here."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"opening seccomp profile {path} failed: {e.strerror}") from None
    parse_profile(text, path)
    return text


def parse_profile(text: str, what: str = "seccomp profile") -> dict:
    import json

    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError(f"decoding seccomp profile {what} failed: {e}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"decoding seccomp profile {what} failed: not a JSON object")
    return doc


def spec_seccomp(setting: str | None, capabilities: Iterable[str]) -> dict | None:
    """``linux.seccomp`` for a container: ``setting`` is None (pyrt's default
    profile), ``"unconfined"`` (no filter) or a Docker-format profile's text."""
    if setting == "unconfined":
        return None
    if setting is None:
        return default_profile(capabilities)
    return profile_from_docker(parse_profile(setting), capabilities)


def no_new_privileges(opts: Iterable[str] | str) -> bool:
    """``no_new_privs`` for a container from its ``--security-opt`` values: on unless
    ``no-new-privileges=false`` (pyrt's safer default; Docker's is off)."""
    value = True
    for opt in [opts] if isinstance(opts, str) else opts:
        key, sep, v = opt.partition("=")
        if not sep and ":" in opt:
            key, sep, v = opt.partition(":")
        if key != "no-new-privileges":
            continue
        if v not in ("", "true", "false"):
            raise UsageError(f"invalid --security-opt {opt!r}: no-new-privileges takes "
                             "true or false")
        value = v != "false"
    return value


def parse_security_opts(opts: Iterable[str], capabilities: Iterable[str]) -> str | None:
    """The seccomp setting from Docker's ``--security-opt`` values:
    ``seccomp=unconfined``, ``seccomp=PROFILE.json`` (read and checked now, so a
    bad profile fails before anything is created), ``no-new-privileges[=true|false]``
    (see :func:`no_new_privileges`).  Anything else is refused."""
    from ..runtime.spec_seccomp import seccomp_from_spec

    setting = None
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep and ":" in opt:
            key, sep, value = opt.partition(":")
        if key == "no-new-privileges":
            no_new_privileges(opt)  # checked here; its value is read by no_new_privileges()
            continue
        if key != "seccomp" or not value:
            raise UsageError(f"invalid --security-opt {opt!r}: pyrt supports seccomp=unconfined, "
                             "seccomp=PROFILE.json and no-new-privileges[=true|false]")
        if value == "unconfined":
            setting = "unconfined"
            continue
        text = load_profile(value)
        try:
            seccomp_from_spec(profile_from_docker(parse_profile(text, value), capabilities))
        except UsageError as e:
            detail = str(e).removeprefix("invalid OCI config: linux.seccomp").lstrip(".: ")
            raise UsageError(f"invalid seccomp profile {value}: {detail}") from None
        setting = text
    return setting
