"""The tox environments ``core-alone`` and ``<plugin>-alone`` install pyrt-core and at
most one plugin (``PYRT_TEST_ALONE`` names it, or ``pyrt-core``): nothing else may be
installed, and the plugin must load with only the core beside it."""
import importlib.metadata
import json
import os

import pytest

ALONE = os.environ.get("PYRT_TEST_ALONE", "")

pytestmark = pytest.mark.skipif(not ALONE, reason="only in the tox environments *-alone "
                                "(PYRT_TEST_ALONE names what is installed)")


def _pyrt_dists():
    return sorted({d.metadata["Name"] for d in importlib.metadata.distributions()
                   if (d.metadata["Name"] or "").startswith("pyrt")})


def test_only_the_core_and_that_plugin_are_installed():
    want = {"pyrt-core", ALONE}
    assert _pyrt_dists() == sorted(want)


def test_the_plugin_loads_beside_the_core_alone(tmp_path):
    """What the distribution declares is what `pyrt info` shows: its plugins loaded
    (and no other but the core's), its storage drivers listed."""
    from pyrt_core.testing.cli import PyrtCLI

    eps = [] if ALONE == "pyrt-core" else list(importlib.metadata.distribution(ALONE).entry_points)
    cli = PyrtCLI(tmp_path / "root", tmp_path / "run")
    info = json.loads(cli("info", "--format", "json", check=True).stdout)
    plugins = {p["name"]: p["status"] for p in info["plugins"]}
    want = {"core"} | {ep.name for ep in eps if ep.group == "pyrt.plugins"}
    assert plugins == dict.fromkeys(want, "loaded")
    drivers = {d["name"] for d in info["storage"]["drivers"]}
    assert drivers == {"vfs"} | {ep.name for ep in eps if ep.group == "pyrt.storage.drivers"}
