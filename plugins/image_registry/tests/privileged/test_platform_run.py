"""``run/create --platform OS/ARCH[/VARIANT]`` (docker's): the image for that platform from a
two-platform index built here and served by a real registry on 127.0.0.1; a local image of
another platform is pulled again, or refused with docker's message under ``--pull never``;
docker's warning for an image of another platform run without ``--platform``.

Both images hold the host's static busybox (so both run here) and ``/etc/arch`` naming
their platform: what a container prints says which one it got."""
from __future__ import annotations

import json

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.registry import *  # noqa: F401,F403
from pyrt_core.testing.registries.images import build_multi_layout, skopeo_push

pytestmark = pytest.mark.usefixtures("registry_tools")


@pytest.fixture
def multi_ref(tmp_path):
    from pyrt_core.testing import imagebuilder as ib
    from pyrt_core.testing.registry import Registry

    rootfs = ib.busybox_rootfs(str(tmp_path / "rootfs"))
    layout = str(tmp_path / "multi")
    build_multi_layout(layout, rootfs, platforms=("linux/amd64", "linux/arm64"))
    reg = Registry(str(tmp_path / "registry"))
    try:
        skopeo_push(f"oci:{layout}:multi", reg.host, "test/multi:1", "--all")
        yield f"{reg.host}/test/multi:1"
    finally:
        reg.stop()


def _arch(cli, env, ref):
    r = cli("inspect", "--type", "image", ref, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    return (doc[0] if isinstance(doc, list) else doc)["Architecture"]


def test_run_and_create_pick_the_platform(pyrt_cli, reg_env, multi_ref):
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    cli, env = pyrt_cli, reg_env
    # nothing local: pulled for the platform asked for
    r = cli("create", "--tls-verify=false", "--platform", "linux/arm64", "--name", "c1", multi_ref, "cat", "/etc/arch",
            env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _arch(cli, env, multi_ref) == "arm64"
    r = cli("start", "-a", "c1", env=env)
    assert (r.returncode, r.stdout) == (0, "linux/arm64\n"), r.stderr
    r = cli("run", "--rm", "--pull", "never", "--platform", "linux/arm64", multi_ref, "cat", "/etc/arch",
            env=env)
    assert (r.returncode, r.stdout) == (0, "linux/arm64\n"), r.stderr
    # the local image is arm64: another platform is pulled again, and the name follows it
    r = cli("run", "--rm", "--tls-verify=false", "--platform", "linux/amd64", multi_ref, "cat", "/etc/arch", env=env,
            timeout=120)
    assert (r.returncode, r.stdout) == (0, "linux/amd64\n"), r.stderr
    assert _arch(cli, env, multi_ref) == "amd64"
    assert cli("rm", "c1", env=env).returncode == 0


def test_platform_mismatch_under_pull_never_is_refused(pyrt_cli, reg_env, multi_ref):
    cli, env = pyrt_cli, reg_env
    assert cli("pull", "--tls-verify=false", "--platform", "linux/amd64", multi_ref, env=env,
               timeout=120).returncode == 0
    for mode in (["run", "--rm"], ["run", "-d"], ["create"]):
        r = cli(*mode, "--pull", "never", "--platform", "linux/arm64", multi_ref, "true", env=env)
        assert r.returncode == 125, r.stdout + r.stderr
        assert (f"image with reference {multi_ref} was found but does not match the specified "
                "platform: wanted linux/arm64, actual: linux/amd64") in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert cli("ps", "-aq", env=env).stdout == ""


def test_platform_absent_from_the_index_and_bad_values(pyrt_cli, reg_env, multi_ref):
    cli, env = pyrt_cli, reg_env
    r = cli("run", "--rm", "--tls-verify=false", "--platform", "linux/s390x", multi_ref, "true", env=env, timeout=120)
    assert r.returncode == 125
    assert "linux/s390x" in r.stderr and "linux/amd64" in r.stderr and "linux/arm64" in r.stderr
    for bad in ("linux", "linux/", "a/b/c/d", "linux amd64"):
        for mode in (["run", "--rm"], ["run", "-d"], ["create"]):
            r = cli(*mode, "--tls-verify=false", "--platform", bad, multi_ref, "true", env=env)
            assert r.returncode == 125 and "invalid platform" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1
    assert cli("ps", "-aq", env=env).stdout == ""
    assert cli("images", "-q", env=env).stdout == ""  # nothing pulled either


def test_foreign_platform_without_platform_flag_warns(pyrt_cli, reg_env, multi_ref):
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    machine.skip_unless("x86_64", detail="the index's other platform is arm64")
    cli, env = pyrt_cli, reg_env
    assert cli("pull", "--tls-verify=false", "--platform", "linux/arm64", multi_ref, env=env,
               timeout=120).returncode == 0
    r = cli("run", "--rm", multi_ref, "cat", "/etc/arch", env=env)
    assert r.returncode == 0 and r.stdout == "linux/arm64\n"
    assert ("WARNING: The requested image's platform (linux/arm64) does not match the detected "
            "host platform (linux/amd64) and no specific platform was requested") in r.stderr
    r = cli("run", "--rm", "--platform", "linux/arm64", multi_ref, "true", env=env)
    assert r.returncode == 0 and "WARNING" not in r.stderr
