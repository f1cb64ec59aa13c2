"""Choosing the storage driver: by name with stevedore, or the first that works.

Order of choice:

1. a driver named by flag, environment or config file (see
   :mod:`pyrt_core.config`) — if the store already holds another driver's
   data this is an error, never a silent switch;
2. the driver recorded in the store (``<root>/storage/driver``);
3. the first of :data:`PRIORITY` that is installed and initialises on this
   host, then any other installed driver in name order.  Only
   "not supported" and "prerequisites missing" move the search on.

How a driver *class* is loaded: one path, :func:`load_driver_class` (stevedore's
``DriverManager`` over the ``pyrt.storage.drivers`` entry points of
:mod:`pyrt_core.entrypoints`, whose cache is checked; stevedore's own unchecked cache
is never read, see :func:`_feed_stevedore`).  Everything that wants a class by name
goes through it: :func:`select_driver` and :func:`probe_all` (``pyrt info``), the
storage-driver conformance suite
(:func:`pyrt_core.testing.storage_conformance.load_driver_entry_point`) and the
benches.  One documented exception:

* :func:`init_driver` first imports the class the store recorded when it was
  created (:func:`_recorded_class`), because importing stevedore and building its
  manager costs about 100 ms, on every command that touches storage.  The record is
  used only while an installed distribution declares exactly that class for that name
  in the same checked entry points; otherwise :func:`load_driver_class` decides.

Tests that construct a driver class directly (``OverlayDriver(home, {})``) test the
class, not its loading.
"""
from __future__ import annotations

import os

from ..errors import DriverNotSupported, DriverPrerequisitesMissing, StorageError, UsageError

DRIVER_GROUP = "pyrt.storage.drivers"
#: the talk's aufs -> btrfs -> devicemapper order, with overlay in aufs's place
PRIORITY = ("overlay", "btrfs", "devicemapper", "vfs")


def installed_drivers() -> list[str]:
    """Names of the installed storage drivers (entry points, not loaded)."""
    from ..entrypoints import entry_points

    return sorted({ep.name for ep in entry_points(DRIVER_GROUP)})


def candidate_order(installed: list[str]) -> list[str]:
    return [n for n in PRIORITY if n in installed] + [n for n in installed if n not in PRIORITY]


def _no_warning(names) -> None:
    """Missing names become our own one-line error below, not a log warning."""


def _feed_stevedore() -> None:
    """Give stevedore our entry points of the driver group.

    stevedore keeps its own cache of every distribution's entry points in
    ``$XDG_CACHE_HOME/python-entrypoints``, read with no ownership check: a user who
    controls that directory would choose the class root instantiates for a driver.
    Its class-level ``ENTRY_POINT_CACHE`` (group -> entry points) is consulted before
    that file; filled from :mod:`pyrt_core.entrypoints` (whose cache is checked), the
    file is neither read nor written for this group."""
    import importlib.metadata

    from stevedore import ExtensionManager

    from ..entrypoints import entry_points

    ExtensionManager.ENTRY_POINT_CACHE[DRIVER_GROUP] = [
        importlib.metadata.EntryPoint(ep.name, ep.value, DRIVER_GROUP)
        for ep in entry_points(DRIVER_GROUP)]


def load_driver_class(name: str):
    """The driver class registered under ``name``, loaded through stevedore."""
    from stevedore import driver as sd
    from stevedore.exception import NoMatches

    _feed_stevedore()
    try:
        mgr = sd.DriverManager(DRIVER_GROUP, name, invoke_on_load=False,
                               on_missing_entrypoints_callback=_no_warning)
    except NoMatches:
        installed = ", ".join(installed_drivers()) or "none"
        raise UsageError(f"unknown storage driver {name!r} (installed: {installed})") from None
    except Exception as e:
        raise StorageError(f"storage driver {name!r} failed to load: {type(e).__name__}: {e}") from None
    return mgr.driver


def driver_home(root: str, name: str) -> str:
    return os.path.join(root, "storage", name)


