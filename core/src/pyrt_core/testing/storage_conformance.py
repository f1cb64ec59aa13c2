"""The storage-driver conformance suite, an opt-in pytest plugin.

Every storage driver, built in or third party, should pass it.  To test
yours, opt in from your test suite's top-level ``conftest.py``::

    pytest_plugins = ["pyrt_core.testing.storage_conformance"]

and subclass :class:`DriverConformance` in a test module::

    from pyrt_core.testing.storage_conformance import DriverConformance

    class TestMyDriver(DriverConformance):
        driver_name = "mydriver"       # entry-point name in pyrt.storage.drivers

        # or construct it yourself:
        # def make_driver(self, home):
        #     return MyDriver(home, {})

Each test gets a fresh driver whose home is under ``tmp_path``.  At
teardown the plugin calls ``driver.cleanup()`` and then lazily unmounts
anything still mounted below the home, so a failing driver cannot leave
mounts behind; a mount ``cleanup()`` left (it must release everything the
driver holds) fails the test, with the mount points.  A driver whose constructor raises ``DriverNotSupported`` or
``DriverPrerequisitesMissing`` makes the tests skip with that reason.

Most drivers mount and every layer holds files owned by other users, so
the suite skips when not run as root; a driver that needs neither sets
``needs_root = False`` (ownership and device entries are then left out).

What is checked (the rules of :class:`pyrt_core.storage.driver.StorageDriver`):
layer creation, snapshot semantics, get/put, removal (also of mounted
layers), applying layer tars with whiteouts, diffs that round-trip, the
list of changes, diff sizes, layer chains and that applying a malicious
tar writes nothing outside the driver's home.

Helpers for your own driver-specific tests: :func:`build_tar` with the
``tar_*`` entry makers, :func:`tree_snapshot`, :func:`mounts_under`,
:func:`write_files`.

The tests live in :mod:`pyrt_core.testing.conformance`, grouped by area
(:mod:`~pyrt_core.testing.conformance.layers`, :mod:`~pyrt_core.testing.conformance.diffs`)
with the tar and tree helpers beside them; this module is the plugin (its hooks and
fixtures) and :class:`DriverConformance`, and re-exports the helpers.
"""
from __future__ import annotations

import pytest

# the tests' asserts explain themselves as they did when they lived in this plugin module
pytest.register_assert_rewrite("pyrt_core.testing.conformance")

from pyrt_core.errors import DriverNotSupported, DriverPrerequisitesMissing  # noqa: E402
from pyrt_core.storage.driver import StorageDriver  # noqa: E402
from pyrt_core.testing import machine  # noqa: E402
from pyrt_core.testing.conformance.diffs import DiffTests  # noqa: E402
from pyrt_core.testing.conformance.layers import LayerTests  # noqa: E402
from pyrt_core.testing.conformance.tars import (  # noqa: E402
    IS_ROOT,
    MTIME,
    build_tar,
    tar_device,
    tar_dir,
    tar_fifo,
    tar_file,
    tar_hardlink,
    tar_opaque,
    tar_symlink,
    tar_whiteout,
)
from pyrt_core.testing.conformance.trees import (  # noqa: E402
    mounts_under,
    tree_snapshot,
    unmount_all_under,
    write_files,
)

__all__ = [
    "DriverConformance", "build_tar", "tar_file", "tar_dir", "tar_symlink", "tar_hardlink",
    "tar_device", "tar_fifo", "tar_whiteout", "tar_opaque", "tree_snapshot", "mounts_under",
    "unmount_all_under", "write_files", "load_driver_entry_point", "MTIME",
]

# -- plugin hooks and fixtures --------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line(
        "markers", "storage_conformance: a test of pyrt's storage-driver conformance suite")


@pytest.fixture
def driver_home(tmp_path):
    """An empty directory for a driver's home; anything mounted below it is
    lazily unmounted at teardown."""
    home = tmp_path / "driver-home"
    home.mkdir(mode=0o700)
    try:
        yield str(home)
    finally:
        unmount_all_under(str(home))


@pytest.fixture
def driver(request, driver_home):
    """The driver under test, made by the test class's ``make_driver``;
    cleaned up (and every mount below its home removed) at teardown."""
    inst = request.instance
    if inst is None or not hasattr(inst, "make_driver"):
        raise TypeError("the 'driver' fixture is for subclasses of DriverConformance")
    if getattr(inst, "needs_root", True) and not IS_ROOT:
        pytest.skip(machine.reason("root", detail="set needs_root = False if your driver does not"))
    try:
        drv = inst.make_driver(driver_home)
    except (DriverNotSupported, DriverPrerequisitesMissing) as e:
        pytest.skip(f"storage driver not usable on this host: {e}")
    left = []
    try:
        yield drv
    finally:
        try:
            drv.cleanup()
        finally:
            left = mounts_under(driver_home)
            unmount_all_under(driver_home)
    if left:
        pytest.fail(f"driver.cleanup() left mounts below the driver's home: {left}", pytrace=False)



def load_driver_entry_point(name: str) -> type[StorageDriver]:
    """The driver class registered as ``name`` in ``pyrt.storage.drivers``, loaded the
    way pyrt loads it (:func:`pyrt_core.storage.select.load_driver_class`), so the
    suite tests what ``pyrt --storage-driver NAME`` would use.  A name no installed
    distribution declares is a :class:`LookupError`."""
    from pyrt_core.storage import select

    if name not in select.installed_drivers():
        installed = select.installed_drivers()
        raise LookupError(f"no storage driver {name!r} is installed "
                          f"(installed: {', '.join(installed) or 'none'})")
    return select.load_driver_class(name)


# -- the suite -----------------------------------------------------------------------------
class DriverConformance(DiffTests, LayerTests):
    """Subclass as ``Test<Something>`` and set ``driver_name`` or override
    ``make_driver``.  (pytest collects the bases' tests from the last in the MRO to the
    first: the layer tests still run before the diff tests.)"""

    #: entry-point name in ``pyrt.storage.drivers``
    driver_name: str | None = None
    #: options passed to the constructor by the default ``make_driver``
    driver_options: dict[str, str] = {}
    #: skip the suite when not root
    needs_root: bool = True

    def make_driver(self, home: str) -> StorageDriver:
        """Construct the driver under test with its home at ``home``."""
        if not self.driver_name:
            raise NotImplementedError(
                f"{type(self).__name__}: set driver_name or override make_driver(home)")
        return load_driver_entry_point(self.driver_name)(home, dict(self.driver_options))
