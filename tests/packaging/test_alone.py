"""The tox environments ``core-alone`` and ``<plugin>-alone`` install pyrt-core and at
most one plugin (``PYRT_TEST_ALONE`` names it, or ``pyrt-core``): nothing else may be
installed, and the plugin must load with only the core beside it."""
import importlib.metadata
import json
import os

import pytest

from pyrt_core.testing import machine

ALONE = os.environ.get("PYRT_TEST_ALONE", "")

# tests/packaging runs only in its tox environments (`all` leaves it out); outside them
# (a developer's pytest on this file) there is nothing to check
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


@pytest.mark.privileged  # root, and the leak guard
@machine.needs("distribution", "pyrt-namespaces", detail="an isolation plugin to run a container")
def test_a_container_runs_with_the_isolation_plugin_on_the_cores_vfs(pyrt_cli, demo_layout):
    """namespaces-alone: the isolation plugin runs a real container whose root
    filesystem is the core's own vfs driver (no storage plugin installed), without
    a resource plugin only when the operator says so (PYRT_CGROUP_MANAGER=none)."""
    iid = pyrt_cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    env = {k: v for k, v in os.environ.items() if k != "PYRT_CGROUP_MANAGER"}
    r = pyrt_cli("run", "--rm", iid, "true", env=env)
    assert r.returncode == 125 and "PYRT_CGROUP_MANAGER=none" in r.stderr, r.stderr
    env["PYRT_CGROUP_MANAGER"] = "none"
    r = pyrt_cli("run", "--rm", "--hostname", "alone", iid, "sh", "-c",
                 "echo $$; hostname", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "alone"]  # its own pid and uts namespaces
    info = json.loads(pyrt_cli("info", "--format", "json", check=True).stdout)
    assert info["storage"]["selected"] == "vfs"
    assert pyrt_cli("ps", "-aq").stdout == ""  # --rm removed it
