"""`pyrt pull` / `pyrt run --pull` against a real registry (docker-registry on 127.0.0.1)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.registry import *  # noqa: F401,F403

pytestmark = pytest.mark.usefixtures("registry_tools")


def pyrt(cli, env, *args, **kw):
    return cli(*args, env=env, timeout=kw.pop("timeout", 120), **kw)


def pull(cli, env, ref, *flags, check=True):
    return pyrt(cli, env, "pull", "--tls-verify=false", *flags, ref, check=check)


def store_state(root):
    root = str(root)
    images = json.load(open(os.path.join(root, "images/images.json"))) \
        if os.path.exists(os.path.join(root, "images/images.json")) else {"images": {}}
    layers = json.load(open(os.path.join(root, "storage/layers.json"))) \
        if os.path.exists(os.path.join(root, "storage/layers.json")) else {"layers": {}}
    bdir = os.path.join(root, "images/blobs/sha256")
    blobs = sorted(os.listdir(bdir)) if os.path.isdir(bdir) else []
    return images.get("images", {}), layers.get("layers", {}), blobs


def skopeo_digest(host, repo):
    r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                        f"docker://{host}/{repo}"], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_pull_by_tag_and_run(pyrt_cli, reg_env, anon_registry):
    ref = f"{anon_registry.host}/test/layered:1"
    r = pull(pyrt_cli, reg_env, ref)
    iid = r.stdout.strip().splitlines()[-1]
    assert iid.startswith("sha256:")
    assert "Pull complete" in r.stderr  # plain progress lines when not a terminal
    images = pyrt_cli("images", check=True).stdout
    assert f"{anon_registry.host}/test/layered" in images
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    out = pyrt_cli("run", "--rm", "--pull", "never", ref, "sh", "-c",
                   "ls /data; ls /opq; cat /links/hard; readlink /links/sym; readlink /links/abs;"
                   "stat -c %h /links/target.txt; stat -c %a /data/keep.txt; cat /etc/hello",
                   check=True).stdout.split()
    assert "gone.txt" not in out and "keep.txt" in out and "new.txt" in out  # whiteout
    assert "fresh.txt" in out and "a" not in out and "sub" not in out  # opaque directory
    assert out.count("target") == 1 and "target.txt" in out and "/etc/passwd" in out
    assert "2" in out and "4755" in out and "layer" in out


def test_pull_by_digest_quiet(pyrt_cli, reg_env, anon_registry):
    digest = skopeo_digest(anon_registry.host, "test/busybox:latest")
    ref = f"{anon_registry.host}/test/busybox@{digest}"
    r = pull(pyrt_cli, reg_env, ref, "-q")
    assert r.stdout.strip().startswith("sha256:") and len(r.stdout.split()) == 1
    assert r.stderr == ""
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    r = pyrt_cli("run", "--rm", "--pull", "never", ref, "echo", "hi", check=True)
    assert r.stdout.strip() == "hi"
    r = pyrt_cli("images", "--digests", check=True)
    assert digest in r.stdout


@pytest.mark.parametrize("repo", ["test/layered-docker:1", "test/zstd:1", "test/plain:1"])
def test_pull_formats(pyrt_cli, reg_env, anon_registry, repo):
    """Docker v2 schema 2 manifests, zstd layers and uncompressed layers."""
    ref = f"{anon_registry.host}/{repo}"
    pull(pyrt_cli, reg_env, ref)
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    r = pyrt_cli("run", "--rm", ref, "sh", "-c", "echo ok", check=True)
    assert r.stdout.strip() == "ok"


def test_pull_platforms(pyrt_cli, reg_env, anon_registry, test_images):
    ref = f"{anon_registry.host}/test/multi:1"
    info = test_images["multi_info"]
    pull(pyrt_cli, reg_env, ref)
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    assert pyrt_cli("run", "--rm", ref, "cat", "/etc/arch", check=True).stdout.strip() == "linux/amd64"
    r = pyrt_cli("inspect", ref, check=True)
    doc = json.loads(r.stdout)
    doc = doc[0] if isinstance(doc, list) else doc
    assert doc["Architecture"] == "amd64"
    assert any(info["index"] in d for d in doc["RepoDigests"])
    pull(pyrt_cli, reg_env, ref, "--platform", "linux/arm64")
    assert pyrt_cli("run", "--rm", ref, "cat", "/etc/arch", check=True).stdout.strip() == "linux/arm64"
    r = pull(pyrt_cli, reg_env, ref, "--platform", "linux/s390x", check=False)
    assert r.returncode == 125
    assert "linux/s390x" in r.stderr and "linux/amd64" in r.stderr and "linux/arm64" in r.stderr


def test_shared_layer_stored_once(pyrt_cli, reg_env, anon_registry):
    pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/base:1")
    _, layers_before, _ = store_state(pyrt_cli.root)
    r = pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/child:1")
    assert "Already exists" in r.stderr
    _, layers, _ = store_state(pyrt_cli.root)
    assert len(layers) == len(layers_before) + 1
    # removing one image keeps the shared layer and blobs the other uses
    pyrt_cli("rmi", f"{anon_registry.host}/test/base:1", check=True)
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    assert pyrt_cli("run", "--rm", f"{anon_registry.host}/test/child:1", check=True).stdout == "child\n"


def test_rmi_frees_blobs_and_prune(pyrt_cli, reg_env, anon_registry):
    pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/layered:1")
    pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/busybox:latest")
    images, _, blobs = store_state(pyrt_cli.root)
    assert len(images) == 2 and len(blobs) >= 2 + 4 + 2
    pyrt_cli("rmi", f"{anon_registry.host}/test/layered:1", check=True)
    images, layers, blobs2 = store_state(pyrt_cli.root)
    assert len(images) == 1 and 0 < len(blobs2) < len(blobs)
    # an image without names is dangling: image prune removes it
    pyrt_cli("tag", f"{anon_registry.host}/test/busybox:latest", "other:1", check=True)
    pyrt_cli("rmi", f"{anon_registry.host}/test/busybox:latest", check=True)
    assert pyrt_cli("image", "prune", check=True).stdout == ""
    pyrt_cli("rmi", "other:1", check=True)
    images, layers, blobs = store_state(pyrt_cli.root)
    assert images == {} and layers == {} and blobs == []
    pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/busybox:latest")
    r = pyrt_cli("image", "prune", "-a", check=True)
    assert "Deleted:" in r.stdout
    images, layers, blobs = store_state(pyrt_cli.root)
    assert images == {} and layers == {} and blobs == []


def test_run_pull_policies(pyrt_cli, reg_env, anon_registry):
    ref = f"{anon_registry.host}/test/busybox:latest"
    env = dict(reg_env, PYRT_INSECURE_REGISTRIES=anon_registry.host)
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    r = pyrt_cli("run", "--rm", "--pull", "never", ref, "true", env=env)
    assert r.returncode == 125 and "not found" in r.stderr
    r = pyrt_cli("run", "--rm", ref, "echo", "pulled", env=env, check=True)
    assert r.stdout.strip() == "pulled"
    r = pyrt_cli("run", "--rm", "--pull", "always", ref, "echo", "again", env=env, check=True)
    assert r.stdout.strip() == "again" and "Trying to pull" in r.stderr
    r = pyrt_cli("run", "--rm", "--pull", "missing", ref, "echo", "local", env=env, check=True)
    assert "Trying to pull" not in r.stderr


def test_insecure_needs_configuration(pyrt_cli, reg_env, anon_registry, tmp_path):
    ref = f"{anon_registry.host}/test/busybox:latest"
    r = pyrt_cli("pull", ref, env=reg_env)
    assert r.returncode == 125 and "TLS" in r.stderr
    cfg = tmp_path / "pyrt.toml"
    cfg.write_text(f'[registries]\ninsecure = ["{anon_registry.host}"]\n')
    pyrt_cli("--config", str(cfg), "pull", "-q", ref, env=reg_env, check=True)


def test_without_the_plugin(pyrt_cli, reg_env, anon_registry):
    env = dict(reg_env, PYRT_DISABLE_PLUGINS="image_registry")
    r = pyrt_cli("pull", "--tls-verify=false", f"{anon_registry.host}/test/busybox:latest", env=env)
    assert r.returncode == 125 and "pyrt-image-registry" in r.stderr
    r = pyrt_cli("run", "--rm", f"{anon_registry.host}/test/busybox:latest", "true", env=env)
    assert r.returncode == 125 and "pyrt-image-registry" in r.stderr


def test_unknown_tag_and_registry_down(pyrt_cli, reg_env, anon_registry):
    r = pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/busybox:nope", check=False)
    assert r.returncode == 125 and "manifest unknown" in r.stderr
    r = pull(pyrt_cli, reg_env, f"{anon_registry.host}/test/nothere:1", check=False)
    assert r.returncode == 125 and "manifest unknown" in r.stderr
    port = free_port()
    r = pull(pyrt_cli, reg_env, f"127.0.0.1:{port}/test/busybox:latest", check=False)
    assert r.returncode == 125 and "connection refused" in r.stderr
    assert store_state(pyrt_cli.root)[0] == {}


def test_pull_tag_and_delete_are_events(pyrt_cli, reg_env, anon_registry):
    """``pyrt events``: a pull is journalled by the core around the plugin's
    ``pyrt_image_fetch`` (engine.hook_events), tag/untag/delete by the image store."""
    import time

    since = f"{time.time():.6f}"
    ref = f"{anon_registry.host}/test/busybox:latest"
    iid = pull(pyrt_cli, reg_env, ref, "-q").stdout.strip()
    pyrt_cli("tag", ref, "evtag:1", check=True)
    pyrt_cli("rmi", "evtag:1", check=True)
    pyrt_cli("rmi", ref, check=True)
    r = pyrt_cli("events", "--since", since, "--until", "0s", "--filter", "type=image",
                 "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}", check=True)
    lines = r.stdout.splitlines()
    assert lines[0] == f"pull {ref} {anon_registry.host}/test/busybox", lines
    assert [ln.split()[0] for ln in lines[1:]] == ["tag", "untag", "untag", "delete"], lines
    assert all(ln.split()[1] == iid for ln in lines[1:]), lines
    r = pyrt_cli("events", "--since", since, "--until", "0s", "--filter", "event=pull",
                 "--filter", f"image={ref}", "--format", "{{json .}}", check=True)
    doc = json.loads(r.stdout)
    assert doc["Type"] == "image" and doc["status"] == "pull" and doc["id"] == ref
