"""Capability names and numbers, set arithmetic, and applying a process's sets.

Names are the runtime-spec's (``CAP_CHOWN``, listed in :mod:`pyrt_core.capabilities`);
numbers are the kernel's.  The
runtime resolves a :class:`pyrt_core.runtime.config.Capabilities` into bit masks
in the parent (:func:`resolve`, errors early), and the child applies them
(:func:`drop_bounding` before switching user, :func:`apply` after).
"""
from __future__ import annotations

from pyrt_core.api import CAP_NAMES, DEFAULT_CAPS, TupleRecord  # noqa: F401 - re-exported
from pyrt_core.api import normalize_capability as normalize  # noqa: F401 - re-exported

CAP_NUMBERS = {name: n for n, name in enumerate(CAP_NAMES)}
CAP_LAST_KNOWN = len(CAP_NAMES) - 1


class UnknownCapability(ValueError):
    pass


def number(name: str) -> int:
    try:
        return CAP_NUMBERS[normalize(name)]
    except KeyError:
        raise UnknownCapability(f"unknown capability {name!r}") from None


def name(n: int) -> str:
    return CAP_NAMES[n] if 0 <= n < len(CAP_NAMES) else f"CAP_{n}"


def last_cap(path: str = "/proc/sys/kernel/cap_last_cap") -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return CAP_LAST_KNOWN


def all_mask(last: int) -> int:
    return (1 << (last + 1)) - 1


def to_mask(names, last: int = CAP_LAST_KNOWN) -> int:
    """Bit mask of the named capabilities.

    Unknown names raise :class:`UnknownCapability`; known capabilities the kernel
    does not have (numbers above ``last``) are left out, as runc does.
    """
    mask = 0
    for nm in names:
        n = number(nm)
        if n <= last:
            mask |= 1 << n
    return mask


def from_mask(mask: int) -> list[str]:
    """Names of the bits set in mask, lowest number first (``CAP_n`` for unknown bits)."""
    out = []
    n = 0
    while mask >> n:
        if mask >> n & 1:
            out.append(name(n))
        n += 1
    return out


def parse_status_mask(hex_value: str) -> int:
    """A ``CapEff:``-style value from /proc/PID/status."""
    return int(hex_value.strip(), 16)


class CapSets(TupleRecord):
    """Resolved capability sets as masks, ready for the child."""

    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int
    last: int


def resolve(capabilities, last: int | None = None, available: int | None = None) -> CapSets:
    """Turn a Capabilities object into masks.

    ``available`` (default: this process's permitted set) limits what can be
    granted: a capability the runtime itself lacks (on this host
    CAP_SYS_RESOURCE is not in the bounding set) is left out instead of failing
    the container, so ``--privileged`` still works.  The kernel requires
    effective, inheritable and ambient to be subsets of permitted (ambient also
    of inheritable); the masks are trimmed to satisfy that.
    """
    if last is None:
        last = last_cap()
    if available is None:
        from . import syscalls

        available = syscalls.capget()[1]
    available &= all_mask(last)
    bounding = to_mask(capabilities.bounding, last) & available
    permitted = to_mask(capabilities.permitted, last) & available
    effective = to_mask(capabilities.effective, last) & permitted
    inheritable = to_mask(capabilities.inheritable, last) & available
    ambient = to_mask(capabilities.ambient, last) & permitted & inheritable
    return CapSets(bounding, effective, permitted, inheritable, ambient, last)


def drop_bounding(sets: CapSets) -> None:
    """Drop every capability not in the bounding set (needs CAP_SETPCAP: do it as root)."""
    from . import syscalls

    for n in range(sets.last + 1):
        if not sets.bounding >> n & 1:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, n, what=f"PR_CAPBSET_DROP {name(n)}")


def apply(sets: CapSets) -> None:
    """Set effective/permitted/inheritable, then the ambient set."""
    from . import syscalls

    syscalls.capset(sets.effective, sets.permitted, sets.inheritable)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL,
                   what="PR_CAP_AMBIENT_CLEAR_ALL")
    for n in range(sets.last + 1):
        if sets.ambient >> n & 1:
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, n,
                           what=f"PR_CAP_AMBIENT_RAISE {name(n)}")
