"""Sizes and percentages as docker's ``dm.*`` options write them.

Sizes: a number (decimals allowed), an optional space, an optional unit
letter k/m/g/t/p (any case), an optional ``i`` and an optional ``b``; every
unit is binary (``1k`` = 1024 bytes), a bare number is bytes.
Percentages: ``10%`` or ``10``, from 0 to 99.
"""
from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?(?:([kKmMgGtTpP])[iI]?)?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes for ``text``; ValueError when it is not a size."""
    m = _SIZE_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"invalid size {text!r} (examples: 10G, 512m, 1048576)")
    number, unit = m.group(1), (m.group(2) or "").lower()
    mult = _UNITS[unit]
    if "." in number:
        whole, frac = number.split(".")
        return int(whole) * mult + int(frac) * mult // 10 ** len(frac)
    return int(number) * mult


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


def human_size(n: int) -> str:
    """``n`` bytes in binary units with one decimal: ``64 MiB``, ``1.5 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"
        value /= 1024
    return f"{n} B"
