"""Hostile image configs: wrong types in the config an image author controls.

``Cmd: 5``, ``User: 5``, ``WorkingDir: []``, ``Env: [1]`` ... crashed pyrt with a Python
traceback at load or at run, and some were stored (so every later run crashed); a
6,000-character WorkingDir blew Python's recursion limit.  Now the types are checked
when the image is loaded or pulled (images.configcheck, in parse_config): one line,
exit 125, nothing stored; and again before a container is made from a stored image.
"""
from __future__ import annotations

import json
import os

import pytest

from hostile import busybox_layout, one_line_error

HOSTILE = {
    "cmd-number": {"Cmd": 5},
    "user-number": {"User": 5},
    "workdir-array": {"WorkingDir": []},
    "env-number": {"Env": [1]},
    "workdir-6000": {"WorkingDir": "/a" * 3000},
    "entrypoint-object": {"Entrypoint": {"a": 1}},
    "labels-number": {"Labels": 5},
    "labels-value-number": {"Labels": {"a": 1}},
    "ports-array": {"ExposedPorts": ["80/tcp"]},
    "volumes-number": {"Volumes": 5},
    "stopsignal-number": {"StopSignal": 9},
    "healthcheck-number": {"Healthcheck": 5},
    "healthcheck-test-string": {"Healthcheck": {"Test": "CMD true"}},
    "env-nul": {"Env": ["A=\u0000"]},
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_config_is_refused_at_load_and_at_run(demo_cli, tmp_path, name):
    cli = demo_cli
    layout = busybox_layout(str(tmp_path / "img"), str(tmp_path),
                            config={"Cmd": ["/bin/true"], **HOSTILE[name]})
    before = cli("images", "-q", "--no-trunc", check=True).stdout
    r = cli("load", "-i", layout)
    one_line_error(r, 125, "invalid image config")
    r = cli("run", "--rm", f"oci:{layout}")  # the fetch path of `run` shares the check
    one_line_error(r, 125, "invalid image config")
    assert cli("images", "-q", "--no-trunc", check=True).stdout == before  # nothing stored
    assert cli("ps", "-aq").stdout == ""


def test_an_image_an_older_pyrt_stored_unchecked_is_refused_before_use(demo_cli):
    # what the old code kept for User: 5 and Env: [1] (it crashed only at run)
    cli = demo_cli
    path = os.path.join(cli.root, "images", "images.json")
    with open(path) as f:
        data = json.load(f)
    [rec] = list(data["images"].values())
    rec["config"]["User"] = 5
    rec["config"]["Env"] = [1]
    with open(path, "w") as f:
        json.dump(data, f)
    assert cli("images", check=True).stdout.count("\n") == 2  # still listed, no crash
    r = cli("run", "--rm", cli.image, "true")
    one_line_error(r, 125, "invalid image config: Env[0] must be a string")
    r = cli("create", "--name", "late", cli.image, "true")
    one_line_error(r, 125, "invalid image config")
    assert cli("ps", "-aq").stdout == ""


def test_a_long_working_directory_from_the_command_line(demo_cli):
    cli = demo_cli
    deep = "/w" * 1500  # 1,500 components within PATH_MAX: made without recursion
    r = cli("run", "--rm", "-w", deep, cli.image, "pwd")
    assert r.returncode == 0 and r.stdout.strip() == deep, r.stderr[-500:]
    r = cli("run", "--rm", "-w", "/w" * 3000, cli.image, "pwd")
    one_line_error(r, 125, "working directory", "longer than 4095 bytes")
    assert cli("ps", "-aq").stdout == ""


PULLED = ("cmd-number", "user-number", "workdir-6000", "env-number")


@pytest.fixture(scope="module")
def hostile_registry(tmp_path_factory):
    """A registry on 127.0.0.1 holding some of the hostile images (pushed by skopeo,
    which copies the config blob as it is)."""
    from pyrt_core.testing.registry import Registry, registry_missing, skopeo_push

    if registry_missing():
        pytest.skip("registry tools missing: " + ", ".join(registry_missing()))
    work = str(tmp_path_factory.mktemp("hostile-registry"))
    reg = Registry(os.path.join(work, "registry"))
    try:
        for name in PULLED:
            layout = busybox_layout(os.path.join(work, name), work,
                                    config={"Cmd": ["/bin/true"], **HOSTILE[name]})
            skopeo_push(f"oci:{layout}:latest", reg.host, f"hostile/{name}:1")
        yield reg
    finally:
        reg.stop()


@pytest.mark.parametrize("name", PULLED)
def test_a_hostile_config_is_refused_at_pull(pyrt_cli, hostile_registry, tmp_path, name):
    # the registry plugin's pull shares the check (parse_config), before any layer is fetched
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), PYRT_INSECURE_REGISTRIES=hostile_registry.host)
    ref = f"{hostile_registry.host}/hostile/{name}:1"
    r = pyrt_cli("pull", ref, env=env, timeout=120)
    one_line_error(r, 125, "invalid image config", progress="Trying to pull ")
    r = pyrt_cli("run", "--rm", ref, env=env, timeout=120)  # run's own pull
    one_line_error(r, 125, "invalid image config", progress="Trying to pull ")
    assert pyrt_cli("images", "-q", env=env).stdout == ""
    blobs = os.path.join(pyrt_cli.root, "images", "blobs", "sha256")
    assert not os.path.isdir(blobs) or os.listdir(blobs) == []
    assert pyrt_cli("ps", "-aq", env=env).stdout == ""


def test_a_container_that_made_a_very_deep_tree_can_be_removed(demo_cli):
    # removing its layer recursed once per level (shutil.rmtree): RecursionError, and the
    # container could never be removed.  (busybox's cd stops at PATH_MAX: ~2,000 levels)
    cli = demo_cli
    r = cli("run", "--name", "deep", cli.image, "sh", "-c",
            "i=0; while mkdir d 2>/dev/null && cd d 2>/dev/null; do i=$((i+1)); done; echo $i",
            timeout=120)
    assert r.returncode == 0 and int(r.stdout) > 1500, (r.stdout, r.stderr)
    r = cli("rm", "deep", timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert cli("ps", "-aq").stdout == ""
