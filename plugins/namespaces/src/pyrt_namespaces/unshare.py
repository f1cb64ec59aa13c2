"""unshare: move the calling process into new namespaces (the talk's third interface)."""
from __future__ import annotations

from pyrt_core.errors import RuntimeError_

from . import nstypes, syscalls


def unshare(namespaces) -> None:
    """Move the calling process into new namespaces of the given types."""
    try:
        flags = nstypes.clone_flags(namespaces)
    except ValueError as e:
        raise RuntimeError_(str(e)) from None
    try:
        syscalls.unshare(flags)
    except OSError as e:
        raise RuntimeError_(f"unshare {', '.join(namespaces)}: {e.strerror}") from None
