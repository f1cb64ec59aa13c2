"""Entry points of the installed distributions, with a cache for the CLI's hot path.

Scanning every installed distribution (``importlib.metadata``) costs tens of
milliseconds per command; ``pyrt run`` must stay lean.  The scan result is
cached in ``$XDG_CACHE_HOME/pyrt/`` (default ``~/.cache/pyrt``) under a key
made of ``sys.path`` and the modification times of its directories, which
change whenever a distribution is installed or removed (the same rule
stevedore's cache uses).  A cache that cannot be read or written is simply
not used.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

import attrs


@attrs.frozen
class EntryPoint:
    name: str
    value: str  # "module:attr" or "module"
    group: str
    distribution: str | None = None
    version: str | None = None

    def load(self):
        import importlib

        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr else ():
            obj = getattr(obj, part)
        return obj


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256()
    for p in sys.path:
        try:
            mtime = os.stat(p or ".").st_mtime_ns
        except OSError:
            mtime = -1
        key.update(f"{p}\0{mtime}\0".encode())
    return os.path.join(base, "pyrt", f"entry-points-{key.hexdigest()[:32]}.json")


def _scan() -> dict[str, list[list]]:
    import importlib.metadata

    out: dict[str, list[list]] = {}
    seen = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name in seen:  # the first on sys.path wins, as for imports
            continue
        seen.add(name)
        for ep in dist.entry_points:
            if ep.group.startswith("pyrt."):
                out.setdefault(ep.group, []).append([ep.name, ep.value, name, dist.version])
    return out


_memo: dict[str, list[list]] | None = None


def _all() -> dict[str, list[list]]:
    global _memo
    if _memo is not None:
        return _memo
    path = _cache_path()
    try:
        with open(path) as f:
            _memo = json.load(f)
            return _memo
    except (OSError, ValueError):
        pass
    _memo = _scan()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(_memo, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return _memo


def entry_points(group: str) -> list[EntryPoint]:
    """Entry points of ``group`` (only ``pyrt.*`` groups are indexed), sorted by name."""
    return sorted((EntryPoint(n, v, group, d, ver) for n, v, d, ver in _all().get(group, [])),
                  key=lambda e: e.name)


def forget() -> None:
    """Drop the in-process memo (tests that install fake distributions call this)."""
    global _memo
    _memo = None
