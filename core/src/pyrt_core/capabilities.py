"""Linux capabilities by name: the kernel's list, Docker's default set, and what
``--cap-add``, ``--cap-drop`` and ``--privileged`` make of it.

Names are the runtime-spec's (``CAP_CHOWN``); a capability's index in
:data:`CAP_NAMES` is the kernel's number (include/uapi/linux/capability.h).
The namespaces plugin turns the names into bit masks and applies them.
"""
from __future__ import annotations

CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

#: Docker's default set (moby oci/caps/defaults.go), in Docker's order
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

ALL = "ALL"


def normalize(name: str) -> str:
    """``chown``, ``CAP_chown`` and ``CAP_CHOWN`` all mean ``CAP_CHOWN``; ``all`` is ``ALL``."""
    n = name.strip().upper()
    if n == ALL:
        return n
    return n if n.startswith("CAP_") else "CAP_" + n


def parse_flag(values, flag: str) -> list[str]:
    """The names given to ``--cap-add``/``--cap-drop`` (each may be comma-separated, as
    podman allows), normalized, in order, once each; UsageError for an unknown one."""
    from .errors import UsageError

    out: list[str] = []
    for value in values or ():
        for part in str(value).split(","):
            if not part.strip():
                raise UsageError(f"invalid {flag} {value!r}: empty capability name")
            name = normalize(part)
            if name != ALL and name not in CAP_NAMES:
                raise UsageError(f"invalid {flag} {value!r}: unknown capability {name!r}")
            if name not in out:
                out.append(name)
    return out


def effective_set(add=(), drop=(), privileged: bool = False,
                  defaults=DEFAULT_CAPS) -> list[str]:
    """The container's capabilities, as Docker computes them: every capability when
    privileged; ``ALL`` in ``add`` gives every one but the dropped; ``ALL`` in ``drop``
    leaves only the added; otherwise the defaults, less the dropped, plus the added."""
    add, drop = list(add), list(drop)
    if privileged:
        return list(CAP_NAMES)
    if ALL in add:
        return [c for c in CAP_NAMES if c not in drop]
    if ALL in drop:
        return [c for c in add if c != ALL]
    caps = [c for c in defaults if c not in drop]
    return caps + [c for c in add if c not in caps]
