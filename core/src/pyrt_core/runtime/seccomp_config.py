"""The runtime-spec ``linux.seccomp`` object, typed: what the namespaces plugin compiles.

:class:`SeccompConfig` (with its rules and argument checks) is what
:func:`pyrt_core.runtime.spec_seccomp.seccomp_from_spec` makes of the JSON object,
refusing there with one line whatever a kernel or libseccomp could not act on; the
namespaces plugin compiles it into a BPF program with the tables below (libseccomp's
values for each action, operator, architecture and flag).

Style: plain immutable classes (:mod:`pyrt_core.records`), not attrs, for the reason
:mod:`pyrt_core.runtime.config` gives (``pyrt-runtime create`` imports them).
"""
from __future__ import annotations

from ..records import FrozenRecord

# action -> (libseccomp's base value, takes an errno/message number).  SCMP_ACT_NOTIFY
# (0x7FC00000) is not here: it needs a seccomp agent (listenerPath), not supported.
ACTIONS = {
    "SCMP_ACT_KILL": (0x00000000, False),          # the thread (KILL_THREAD)
    "SCMP_ACT_KILL_THREAD": (0x00000000, False),
    "SCMP_ACT_KILL_PROCESS": (0x80000000, False),
    "SCMP_ACT_TRAP": (0x00030000, False),
    "SCMP_ACT_ERRNO": (0x00050000, True),
    "SCMP_ACT_TRACE": (0x7FF00000, True),
    "SCMP_ACT_LOG": (0x7FFC0000, False),
    "SCMP_ACT_ALLOW": (0x7FFF0000, False),
}

# operator -> libseccomp's enum scmp_compare
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# runtime-spec architecture -> libseccomp's name for it
ARCHITECTURES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64", "SCMP_ARCH_LOONGARCH64": "loongarch64",
}

# runtime-spec flag -> the seccomp(2) SECCOMP_FILTER_FLAG_* bit
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}

EPERM = 1


class SeccompArg(FrozenRecord):
    __slots__ = ("index", "value", "value_two", "op")
    index: int
    value: int
    value_two: int
    op: str

    def __init__(self, index: int, value: int, value_two: int, op: str):
        self._set(index, value, value_two, op)


class SeccompRule(FrozenRecord):
    __slots__ = ("names", "action", "errno_ret", "args")
    names: tuple[str, ...]
    action: str
    errno_ret: int | None
    args: tuple[SeccompArg, ...]

    def __init__(self, names: tuple[str, ...], action: str, errno_ret: int | None = None,
                 args: tuple[SeccompArg, ...] = ()):
        self._set(names, action, errno_ret, args)


class SeccompConfig(FrozenRecord):
    __slots__ = ("default_action", "default_errno_ret", "architectures", "flags", "syscalls")
    default_action: str
    default_errno_ret: int | None
    architectures: tuple[str, ...]
    flags: tuple[str, ...]
    syscalls: tuple[SeccompRule, ...]

    def __init__(self, default_action: str, default_errno_ret: int | None = None,
                 architectures: tuple[str, ...] = (), flags: tuple[str, ...] = (),
                 syscalls: tuple[SeccompRule, ...] = ()):
        self._set(default_action, default_errno_ret, architectures, flags, syscalls)

    @property
    def flag_bits(self) -> int:
        bits = 0
        for f in self.flags:
            bits |= FLAGS[f]
        return bits

    def digest(self) -> str:
        """A stable hash of what the filter does (the key of a compiled program)."""
        from ..digest import sha256_hex  # not hashlib: OpenSSL's load costs ~6 ms
        from ..jsonlean import dumps  # json.dumps(doc, separators=(",", ":")), without re

        doc = [self.default_action, self.default_errno_ret, list(self.architectures),
               [[list(r.names), r.action, r.errno_ret,
                 [[a.index, a.value, a.value_two, a.op] for a in r.args]] for r in self.syscalls]]
        return sha256_hex(dumps(doc).encode())


def action_value(action: str, errno_ret: int | None) -> int:
    """libseccomp's 32-bit action value (ERRNO/TRACE default to EPERM, as runc)."""
    base, takes_errno = ACTIONS[action]
    if takes_errno:
        return base | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return base