def _read_record(root: str) -> list[str]:
    try:
        with open(os.path.join(root, "storage", "driver")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def recorded_driver(root: str) -> str | None:
    """The driver this store was created with (first word of ``<root>/storage/driver``)."""
    rec = _read_record(root)
    return rec[0] if rec else None


def _record(root: str, name: str, cls) -> None:
    from ..fsutil import atomic_write

    os.makedirs(os.path.join(root, "storage"), exist_ok=True)
    atomic_write(os.path.join(root, "storage", "driver"),
                 f"{name}\n{cls.__module__}:{cls.__qualname__}\n")


def _recorded_class(root: str, name: str):
    """The class stevedore picked when the store was created, imported directly.

    This keeps stevedore off the hot path of every command.  The record is imported
    only while an installed distribution declares exactly it for this name (the
    entry-point index, cached and checked): a store's file never names the code root
    runs.  Otherwise, or if the import fails (plugin removed or moved), stevedore picks
    again and reports a missing driver properly."""
    rec = _read_record(root)
    if len(rec) < 2 or rec[0] != name:
        return None
    from ..entrypoints import entry_points

    # only what an installed distribution declares for this name is imported
    if rec[1] not in {ep.value.replace(" ", "") for ep in entry_points(DRIVER_GROUP)
                      if ep.name == name}:
        return None
    module, _, attr = rec[1].partition(":")
    try:
        __import__(module)  # not importlib.import_module: importlib imports warnings
        import sys

        obj = sys.modules[module]
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    except Exception:
        return None


def init_driver(root: str, name: str, options: dict[str, str]):
    cls = _recorded_class(root, name) or load_driver_class(name)
    home = driver_home(root, name)
    os.makedirs(home, mode=0o700, exist_ok=True)
    return cls(home, options)


def select_driver(settings, pm=None):
    """Return ``(name, driver)`` for these settings, recording the choice in the store."""
    root = settings.root
    recorded = recorded_driver(root)
    requested = settings.storage_driver
    if requested:
        if recorded and recorded != requested:
            raise UsageError(
                f"the store at {root} holds data of storage driver {recorded!r}; refusing to "
                f"switch to {requested!r} (from {settings.storage_driver_source}). "
                f"Use --storage-driver {recorded} or another --root"
            )
        name = requested
        driver = init_driver(root, name, settings.driver_options(name))
    elif recorded:
        name = recorded
        driver = init_driver(root, name, settings.driver_options(name))
    else:
        reasons = []
        driver = None
        for name in candidate_order(installed_drivers()):
            try:
                driver = init_driver(root, name, settings.driver_options(name))
                break
            except (DriverNotSupported, DriverPrerequisitesMissing) as e:
                reasons.append(f"{name}: {e}")
            except StorageError as e:  # a broken plugin: skip it, as if not installed
                reasons.append(f"{name}: {e}")
        if driver is None:
            raise StorageError("no usable storage driver on this host (" + "; ".join(reasons) + ")")
    if recorded != name or len(_read_record(root)) < 2:
        _record(root, name, type(driver))
    if pm is not None:
        pm.hook.pyrt_storage_driver_ready(name=name, driver=driver)
    return name, driver


def probe_all(settings) -> list[dict]:
    """For ``pyrt info``: every installed driver, whether it works here, and why not."""
    out = []
    for name in candidate_order(installed_drivers()):
        entry = {"name": name, "usable": False, "reason": ""}
        try:
            cls = load_driver_class(name)
            mod = cls.__module__.split(".")[0]
            entry["module"] = mod
            probe = getattr(cls, "probe", None)
            if probe is not None:
                probe(driver_home(settings.root, name))
            else:
                init_driver(settings.root, name, settings.driver_options(name))
            entry["usable"] = True
        except (DriverNotSupported, DriverPrerequisitesMissing, StorageError, UsageError) as e:
            entry["reason"] = str(e)
        out.append(entry)
    return out
