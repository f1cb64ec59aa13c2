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

import os
import sys

from .records import FrozenRecord


class EntryPoint(FrozenRecord):
    """One entry point (immutable).  A plain class (pyrt_core.records), not attrs:
    importing attrs costs ~25 ms, and the runtime reads entry points on its hot path."""

    __slots__ = ("name", "value", "group", "distribution", "version")
    name: str
    value: str  # "module:attr" or "module"
    group: str
    distribution: str | None
    version: str | None

    def __init__(self, name: str, value: str, group: str, distribution: str | None = None,
                 version: str | None = None):
        self._set(name, value, group, distribution, version)

    def load(self):
        module, _, attr = self.value.partition(":")
        module = module.strip()
        __import__(module)  # not importlib.import_module: importlib costs an import
        obj = sys.modules[module]
        for part in attr.strip().split(".") if attr else ():
            obj = getattr(obj, part)
        return obj


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    import zlib  # not hashlib: loading OpenSSL costs ~3 ms of every command's start-up

    text = "".join(f"{p}\0{_mtime(p)}\0" for p in sys.path).encode()
    key = f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}{len(text):x}"
    return os.path.join(base, "pyrt", f"entry-points-{key}.json")


def _mtime(p: str) -> int:
    try:
        return os.stat(p or ".").st_mtime_ns
    except OSError:
        return -1


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
        from .jsonlean import loads  # not json (re, enum): the runtime's delete reads this

        with open(path, "rb") as f:
            _memo = loads(f.read())
            return _memo
    except (OSError, ValueError):
        pass
    _memo = _scan()
    import json

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


def implemented_hooks() -> set[str] | None:
    """Names of the hooks the core and the installed plugins implement, as recorded by
    the last full plugin load (:func:`record_hooks`); None when not recorded, or when a
    plugin's module changed since.  Lets a command skip loading every plugin for an
    event hook nobody implements (``Engine._notify``)."""
    calls = hook_calls()
    return None if calls is None else set(calls)


def hook_calls() -> dict | None:
    """Per implemented hook, how to call its implementations without pluggy (see
    :func:`pyrt_core.plugins._call_plan`; None: only pluggy can), as recorded by the last
    full plugin load; None when not recorded, or when a plugin's module changed since."""
    from .jsonlean import loads  # not json: ~6 ms (re, enum)

    try:
        with open(_hooks_path(), "rb") as f:
            d = loads(f.read())
        if any(_mtime(path) != mtime for path, mtime in d["files"].items()):
            return None
        calls = d["calls"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return calls if isinstance(calls, dict) else None


def record_hooks(calls: dict, files) -> None:
    """Record what :func:`hook_calls` reads: the call plan of every implemented hook, and
    the plugin module files whose change makes the record stale.  A cache that cannot be
    written is not used."""
    import json

    from .fsutil import atomic_write

    path = _hooks_path()
    text = json.dumps({"calls": calls, "files": {p: _mtime(p) for p in files}}, sort_keys=True)
    try:
        with open(path) as f:
            if f.read() == text:
                return  # unchanged: no write on every plugin load
    except OSError:
        pass
    try:
        atomic_write(path, text, durable=False)
    except OSError:
        pass


def _hooks_path() -> str:
    return _cache_path().replace("entry-points-", "hooks-")


def forget() -> None:
    """Drop the in-process memo (tests that install fake distributions call this)."""
    global _memo
    _memo = None
