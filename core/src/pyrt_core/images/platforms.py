"""Platforms (``os/arch[/variant]``): the host's, and matching the entries of a
manifest list or OCI index against the one wanted (``--platform``).
"""
from __future__ import annotations

import os

__all__ = ["host_platform", "platform_of", "platform_matches"]

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_VARIANT = {"armv7l": "v7", "armv6l": "v6"}


def host_platform() -> str:
    """This machine's platform as ``os/arch[/variant]`` (``linux/amd64``, ``linux/arm/v7``)."""
    m = os.uname().machine  # platform.machine()'s answer, without platform (~1 ms)
    p = f"linux/{_ARCH.get(m, m)}"
    return p + (f"/{_VARIANT[m]}" if m in _VARIANT else "")


def platform_of(desc) -> str:
    """A descriptor's platform as ``os/arch[/variant]``, for messages ("unknown" without one)."""
    p = desc.get("platform") if isinstance(desc, dict) else None
    if not isinstance(p, dict):
        return "unknown"
    s = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return s + (f"/{p['variant']}" if p.get("variant") else "")


def platform_matches(desc, want: str) -> bool:
    """Whether the descriptor ``desc`` (a dict) of a manifest list or index is for
    platform ``want`` (``os/arch[/variant]``): os and architecture equal, and the
    variant too when both name one."""
    p = desc.get("platform")
    if not isinstance(p, dict):
        return False
    parts = want.split("/")
    if p.get("os") != parts[0] or p.get("architecture") != parts[1]:
        return False
    if len(parts) > 2 and p.get("variant") and p.get("variant") != parts[2]:
        return False
    return True
