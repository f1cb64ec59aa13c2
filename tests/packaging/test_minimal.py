"""The minimal set a distribution would ship: pyrt-core, pyrt-namespaces,
pyrt-storage-overlay, installed (not editable) by tox env `minimal`.
It must run a real container, and nothing else may be installed."""
import importlib.metadata
import json
import os

import pytest

pytestmark = pytest.mark.privileged


def _pyrt_dists():
    return sorted({d.metadata["Name"] for d in importlib.metadata.distributions()
                   if (d.metadata["Name"] or "").startswith("pyrt")})


def test_only_the_minimal_set_is_installed():
    assert _pyrt_dists() == ["pyrt-core", "pyrt-namespaces", "pyrt-storage-overlay"]


def test_runs_a_container_on_overlay(pyrt_cli, demo_layout):
    iid = pyrt_cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    # without pyrt-cgroups nothing enforces a container's device rules: refused, unless
    # the operator chooses to run without cgroups (docs/security.md)
    env = {k: v for k, v in os.environ.items() if k != "PYRT_CGROUP_MANAGER"}
    r = pyrt_cli("run", "--rm", iid, "true", env=env)
    assert r.returncode == 125 and "PYRT_CGROUP_MANAGER=none" in r.stderr, r.stderr
    env["PYRT_CGROUP_MANAGER"] = "none"
    r = pyrt_cli("run", "--rm", iid, "sh", "-c", "echo hello; echo $$; hostname", env=env)
    assert r.returncode == 0, r.stderr
    assert "device" in r.stderr  # the warning: no device cgroup
    lines = r.stdout.split()
    assert lines[0] == "hello" and lines[1] == "1"
    info = json.loads(pyrt_cli("info", "--format", "json", check=True).stdout)
    assert info["storage"]["selected"] == "overlay"
    loaded = {p["name"] for p in info["plugins"] if p["status"] == "loaded"}
    assert loaded == {"core", "namespaces"}
    assert {d["name"] for d in info["storage"]["drivers"]} == {"overlay", "vfs"}


def test_registry_commands_say_which_plugin_to_install(pyrt_cli):
    """pull/push/login/logout come with pyrt-image-registry (pyrt.commands entry points):
    without it, one line naming the distribution, exit 125, as docker's errors."""
    for argv in (["pull", "busybox"], ["push", "x"], ["login", "r.example"], ["logout", "--all"]):
        r = pyrt_cli(*argv)
        assert r.returncode == 125, (argv, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "pyrt-image-registry" in lines[0], r.stderr
    r = pyrt_cli("run", "--help")
    assert "--tls-verify" not in r.stdout  # that plugin's flags of run are not there either
