"""Entry points of the installed distributions, with a cache for the CLI's hot path.

Scanning every installed distribution (``importlib.metadata``) costs tens of
milliseconds per command; ``pyrt run`` must stay lean.  The scan result is
cached in ``$XDG_CACHE_HOME/pyrt/`` (default ``~/.cache/pyrt``) under a key
made of ``sys.path`` and the modification times of its directories, which
change whenever a distribution is installed or removed (the same rule
stevedore's cache uses).  A cache that cannot be read or written is simply
not used.

What root reads from a cache decides what it imports and calls, so:

* the cache directory and its files are used only when no other user can have
  written them (:mod:`pyrt_core.trusted`: the whole directory chain owned by the
  caller or root and not writable by group or others, files opened with
  ``O_NOFOLLOW`` and checked with ``fstat``).  Otherwise nothing is cached: every
  command scans (slower, never wrong);
* the index names, for each distribution, the ``entry_points.txt`` its entries
  were read from; before an entry is used its distribution's file is read again
  and must declare exactly the recorded ``pyrt.*`` entries (a few small files:
  not the scan of every distribution the cache saves).  An entry no installed
  distribution declares (``os:system``) makes the index stale: it is rebuilt;
* the hook plans (:func:`hook_calls`) may only name ``pyrt_core.builtin`` and
  the modules of verified ``pyrt.plugins`` entry points
  (:func:`is_plugin_module`); :mod:`pyrt_core.hookcall` checks the rest.
"""
from __future__ import annotations

import os
import sys

from . import trusted
from .records import FrozenRecord

#: the layout of the index file (another is rebuilt), and its name: not the name of the
#: first layout's file, which older pyrt versions would misread
_FORMAT = 2
_INDEX = "entry-index"
#: the core's own plugin, registered by name (not an entry point)
CORE_PLUGIN_MODULE = "pyrt_core.builtin"
PLUGIN_GROUP = "pyrt.plugins"


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

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    def load(self):
        module, _, attr = self.value.partition(":")
        module = module.strip()
        __import__(module)  # not importlib.import_module: importlib costs an import
        obj = sys.modules[module]
        for part in attr.strip().split(".") if attr else ():
            obj = getattr(obj, part)
        return obj


def _wanted_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "pyrt")


def cache_dir() -> str | None:
    """``$XDG_CACHE_HOME/pyrt`` (made 0700 when missing) when no other user can write
    there; None when it cannot be used (then nothing is cached)."""
    d = _wanted_dir()
    return None if trusted.why_untrusted_dir(d, create=True) else d


def why_no_cache() -> str | None:
    """Why :func:`cache_dir` is None (``pyrt info`` shows it), or None."""
    return trusted.why_untrusted_dir(_wanted_dir(), create=True)


_keyed: tuple | None = None  # (sys.path it was made for, key)


def _key() -> str:
    """The cache key: sys.path and its directories' modification times (made once per
    process and sys.path: the index and the hook plans share it)."""
    global _keyed
    path = tuple(sys.path)
    if _keyed is not None and _keyed[0] == path:
        return _keyed[1]
    import zlib  # not hashlib: loading OpenSSL costs ~3 ms of every command's start-up

    text = "".join(f"{p}\0{_mtime(p)}\0" for p in path).encode()
    key = f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}{len(text):x}"
    _keyed = (path, key)
    return key


def _path(kind: str) -> str | None:
    d = cache_dir()
    return None if d is None else os.path.join(d, f"{kind}-{_key()}.json")


def _mtime(p: str) -> int:
    try:
        return os.stat(p or ".").st_mtime_ns
    except OSError:
        return -1


# -- the index --------------------------------------------------------------------------

def _scan() -> list[list]:
    """``[[distribution, version, metadata directory, [[group, name, value], ...]], ...]``
    for the distributions with ``pyrt.*`` entry points, the first of a name on sys.path."""
    import importlib.metadata

    out: list[list] = []
    seen = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name in seen:  # the first on sys.path wins, as for imports
            continue
        seen.add(name)
        entries = [[ep.group, ep.name, ep.value] for ep in dist.entry_points
                   if ep.group.startswith("pyrt.")]
        if entries:
            path = getattr(dist, "_path", None)  # PathDistribution: its .dist-info directory
            out.append([name, dist.version, str(path) if path is not None else None, entries])
    return out


def _declared(meta_dir) -> set | None:
    """The ``pyrt.*`` entries ``meta_dir/entry_points.txt`` declares, parsed as
    importlib.metadata parses it (``Sectioned``); None when it cannot be read."""
    if not isinstance(meta_dir, str) or not os.path.isabs(meta_dir):
        return None
    try:
        with open(os.path.join(meta_dir, "entry_points.txt"), "rb") as f:
            text = f.read().decode()
    except (OSError, UnicodeDecodeError):
        return None
    out = set()
    group = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line.strip("[]")
            continue
        if group is None or not group.startswith("pyrt."):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            return None
        out.add((group, name.strip(), value.strip()))
    return out


