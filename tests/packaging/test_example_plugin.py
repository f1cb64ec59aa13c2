"""The third-party example storage plugin, installed from its own directory
(tox env `example`), is found through its entry point and runs a container."""
import json

import pytest

pytestmark = pytest.mark.privileged


def test_example_driver_is_listed_and_runs_a_container(tmp_path, demo_layout, monkeypatch):
    from pyrt_core.testing.cli import PyrtCLI

    cli = PyrtCLI(tmp_path / "root", tmp_path / "run", driver="example")
    # this environment has no pyrt-cgroups: running without cgroups is chosen explicitly
    # (otherwise nothing would enforce the containers' device rules: refused)
    monkeypatch.setenv("PYRT_CGROUP_MANAGER", "none")
    try:
        info = json.loads(cli("info", "--format", "json", check=True).stdout)
        names = {d["name"]: d for d in info["storage"]["drivers"]}
        assert names["example"]["usable"], names["example"]
        assert info["storage"]["selected"] == "example"
        iid = cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
        r = cli("run", "--rm", iid, "sh", "-c", "echo on-example > /tmp/f && cat /tmp/f")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "on-example"
        # the container's record names the driver it used
        r = cli("run", "--name", "keep", iid, "true", check=True)
        c = json.loads(cli("inspect", "--type", "container", "keep", check=True).stdout)[0]
        assert c["GraphDriver"]["Name"] == "example"
    finally:
        cli.cleanup()
