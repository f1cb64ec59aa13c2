"""Bad registries and faults: each gives a clear error and leaves the store as it was;
retries, resume after a dropped connection and after a pull killed with SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.registry import *  # noqa: F401,F403
from test_registry_pull import pull, store_state

pytestmark = pytest.mark.usefixtures("registry_tools")


def manifest_of(host, repo):
    r = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repo}"],
                       capture_output=True, check=True)
    return json.loads(r.stdout)


def layer_digests(host, repo):
    return [l["digest"] for l in manifest_of(host, repo)["layers"]]


def assert_clean(root):
    images, layers, blobs = store_state(root)
    assert images == {} and layers == {} and blobs == []


@pytest.fixture
def proxy_env(reg_env):
    return reg_env


def test_blob_digest_mismatch(pyrt_cli, proxy_env, fault_proxy):
    digests = layer_digests(fault_proxy.host, "test/layered:1")
    fault_proxy.corrupt_blobs.add(digests[1])
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/layered:1", check=False)
    assert r.returncode == 125
    assert "digest mismatch" in r.stderr and digests[1] in r.stderr
    assert_clean(pyrt_cli.root)
    ddir = os.path.join(pyrt_cli.root, "images/downloads")
    assert digests[1].split(":")[1] + ".partial" not in os.listdir(ddir)
    # the same pull from a healthy registry works, reusing verified blobs
    fault_proxy.reset()
    pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/layered:1")
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    assert pyrt_cli("run", "--rm", f"{fault_proxy.host}/test/layered:1", "cat", "/etc/hello",
                    check=True).stdout == "hello from layer 3\n"


def test_truncated_blob(pyrt_cli, proxy_env, fault_proxy):
    d = layer_digests(fault_proxy.host, "test/busybox:latest")[0]
    fault_proxy.short_blobs[d] = 1000
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox:latest", check=False)
    assert r.returncode == 125 and "truncated" in r.stderr
    assert_clean(pyrt_cli.root)


def test_connection_dropped_every_time(pyrt_cli, proxy_env, fault_proxy):
    d = layer_digests(fault_proxy.host, "test/busybox:latest")[0]
    fault_proxy.drop_blobs[d] = 0
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox:latest", check=False)
    assert r.returncode == 125 and "truncated" in r.stderr and "retries" in r.stderr
    assert_clean(pyrt_cli.root)


def test_connection_dropped_once_resumes_with_range(pyrt_cli, proxy_env, fault_proxy):
    d = layer_digests(fault_proxy.host, "test/big:1")[0]
    fault_proxy.drop_once[d] = 1 << 20
    pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/big:1")
    gets = [e for e in fault_proxy.requests_for(d) if e[0] == "GET"]
    assert len(gets) == 2 and gets[1][4] == f"bytes={1 << 20}-"


@pytest.mark.parametrize("body,ctype,message", [
    (b'{"schemaVersion": 2, "layers": [', "application/vnd.oci.image.manifest.v1+json", "malformed manifest"),
    (b'{"schemaVersion": 2, "mediaType": "application/x-unknown", "layers": []}', "application/x-unknown",
     "unsupported manifest media type"),
    (b'{"schemaVersion": 1, "name": "test/busybox", "tag": "bad", "fsLayers": []}',
     "application/vnd.docker.distribution.manifest.v1+prettyjws", "schema 1"),
])
def test_bad_manifests(pyrt_cli, proxy_env, fault_proxy, body, ctype, message):
    fault_proxy.manifest_override["bad"] = (ctype, body)
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox:bad", check=False)
    assert r.returncode == 125 and message in r.stderr, r.stderr
    assert_clean(pyrt_cli.root)


def test_unknown_layer_media_type(pyrt_cli, proxy_env, fault_proxy):
    m = manifest_of(fault_proxy.host, "test/busybox:latest")
    m["layers"][0]["mediaType"] = "application/vnd.example.layer.v1+weird"
    fault_proxy.manifest_override["weird"] = (m.get("mediaType", "application/vnd.oci.image.manifest.v1+json"), json.dumps(m).encode())
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox:weird", check=False)
    assert r.returncode == 125 and "unsupported layer media type" in r.stderr
    assert_clean(pyrt_cli.root)


def test_manifest_digest_mismatch_by_digest(pyrt_cli, proxy_env, fault_proxy):
    m = manifest_of(fault_proxy.host, "test/busybox:latest")
    fake = "sha256:" + "0" * 64
    fault_proxy.manifest_override[fake] = (m.get("mediaType", "application/vnd.oci.image.manifest.v1+json"), json.dumps(m).encode())
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox@{fake}", check=False)
    assert r.returncode == 125 and "digest mismatch" in r.stderr
    assert_clean(pyrt_cli.root)


def test_retries_on_429_and_5xx(pyrt_cli, proxy_env, fault_proxy):
    fault_proxy.status_queue = [429, 503, 500, 502]
    pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox:latest")
    statuses = [e[2] for e in fault_proxy.log]
    assert statuses[:4] == [429, 503, 500, 502]
    fault_proxy.clear_log()
    fault_proxy.status_queue = [503] * 20
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/layered:1", check=False)
    assert r.returncode == 125 and "503" in r.stderr


def test_registry_goes_down(pyrt_cli, proxy_env, fault_proxy):
    fault_proxy.down = True
    r = pull(pyrt_cli, proxy_env, f"{fault_proxy.host}/test/busybox:latest", check=False)
    assert r.returncode == 125 and fault_proxy.host in r.stderr
    assert_clean(pyrt_cli.root)


def test_sigkill_midway_then_resume(pyrt_cli, proxy_env, fault_proxy, test_images):
    ref = f"{fault_proxy.host}/test/big:1"
    digests = layer_digests(fault_proxy.host, "test/big:1")
    sizes = [l["size"] for l in manifest_of(fault_proxy.host, "test/big:1")["layers"]]
    total = sum(sizes)
    fault_proxy.throttle = 2 << 20  # 2 MB/s per connection
    proc = subprocess.Popen(pyrt_cli.argv("pull", "--tls-verify=false", ref), env=proxy_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while fault_proxy.live_bytes < (2 << 20) and time.monotonic() < deadline:
            time.sleep(0.05)
            assert proc.poll() is None, "the pull ended before it could be killed"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    first = fault_proxy.live_bytes
    assert 0 < first < total
    fault_proxy.throttle = None
    time.sleep(1)  # let the proxy notice the dead connections
    fault_proxy.clear_log()
    pull(pyrt_cli, proxy_env, ref)
    second = sum(e[3] for e in fault_proxy.log if e[0] == "GET" and e[1].rsplit("/", 1)[-1] in digests)
    ranged = [e for e in fault_proxy.log if e[4]]
    assert ranged, "the second pull did not resume with Range"
    resumed = sum(int(e[4].split("=")[1].rstrip("-")) for e in ranged)
    assert resumed > 0 and second == total - resumed, fault_proxy.log  # only the missing bytes were sent again
    images, layers, blobs = store_state(pyrt_cli.root)
    assert len(images) == 1 and len(layers) == 2 and all(not l.get("incomplete") for l in layers.values())
    for d in digests:
        assert d.split(":")[1] in blobs
    ddir = os.path.join(pyrt_cli.root, "images/downloads")
    assert [n for n in os.listdir(ddir) if not n.startswith(".tmp-")] == []
    # the stored layers hold the right content (diff ids were verified on apply)
    with open(os.path.join(pyrt_cli.root, "images/blobs/sha256", images_config(images))) as f:
        diff_ids = json.load(f)["rootfs"]["diff_ids"]
    assert sorted(l["diff_id"] for l in layers.values()) == sorted(diff_ids)


def images_config(images):
    (iid,) = images
    return iid.split(":")[1]
