"""Sizes as docker writes them: ``10G``, ``512m``, ``1.5g``, ``64MiB``, ``4096``.

Like docker's ``RAMInBytes``: a number (decimals allowed), an optional space,
an optional unit letter k/m/g/t/p (any case) with an optional ``i``, and an
optional ``b``; every unit is binary (``1k`` = 1024 bytes).  A bare number
is bytes.  Used by the resource flags and by storage drivers' size options.
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
    number, mult = m.group(1), _UNITS[(m.group(2) or "").lower()]
    if "." in number:
        whole, frac = number.split(".")
        return int(whole) * mult + int(frac) * mult // 10 ** len(frac)
    return int(number) * mult


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
