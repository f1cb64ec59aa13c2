"""`pyrt save` to docker-archive and oci-archive, read back by `pyrt load` and skopeo."""
from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.registry import *  # noqa: F401,F403
from test_registry_pull import pull, skopeo_digest

pytestmark = pytest.mark.usefixtures("registry_tools")


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_pulled_and_load_back(pyrt_cli, reg_env, anon_registry, tmp_path, fmt):
    ref = f"{anon_registry.host}/test/layered:1"
    pull(pyrt_cli, reg_env, ref)
    out = tmp_path / "image.tar"
    pyrt_cli("save", "--format", fmt, "-o", str(out), ref, check=True)
    names = tarfile.open(out).getnames()
    assert ("manifest.json" if fmt == "docker-archive" else "index.json") in names
    r = subprocess.run(["skopeo", "inspect", f"{fmt}:{out}"], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    assert len(info["Layers"]) == 4
    if fmt == "oci-archive":
        assert info["Digest"] == skopeo_digest(anon_registry.host, "test/layered:1")
    other = type(pyrt_cli)(pyrt_cli.root + "2", pyrt_cli.runroot + "2")
    try:
        r = other("load", "-i", str(out), check=True)
        assert ref in r.stdout
        machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
        r = other("run", "--rm", ref, "sh", "-c", "ls /data /opq; cat /links/hard", check=True)
        assert "gone.txt" not in r.stdout and "fresh.txt" in r.stdout and "target" in r.stdout
    finally:
        other.cleanup()


def test_save_loaded_image_and_stdout(pyrt_cli, test_images, tmp_path):
    pyrt_cli("load", "-i", test_images["busybox"], check=True)
    img = json.loads(
        pyrt_cli("images", "--no-trunc", "--format", "json", check=True).stdout.splitlines()[0])
    pyrt_cli("tag", img["ID"], "saved/busybox:1", check=True)
    out = tmp_path / "oci.tar"
    pyrt_cli("save", "--format", "oci-archive", "-o", str(out), "saved/busybox:1", check=True)
    other = type(pyrt_cli)(pyrt_cli.root + "2", pyrt_cli.runroot + "2")
    try:
        r = other("load", "-i", str(out), check=True)
        assert "saved/busybox:1" in r.stdout
        machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
        assert other("run", "--rm", "saved/busybox:1", "echo", "hi", check=True).stdout == "hi\n"
    finally:
        other.cleanup()
    with open(tmp_path / "d.tar", "wb") as f:
        r = subprocess.run(pyrt_cli.argv("save", "saved/busybox:1"), stdout=f, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    entries = json.loads(tarfile.open(tmp_path / "d.tar").extractfile("manifest.json").read())
    assert entries[0]["RepoTags"] == ["saved/busybox:1"]
    r = pyrt_cli("save", "-o", str(tmp_path / "x.tar"), "nosuch:1")
    assert r.returncode == 125 and not (tmp_path / "x.tar").exists()
