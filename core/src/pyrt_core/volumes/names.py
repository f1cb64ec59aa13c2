"""docker's rule for a volume's name: ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``.  A name is a
directory under ``<root>/volumes``, so the rule is what keeps ``../../etc`` or ``a/b``
from ever becoming a path.  Without ``re`` (the volume commands start lean); the same
rule as :func:`pyrt_core.models.check_volume_name` (a unit test compares them)."""
from __future__ import annotations

from ..errors import UsageError

_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("_.-")


def valid(name: str) -> bool:
    return 2 <= len(name) <= 255 and name[0] in _FIRST and all(c in _REST for c in name[1:])


def check_name(name: str, what: str = "create") -> str:
    if not valid(name):
        raise UsageError(f"{what} {name}: {name!r} includes invalid characters for a local "
                         "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you "
                         "intended to pass a host directory, use absolute path")
    return name


def anonymous_name() -> str:
    """An anonymous volume's name: 64 hex digits, as docker's."""
    import os

    return os.urandom(32).hex()
