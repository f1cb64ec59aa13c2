"""Driver selection: explicit choice, recorded choice, priority order, refusals."""
import pytest

from pyrt_core.config import load_settings
from pyrt_core.errors import StorageError, UsageError
from pyrt_core.storage import select

from .fakedist import make_dist, on_path

FAKES = """
from pyrt_core.errors import DriverNotSupported, DriverPrerequisitesMissing
from pyrt_core.storage.vfs import VfsDriver

class Unsupported(VfsDriver):
    name = "fake-unsupported"
    def __init__(self, home, options=None):
        raise DriverNotSupported("kernel lacks fakefs")

class NoTools(VfsDriver):
    name = "fake-notools"
    def __init__(self, home, options=None):
        raise DriverPrerequisitesMissing("mkfs.fake not found")

class Works(VfsDriver):
    name = "fake-works"
"""


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "pyrt-fakes", "1.0", {"pyrt.storage.drivers": {
        "fake-unsupported": "fake_drivers:Unsupported",
        "fake-notools": "fake_drivers:NoTools",
        "fake-works": "fake_drivers:Works",
    }}, {"fake_drivers.py": FAKES})
    # stevedore caches entry points per process and on disk: start both afresh
    from stevedore import _cache, extension

    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})
    monkeypatch.setattr(_cache, "_c", _cache.Cache(str(tmp_path / "cache")))
    monkeypatch.setattr(select, "PRIORITY", ("fake-unsupported", "fake-notools", "fake-works", "vfs"))
    with on_path(site):
        yield tmp_path


def _settings(root, **kw):
    return load_settings(root=str(root), env={}, config=None, **kw)


def test_first_working_driver_wins_and_is_recorded(fakes):
    root = fakes / "store"
    name, drv = select.select_driver(_settings(root))
    assert name == "fake-works"
    assert (root / "storage" / "driver").read_text().split() == ["fake-works", "fake_drivers:Works"]
    # the recorded driver is used next time even though another would now be first
    name2, _ = select.select_driver(_settings(root))
    assert name2 == "fake-works"


def test_explicit_driver_wins(fakes):
    name, _ = select.select_driver(_settings(fakes / "s2", storage_driver="vfs"))
    assert name == "vfs"


def test_never_switches_silently(fakes):
    root = fakes / "s3"
    select.select_driver(_settings(root, storage_driver="vfs"))
    with pytest.raises(UsageError, match="holds data of storage driver 'vfs'"):
        select.select_driver(_settings(root, storage_driver="fake-works"))


def test_unknown_driver_lists_installed(fakes):
    with pytest.raises(UsageError) as e:
        select.select_driver(_settings(fakes / "s4", storage_driver="zfs"))
    msg = str(e.value)
    assert "unknown storage driver 'zfs'" in msg and "vfs" in msg and "fake-works" in msg
    assert "\n" not in msg


def test_explicit_unsupported_driver_says_why(fakes):
    with pytest.raises(StorageError, match="kernel lacks fakefs"):
        select.select_driver(_settings(fakes / "s5", storage_driver="fake-unsupported"))


def test_probe_all_reports_reasons(fakes):
    rows = {r["name"]: r for r in select.probe_all(_settings(fakes / "s6"))}
    assert rows["fake-unsupported"]["usable"] is False
    assert "kernel lacks fakefs" in rows["fake-unsupported"]["reason"]
    assert "mkfs.fake not found" in rows["fake-notools"]["reason"]
    assert rows["fake-works"]["usable"] and rows["vfs"]["usable"]
    order = [r["name"] for r in select.probe_all(_settings(fakes / "s6"))]
    assert order.index("fake-unsupported") < order.index("fake-works") < order.index("vfs")


def test_conformance_suite_loads_drivers_the_way_pyrt_does(fakes, monkeypatch):
    """One loading path: the conformance suite gets its class from load_driver_class
    (stevedore over the checked entry points), the function select_driver uses."""
    from pyrt_core.testing.storage_conformance import load_driver_entry_point

    cls = load_driver_entry_point("fake-works")
    assert cls is select.load_driver_class("fake-works")
    assert cls.__module__ == "fake_drivers" and cls.__name__ == "Works"
    with pytest.raises(LookupError, match=r"no storage driver 'zfs' is installed \(installed: .*fake-works"):
        load_driver_entry_point("zfs")
    # and through no other way: without stevedore's manager there is no class
    calls = []

    def refusing(name):
        calls.append(name)
        raise StorageError("stevedore said no")

    monkeypatch.setattr(select, "load_driver_class", refusing)
    with pytest.raises(StorageError, match="stevedore said no"):
        load_driver_entry_point("fake-works")
    assert calls == ["fake-works"]
