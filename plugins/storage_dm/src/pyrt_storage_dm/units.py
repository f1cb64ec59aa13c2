"""Sizes and percentages as docker's ``dm.*`` options write them.

Sizes come from pyrt-core's docker-style parser (binary units, a bare number
is bytes).  Percentages: ``10%`` or ``10``, from 0 to 99.
"""
from __future__ import annotations

from pyrt_core.api import human_size, parse_size

__all__ = ["human_size", "parse_bool", "parse_percent", "parse_size"]


def parse_percent(text: str) -> int:
    """0..99 for ``10%`` / ``10``; ValueError otherwise."""
    t = str(text).strip()
    if t.endswith("%"):
        t = t[:-1].strip()
    if not t.isdigit() or int(t) >= 100:
        raise ValueError(f"invalid percentage {text!r} (expected 0% to 99%)")
    return int(t)


def parse_bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"invalid boolean {text!r} (expected true or false)")

