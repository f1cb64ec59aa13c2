"""Basic (htpasswd) and Bearer-token auth, `pyrt login`/`logout`, TLS with a custom CA."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.registry import *  # noqa: F401,F403
from test_registry_pull import pull, store_state

pytestmark = pytest.mark.usefixtures("registry_tools")

USERS = {"alice": "s3cret", "bob": "hunter2"}


@pytest.fixture(scope="module")
def basic_registry(test_images, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("registry-basic"))
    pw = htpasswd_file(os.path.join(d, "htpasswd"), USERS)
    reg = Registry(d, auth={"htpasswd": {"realm": "pyrt-test", "path": pw}})
    try:
        populate(reg.host, test_images, creds="alice:s3cret")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def token_registry(test_images, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("registry-token"))
    tok = TokenServer(os.path.join(d, "token"), USERS)
    reg = None
    try:
        reg = Registry(os.path.join(d, "reg"), auth=tok.registry_auth())
        populate(reg.host, test_images, creds="alice:s3cret")
        yield reg, tok
    finally:
        if reg:
            reg.stop()
        tok.stop()


def login(cli, env, host, user, password):
    return cli("login", "--tls-verify=false", "-u", user, "--password-stdin", host,
               input=password + "\n", env=env)


def _auth_flow(cli, env, host):
    ref = f"{host}/test/busybox:latest"
    r = pull(cli, env, ref, check=False)
    assert r.returncode == 125 and "authentication required" in r.stderr and "pyrt login" in r.stderr
    r = login(cli, env, host, "alice", "wrong")
    assert r.returncode == 125 and "wrong username or password" in r.stderr
    assert not os.path.exists(env["REGISTRY_AUTH_FILE"])
    r = login(cli, env, host, "alice", "s3cret")
    assert r.returncode == 0, r.stderr
    path = env["REGISTRY_AUTH_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.load(open(path))
    assert base64.b64decode(doc["auths"][host]["auth"]).decode() == "alice:s3cret"
    pull(cli, env, ref)
    machine.skip_unless("distribution", "pyrt-namespaces", detail="to run the image")
    assert cli("run", "--rm", ref, "echo", "ok", check=True).stdout == "ok\n"
    r = cli("logout", host, env=env, check=True)
    assert host not in json.load(open(path))["auths"]
    r = cli("logout", host, env=env)
    assert r.returncode == 125 and "not logged into" in r.stderr
    # a wrong password in the auth file is reported as such
    with open(path, "w") as f:
        json.dump({"auths": {host: {"auth": base64.b64encode(b"alice:nope").decode()}}}, f)
    r = pull(cli, env, ref, check=False)
    assert r.returncode == 125 and "wrong username or password" in r.stderr
    # --creds for one command
    pull(cli, env, f"{host}/test/layered:1", "--creds", "bob:hunter2")


def test_basic_auth(pyrt_cli, reg_env, basic_registry):
    _auth_flow(pyrt_cli, reg_env, basic_registry.host)


def test_bearer_token_auth(pyrt_cli, reg_env, token_registry):
    reg, tok = token_registry
    _auth_flow(pyrt_cli, reg_env, reg.host)
    assert any(r.get("user") == "alice" and any("test/busybox:pull" in s for s in r.get("scopes", []))
               for r in tok.requests)


def test_push_with_token(pyrt_cli, reg_env, token_registry):
    reg, tok = token_registry
    assert login(pyrt_cli, reg_env, reg.host, "bob", "hunter2").returncode == 0
    pull(pyrt_cli, reg_env, f"{reg.host}/test/layered:1")
    r = pyrt_cli("push", "--tls-verify=false", f"{reg.host}/test/layered:1", f"{reg.host}/bob/copy:1",
                 env=reg_env, check=True)
    assert "Mounted from test/layered" in r.stderr
    assert any(any("bob/copy:pull,push" in s for s in q.get("scopes", [])) for q in tok.requests)


def test_tls_with_custom_ca(pyrt_cli, reg_env, test_images, tmp_path):
    ca = make_ca(str(tmp_path / "pki"))
    reg = Registry(str(tmp_path / "reg"), tls=ca)
    try:
        skopeo_push(f"oci:{test_images['busybox']}:latest", reg.host, "test/busybox:latest")
        ref = f"{reg.host}/test/busybox:latest"
        r = pyrt_cli("pull", ref, env=reg_env)
        assert r.returncode == 125 and "certificate verification failed" in r.stderr
        certs = tmp_path / "certs.d" / reg.host
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(open(ca["ca"], "rb").read())
        r = pyrt_cli("pull", "-q", "--cert-dir", str(tmp_path / "certs.d"), ref, env=reg_env, check=True)
        assert r.stdout.startswith("sha256:")
        env = dict(reg_env, PYRT_REGISTRY_CERTS_DIR=str(tmp_path / "certs.d"))
        pyrt_cli("pull", "-q", ref, env=env, check=True)
        # --tls-verify=false accepts the unknown CA too (insecure)
        pyrt_cli("pull", "-q", "--tls-verify=false", ref, env=reg_env, check=True)
        assert len(store_state(pyrt_cli.root)[0]) == 1
    finally:
        reg.stop()
