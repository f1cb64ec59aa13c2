import pytest

from pyrt_core.errors import UsageError
from pyrt_core.testing.storage_conformance import DriverConformance
from pyrt_storage_example.driver import ExampleDriver


class TestExampleDriver(DriverConformance):
    """The whole conformance suite, run against the installed entry point."""

    driver_name = "example"
    needs_root = False  # nothing is mounted


class TestExampleDriverPythonCopy(DriverConformance):
    """Again, constructing the driver directly with an option."""

    needs_root = False

    def make_driver(self, home):
        return ExampleDriver(home, {"copy": "python"})


def test_unknown_option_is_refused(tmp_path):
    with pytest.raises(UsageError):
        ExampleDriver(str(tmp_path), {"colour": "blue"})


def test_metadata_names_the_parent(tmp_path):
    d = ExampleDriver(str(tmp_path), {})
    d.create("base", None)
    d.create("child", "base")
    assert d.metadata("child")["Parent"] == "base"
    assert d.metadata("base")["Parent"] == ""