def _verified(dists) -> bool:
    """Whether every recorded distribution lives in a ``sys.path`` directory and its
    ``entry_points.txt`` declares exactly the recorded ``pyrt.*`` entries."""
    if not isinstance(dists, list):
        return False
    path_dirs = {os.path.abspath(p or ".") for p in sys.path}
    seen = set()
    for d in dists:
        try:
            name, _version, meta_dir, entries = d
            recorded = {(str(g), str(n), str(v)) for g, n, v in entries}
        except (TypeError, ValueError):
            return False
        if name in seen or not isinstance(meta_dir, str):
            return False
        seen.add(name)
        if os.path.dirname(os.path.abspath(meta_dir)) not in path_dirs:
            return False
        if not all(g.startswith("pyrt.") for g, _, _ in recorded):
            return False
        if _declared(meta_dir) != recorded:
            return False
    return True


_memo: dict | None = None  # {"dists": [...], "groups": {group: [EntryPoint, ...]}}


def _index(dists: list) -> dict:
    groups: dict[str, list[EntryPoint]] = {}
    for name, version, _, entries in dists:
        for group, ep_name, value in entries:
            groups.setdefault(group, []).append(EntryPoint(ep_name, value, group, name, version))
    return {"dists": dists, "groups": groups}


def _all() -> dict:
    global _memo
    if _memo is not None:
        return _memo
    path = _path(_INDEX)
    data = trusted.read(path) if path else None
    if data is not None:
        from .jsonlean import loads  # not json (re, enum): the runtime's delete reads this

        try:
            doc = loads(data)
            if isinstance(doc, dict) and doc.get("format") == _FORMAT and _verified(doc.get("dists")):
                _memo = _index(doc["dists"])
                return _memo
        except ValueError:
            pass
    dists = _scan()
    _memo = _index(dists)
    if path:
        from .jsonlean import dumps

        trusted.write(path, dumps({"format": _FORMAT, "dists": dists}))
    return _memo


def entry_points(group: str) -> list[EntryPoint]:
    """Entry points of ``group`` (only ``pyrt.*`` groups are indexed), sorted by name."""
    return sorted(_all()["groups"].get(group, []), key=lambda e: e.name)


def is_plugin_module(module: str) -> bool:
    """Whether ``module`` is the core's plugin or the module of an installed (verified)
    ``pyrt.plugins`` entry point: the only modules a hook plan may name."""
    if module == CORE_PLUGIN_MODULE:
        return True
    return any(ep.module == module for ep in _all()["groups"].get(PLUGIN_GROUP, []))


# -- the hook plans ---------------------------------------------------------------------

def hook_calls() -> dict | None:
    """Per implemented hook, how to call its implementations without pluggy (see
    :func:`pyrt_core.plugins.call_plan`; None: only pluggy can), as recorded by the last
    full plugin load; None when not recorded, when a plugin's module changed since, or
    when the record is not to be trusted (written by another user, or naming a module
    that is not an installed plugin's: :func:`is_plugin_module`)."""
    path = _path("hooks")
    data = trusted.read(path) if path else None
    if data is None:
        return None
    from .jsonlean import loads  # not json: ~6 ms (re, enum)

    try:
        d = loads(data)
        if any(_mtime(path) != mtime for path, mtime in d["files"].items()):
            return None
        calls = d["calls"]
        if not isinstance(calls, dict):
            return None
        modules = {impl[0] for plan in calls.values() if plan is not None
                   for impl in plan["impls"]}
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    if not all(isinstance(m, str) and is_plugin_module(m) for m in modules):
        return None
    return calls


def record_hooks(calls: dict, files) -> None:
    """Record what :func:`hook_calls` reads: the call plan of every implemented hook, and
    the plugin module files whose change makes the record stale.  A cache that cannot be
    written is not used."""
    import json

    path = _path("hooks")
    if path is None:
        return
    text = json.dumps({"calls": calls, "files": {p: _mtime(p) for p in files}}, sort_keys=True)
    if trusted.read(path) == text.encode():
        return  # unchanged: no write on every plugin load
    trusted.write(path, text)


def discard_hook_calls() -> None:
    """Remove the recorded hook plans (found wrong when used): the next full plugin load
    records them again."""
    path = _path("hooks")
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def forget() -> None:
    """Drop the in-process memos (tests that install fake distributions or change the
    cache directory call this)."""
    global _memo, _keyed
    _memo = _keyed = None
    trusted.forget()
