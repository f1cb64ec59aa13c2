"""A fork bomb in one container takes every pid of the host (pid_max is 32768 here): the
host cannot start a process any more.  podman gives every container a pids limit of
2048 by default; pyrt now does the same where its resource plugin (pyrt-cgroups, with
the pids controller) takes the container: ``[containers] pids_limit`` in the config
file changes it, ``--pids-limit -1`` (or 0, as docker) removes it.  The default is the
engine's: pyrt-runtime applies what an OCI spec says and adds nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from pyrt_core.testing import machine
from test_runtime_cli import rt  # noqa: F401  (the fixture: pyrt-runtime on a bundle)

DEFAULT = 2048


def _pids_dir(pid: int) -> str:
    """The container's directory in the host's pids hierarchy (v1 here; v2 too)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "pids" in ctrls.split(","):
                return "/sys/fs/cgroup/pids" + path
            if ctrls == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                return "/sys/fs/cgroup" + path
    raise AssertionError(f"pid {pid} is in no pids cgroup")


def _read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def _state(cli, name):
    return json.loads(cli("inspect", "--type", "container", name, check=True).stdout)[0]


@pytest.fixture
def cli(detached_cli):
    machine.skip_unless("pids-controller")
    return detached_cli


def test_the_default_container_has_a_pids_limit(cli):
    cli("run", "-d", "--name", "plain", cli.image, "sleep", "1000", check=True)
    c = _state(cli, "plain")
    assert c["HostConfig"]["PidsLimit"] == DEFAULT
    assert _read(_pids_dir(c["State"]["Pid"]), "pids.max") == str(DEFAULT)


def test_a_fork_bomb_stops_at_the_limit_and_the_host_stays_fine(cli):
    # an inner shell forks sleeps until fork fails (then it exits: ash gives up on a
    # failed fork); the outer one stays, so the container keeps its processes
    cli("run", "-d", "--name", "bomb", cli.image, "sh", "-c",
        "sh -c 'while :; do sleep 1000 & done' 2>/dev/null; exec sleep 1000", check=True)
    d = _pids_dir(_state(cli, "bomb")["State"]["Pid"])

    def refused() -> int:  # pids.events "max N": the forks the limit refused
        return int(_read(d, "pids.events").split()[1])

    deadline = time.monotonic() + 60
    while refused() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert refused() > 0, "the fork loop never met the limit"
    assert DEFAULT - 5 <= int(_read(d, "pids.current")) <= DEFAULT
    # the host can still start processes, and so can another container
    assert subprocess.run(["true"], timeout=10).returncode == 0
    r = cli("run", "--rm", cli.image, "echo", "alive", timeout=60)
    assert r.returncode == 0 and r.stdout == "alive\n", r.stderr
    cli("rm", "-f", "bomb", check=True, timeout=60)


def test_pids_limit_minus_one_and_zero_mean_unlimited(cli):
    for name, value in (("minus", "-1"), ("zero", "0")):
        cli("run", "-d", "--name", name, "--pids-limit", value, cli.image, "sleep", "1000",
            check=True)
        c = _state(cli, name)
        assert c["HostConfig"]["PidsLimit"] is None  # docker shows null for unlimited
        assert _read(_pids_dir(c["State"]["Pid"]), "pids.max") == "max"
    cli("run", "-d", "--name", "given", "--pids-limit", "77", cli.image, "sleep", "1000",
        check=True)
    c = _state(cli, "given")
    assert c["HostConfig"]["PidsLimit"] == 77
    assert _read(_pids_dir(c["State"]["Pid"]), "pids.max") == "77"


def test_the_config_file_changes_the_default(cli, tmp_path):
    cfg = tmp_path / "pyrt.toml"
    cfg.write_text("[containers]\npids_limit = 100\n")
    cli("--config", cfg, "run", "-d", "--name", "hundred", cli.image, "sleep", "1000",
        check=True)
    c = _state(cli, "hundred")
    assert c["HostConfig"]["PidsLimit"] == 100
    assert _read(_pids_dir(c["State"]["Pid"]), "pids.max") == "100"
    cfg.write_text("[containers]\npids_limit = 0\n")
    cli("--config", cfg, "run", "-d", "--name", "nodefault", cli.image, "sleep", "1000",
        check=True)
    c = _state(cli, "nodefault")
    assert c["HostConfig"]["PidsLimit"] is None
    assert _read(_pids_dir(c["State"]["Pid"]), "pids.max") == "max"


def test_without_a_resource_plugin_there_is_no_default_and_no_error(cli):
    # without the cgroups plugin a container runs only by the operator's explicit choice
    # of no cgroups (test_caches.py): then it gets no default pids limit, and no error
    env = dict(os.environ, PYRT_DISABLE_PLUGINS="cgroups", PYRT_CGROUP_MANAGER="none")
    r = cli("run", "--name", "nocg", cli.image, "true", env=env)
    assert r.returncode == 0, r.stderr
    c = _state(cli, "nocg")
    assert c["Pyrt"]["CgroupManager"] == "none" and c["HostConfig"]["PidsLimit"] is None


def test_the_runtime_adds_no_default(rt):
    # pyrt-runtime as podman or containerd call it: a spec without linux.resources.pids
    # gets no limit from pyrt (podman writes its own default into the specs it makes)
    from test_runtime_cli import _cgroup_dirs

    rt.create("nolimit", ["sleep", "100"])
    dirs = [d for d in _cgroup_dirs(rt, "nolimit") if os.path.exists(os.path.join(d, "pids.max"))]
    assert dirs and {_read(d, "pids.max") for d in dirs} == {"max"}
    rt("delete", "--force", "nolimit", check=True)

