"""Namespace type names (runtime-spec words), their clone flags and /proc file names."""
from __future__ import annotations

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# spec name -> (clone flag, file name under /proc/PID/ns)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "mount": (CLONE_NEWNS, "mnt"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# The order in which an exec joins a container's namespaces: the user namespace
# first (it grants the capabilities needed for the others), the mount namespace
# last (it changes what paths mean).
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "pid", "time", "mount")

_BY_PROC_NAME = {proc: spec for spec, (_, proc) in NAMESPACES.items()}


def clone_flag(name: str) -> int:
    """The CLONE_NEW* flag of a namespace type; ValueError for an unknown name."""
    try:
        return NAMESPACES[name][0]
    except KeyError:
        raise ValueError(f"unknown namespace type {name!r} "
                         f"(known: {', '.join(NAMESPACES)})") from None


def clone_flags(names) -> int:
    """OR of the clone flags of the given namespace type names."""
    flags = 0
    for name in names:
        flags |= clone_flag(name)
    return flags


def proc_name(name: str) -> str:
    """The file name under /proc/PID/ns for a namespace type ("network" -> "net")."""
    clone_flag(name)
    return NAMESPACES[name][1]


def spec_name(proc_file: str) -> str | None:
    """The runtime-spec name for a /proc/PID/ns file name, None for *_for_children."""
    return _BY_PROC_NAME.get(proc_file)


def available(ns_dir: str = "/proc/self/ns") -> list[str]:
    """Namespace types this kernel offers, from the files in /proc/self/ns."""
    import os

    try:
        files = os.listdir(ns_dir)
    except OSError:
        return []
    return sorted(n for n in (spec_name(f) for f in files) if n)
