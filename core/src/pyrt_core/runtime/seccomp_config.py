"""The runtime-spec ``linux.seccomp`` object, validated and typed.

:func:`seccomp_from_spec` turns the JSON object into a :class:`SeccompConfig`
(or None when there is none); the namespaces plugin compiles that into a BPF
program.  Everything a kernel or libseccomp could not act on is refused here
with one line: an unknown action, operator, architecture or flag, an
``errnoRet`` on an action that returns no errno, a ``listenerPath`` (seccomp
user notification is not supported).  Syscall *names* are not checked: a name
this kernel or libseccomp does not know is skipped when compiling, as runc does.

The types are plain immutable classes, not attrs, for the reason
:mod:`pyrt_core.runtime.config` gives (``pyrt-runtime create`` imports them).
"""
from __future__ import annotations

from ..errors import UsageError
from .config import FrozenRecord

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
_U64 = 1 << 64


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


def _bad(msg: str) -> UsageError:
    return UsageError(f"invalid OCI config: linux.seccomp{msg}")


def _uint(v, where: str, limit: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < limit:
        raise _bad(f"{where} must be an integer from 0 to {limit - 1}, not {v!r}")
    return v


def _action(v, where: str) -> str:
    if v == "SCMP_ACT_NOTIFY":
        raise _bad(f"{where}: SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), "
                   "which is not supported")
    if v not in ACTIONS:
        raise _bad(f"{where}: unknown action {v!r} (known: {', '.join(sorted(ACTIONS))})")
    return v


def _errno(action: str, v, where: str, key: str = "errnoRet") -> int | None:
    if v is None:
        return None
    if not ACTIONS[action][1]:
        raise _bad(f"{where}: {key} is only allowed with SCMP_ACT_ERRNO and "
                   f"SCMP_ACT_TRACE, not {action}")
    return _uint(v, f"{where}.{key}", 1 << 16)


def _strings(v, where: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise _bad(f"{where} must be a list of strings")
    return v


def _arg(a, where: str) -> SeccompArg:
    if not isinstance(a, dict):
        raise _bad(f"{where} must be an object")
    if "index" not in a or "op" not in a:
        raise _bad(f"{where} needs index and op")
    index = _uint(a["index"], where + ".index", 6)
    op = a["op"]
    if op not in OPERATORS:
        raise _bad(f"{where}: unknown operator {op!r} (known: {', '.join(sorted(OPERATORS))})")
    return SeccompArg(index, _uint(a.get("value", 0), where + ".value", _U64),
                      _uint(a.get("valueTwo", 0), where + ".valueTwo", _U64), op)


def _rule(s, where: str) -> SeccompRule:
    if not isinstance(s, dict):
        raise _bad(f"{where} must be an object")
    names = _strings(s.get("names"), where + ".names")
    if not names or not all(names):
        raise _bad(f"{where}.names must list at least one syscall")
    action = _action(s.get("action"), where)
    args = s.get("args") or []
    if not isinstance(args, list):
        raise _bad(f"{where}.args must be a list")
    return SeccompRule(tuple(names), action, _errno(action, s.get("errnoRet"), where),
                       tuple(_arg(a, f"{where}.args[{i}]") for i, a in enumerate(args)))


def seccomp_from_spec(d: dict | None) -> SeccompConfig | None:
    """Validate a runtime-spec ``linux.seccomp`` object; None when absent."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise _bad(" must be an object")
    if d.get("listenerPath"):
        raise _bad(f".listenerPath {d['listenerPath']!r}: seccomp user notification "
                   "(a seccomp agent) is not supported")
    default = _action(d.get("defaultAction"), ".defaultAction")
    arches = _strings(d.get("architectures"), ".architectures")
    for a in arches:
        if a not in ARCHITECTURES:
            raise _bad(f".architectures: unknown architecture {a!r}")
    flags = _strings(d.get("flags"), ".flags")
    for f in flags:
        if f not in FLAGS:
            raise _bad(f".flags: unknown or unsupported flag {f!r} "
                       f"(known: {', '.join(sorted(FLAGS))})")
    syscalls = d.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad(".syscalls must be a list")
    return SeccompConfig(
        default_action=default,
        default_errno_ret=_errno(default, d.get("defaultErrnoRet"), "", "defaultErrnoRet"),
        architectures=tuple(dict.fromkeys(arches)),
        flags=tuple(dict.fromkeys(flags)),
        syscalls=tuple(_rule(s, f".syscalls[{i}]") for i, s in enumerate(syscalls)),
    )
