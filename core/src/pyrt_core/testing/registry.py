"""Real registries for tests, all on 127.0.0.1 and stopped by pid.

* :class:`Registry` - Debian's ``docker-registry`` (distribution 2.8) with a
  config of our own (never the packaged one): anonymous, htpasswd Basic
  auth, Bearer tokens from :class:`TokenServer`, or TLS with a CA made by
  :func:`make_ca` (``openssl``).  Data directory under the test's tmp.
* :class:`TokenServer` - a small token server: checks Basic credentials,
  grants the requested scopes to known users, signs RS256 JWTs with
  ``openssl dgst`` (the certificate goes in the JWT's ``x5c`` header and is
  the registry's ``rootcertbundle``).
* :class:`FaultProxy` - a Python HTTP proxy in front of a registry that
  injects faults: a blob whose digest does not match, truncated blobs,
  dropped connections, malformed or odd manifests, 429/5xx answers,
  throttling; it counts requests and bytes.
* :class:`RecordingServer` - a scripted server (a hostile registry, token
  server or "other host") on a loopback address, plain HTTP, TLS or both on
  one port; it records every request with its headers.

The pieces live in :mod:`pyrt_core.testing.registries`; this module holds the
``docker-registry`` process and the pytest fixtures, and re-exports the rest (use
it with ``from pyrt_core.testing.registry import *``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from pyrt_core.testing.registries.auth import HTPASSWD, OPENSSL, TokenServer, htpasswd_file, make_ca
from pyrt_core.testing.registries.faultproxy import FaultProxy
from pyrt_core.testing.registries.images import (
    build_big_layout,
    build_multi_layout,
    populate,
    rootfs_tar,
    skopeo_push,
)
from pyrt_core.testing.registries.recording import RecordingServer
from pyrt_core.testing.registries.servers import free_port, wait_port

REGISTRY = shutil.which("docker-registry")


class Registry:
    def __init__(self, workdir: str, auth: dict | None = None, tls: dict | None = None):
        if not REGISTRY:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        http_cfg = {"addr": self.host, "secret": "pyrt-tests"}
        if tls:
            http_cfg["tls"] = {"certificate": tls["cert"], "key": tls["key"]}
        cfg = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
               "storage": {"filesystem": {"rootdirectory": os.path.join(workdir, "data")},
                           "delete": {"enabled": True}},
               "http": http_cfg}
        if auth:
            cfg["auth"] = auth
        self.config = os.path.join(workdir, "config.yml")
        with open(self.config, "w") as f:
            json.dump(cfg, f)  # YAML is a superset of JSON
        self.log = open(os.path.join(workdir, "registry.log"), "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()



def registry_missing() -> list[str]:
    out = [n for n, p in (("docker-registry", REGISTRY), ("openssl", OPENSSL), ("htpasswd", HTPASSWD),
                          ("skopeo", shutil.which("skopeo")), ("umoci", shutil.which("umoci")))
           if not p]
    return out


@pytest.fixture(scope="session")
def registry_tools():
    missing = registry_missing()
    if missing:
        pytest.skip("registry test tools missing: " + ", ".join(missing) +
                    " (apt-get install docker-registry apache2-utils openssl skopeo umoci)")


@pytest.fixture(scope="session")
def test_images(registry_tools, tmp_path_factory):
    """Built image layouts (see the keys)."""
    from pyrt_core.testing import imagebuilder as ib

    d = str(tmp_path_factory.mktemp("regimages"))
    rootfs = ib.busybox_rootfs(os.path.join(d, "rootfs"))
    out = {"dir": d, "rootfs": rootfs}
    out["busybox"] = ib.build_oci_layout(os.path.join(d, "busybox"), rootfs, tag="latest")
    out["layered"] = ib.build_layered_layout(os.path.join(d, "layered"), d, tag="layered")
    shared = os.path.join(d, "shared")
    ib.build_oci_layout(shared, rootfs, tag="base")

    def add(r):
        with open(os.path.join(r, "etc/child"), "w") as f:
            f.write("child\n")

    ib.build_oci_layout(shared, None, tag="child", base_tag="base", extra_layers=[add],
                        cmd=("/bin/cat", "/etc/child"))
    out["shared"] = shared
    out["multi"] = os.path.join(d, "multi")
    out["multi_info"] = build_multi_layout(out["multi"], rootfs)
    out["plain"] = os.path.join(d, "plain")
    out["plain_info"] = ib.write_oci_layout(out["plain"], [rootfs_tar(rootfs)], compress=None)
    out["big"] = os.path.join(d, "big")
    out["big_info"] = build_big_layout(out["big"])
    return out


@pytest.fixture(scope="session")
def anon_registry(test_images, tmp_path_factory):
    """An anonymous registry on 127.0.0.1 holding the test images."""
    reg = Registry(str(tmp_path_factory.mktemp("registry-anon")))
    try:
        populate(reg.host, test_images)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def _proxy(anon_registry):
    p = FaultProxy(anon_registry.host)
    yield p
    p.stop()


@pytest.fixture
def fault_proxy(_proxy):
    """A :class:`FaultProxy` in front of ``anon_registry``, reset for each test."""
    _proxy.reset()
    yield _proxy
    _proxy.reset()


@pytest.fixture
def reg_env(tmp_path):
    """Environment for `pyrt` subprocesses: private auth file, fast retries."""
    env = dict(os.environ)
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    env["PYRT_REGISTRY_BACKOFF"] = "0.05"
    env.pop("PYRT_INSECURE_REGISTRIES", None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


__all__ = ["registry_tools", "test_images", "anon_registry", "_proxy", "fault_proxy", "reg_env",
           "Registry", "TokenServer", "FaultProxy", "RecordingServer", "make_ca", "htpasswd_file", "populate",
           "skopeo_push", "free_port"]
