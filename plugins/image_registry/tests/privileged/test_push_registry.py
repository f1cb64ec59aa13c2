"""`pyrt push`: HEAD to skip existing blobs, cross-repository mounts, monolithic
and chunked uploads, manifest last; pushing a loaded image (exported layers)."""
from __future__ import annotations

import json
import subprocess

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.registry import *  # noqa: F401,F403
from test_registry_pull import pull, skopeo_digest, store_state

pytestmark = pytest.mark.usefixtures("registry_tools")


@pytest.fixture
def fresh_registry(tmp_path):
    reg = Registry(str(tmp_path / "reg"))
    yield reg
    reg.stop()


def push(cli, env, *args, check=True):
    return cli("push", "--tls-verify=false", *args, env=env, check=check, timeout=120)


def test_push_pulled_image_keeps_digest(pyrt_cli, reg_env, anon_registry, fresh_registry):
    src = f"{anon_registry.host}/test/layered:1"
    pull(pyrt_cli, reg_env, src)
    want = skopeo_digest(anon_registry.host, "test/layered:1")
    dest = f"{fresh_registry.host}/team/app:1.2"
    r = push(pyrt_cli, reg_env, src, dest, "--chunk-size", "100000")
    assert r.stdout.strip() == want
    assert skopeo_digest(fresh_registry.host, "team/app:1.2") == want
    # again: every blob is already there
    r = push(pyrt_cli, reg_env, src, dest)
    assert r.stderr.count("Layer already exists") == 5
    # another repository of the same registry: blobs are mounted, not uploaded
    pyrt_cli("tag", src, dest, check=True)
    r = push(pyrt_cli, reg_env, dest, f"{fresh_registry.host}/team/other:1")
    assert "Mounted from team/app" in r.stderr
    # pull it back into a new store and run it
    other = type(pyrt_cli)(pyrt_cli.root + "2", pyrt_cli.runroot + "2")
    try:
        pull(other, reg_env, f"{fresh_registry.host}/team/other:1")
        machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
        assert other("run", "--rm", f"{fresh_registry.host}/team/other:1", "cat", "/etc/hello",
                     check=True).stdout == "hello from layer 3\n"
    finally:
        other.cleanup()


def test_push_loaded_image(pyrt_cli, reg_env, fresh_registry, test_images):
    pyrt_cli("load", "-i", test_images["layered"], check=True)
    img = json.loads(
        pyrt_cli("images", "--no-trunc", "--format", "json", check=True).stdout.splitlines()[0])
    dest = f"{fresh_registry.host}/loaded/layered:1"
    r = push(pyrt_cli, reg_env, img["ID"], dest, "--digestfile", pyrt_cli.root + ".digest")
    digest = r.stdout.strip()
    assert open(pyrt_cli.root + ".digest").read() == digest
    assert skopeo_digest(fresh_registry.host, "loaded/layered:1") == digest
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
                         capture_output=True, text=True, check=True).stdout
    assert len(json.loads(out)["Layers"]) == 4
    other = type(pyrt_cli)(pyrt_cli.root + "2", pyrt_cli.runroot + "2")
    try:
        pull(other, reg_env, dest)
        machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
        r = other("run", "--rm", dest, "sh", "-c", "ls /data /opq; cat /etc/hello", check=True)
        assert "gone.txt" not in r.stdout and "fresh.txt" in r.stdout and "hello from layer 3" in r.stdout
    finally:
        other.cleanup()


def test_push_errors(pyrt_cli, reg_env, anon_registry, fresh_registry):
    r = push(pyrt_cli, reg_env, "nosuch:1", f"{fresh_registry.host}/x/y:1", check=False)
    assert r.returncode == 125 and "no such image" in r.stderr
    pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/busybox:latest")
    r = push(pyrt_cli, reg_env, f"{anon_registry.host}/test/busybox:latest",
             f"127.0.0.1:{free_port()}/x/y:1", check=False)
    assert r.returncode == 125 and "connection refused" in r.stderr
