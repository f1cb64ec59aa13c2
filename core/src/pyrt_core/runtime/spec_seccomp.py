"""``linux.seccomp`` JSON -> :class:`~pyrt_core.runtime.seccomp_config.SeccompConfig`.

Part of the spec conversion (:mod:`pyrt_core.runtime.spec`).  Everything a kernel or
libseccomp could not act on is refused here with one line: an unknown action,
operator, architecture or flag, an ``errnoRet`` on an action that returns no errno, a
``listenerPath`` (seccomp user notification is not supported).  Syscall *names* are
not checked: a name this kernel or libseccomp does not know is skipped when compiling,
as runc does.
"""
from __future__ import annotations

from ..errors import UsageError
from .seccomp_config import (
    ACTIONS, ARCHITECTURES, FLAGS, OPERATORS, SeccompArg, SeccompConfig, SeccompRule,
)

_U64 = 1 << 64


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
