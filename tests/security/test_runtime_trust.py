"""``--runtime PATH|NAME`` makes pyrt run a program as root with the container's whole
configuration.  Attack: another local user who can write that program (its file, or a
directory on its path) gets root the next time a container uses it.  pyrt runs a runtime
only when, symlinks resolved, it is a root-owned file writable by neither group nor
others in directories with the same property (monitor.ociruntime), checked at create and
again before every use (a file made writable after the container was created)."""
import os
import shutil

import pytest

from pyrt_core.testing.lifecycle import conmon_pids, leftovers


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _evil(directory, marker):
    """A runtime that records it ran (as root), then behaves as runc."""
    runc = os.path.realpath(shutil.which("runc"))
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "runtime")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\necho ran >> {marker}\nexec {runc} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def _refused(cli, marker, *argv, code=125):
    r = cli(*argv)
    assert r.returncode == code, r.stdout + r.stderr
    assert "refusing the OCI runtime" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not os.path.exists(marker), "the untrusted runtime was run"
    return r


def test_trusted_runtime_is_used(cli, tmp_path):
    """The control: the same program, root's and nobody else's, does run (so the marker
    would show a refused one running)."""
    marker = str(tmp_path / "ran")
    path = _evil(str(tmp_path / "bin"), marker)
    r = cli("run", "--rm", "--runtime", path, cli.image, "echo", "ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    assert os.path.exists(marker)


@pytest.mark.parametrize("how", ["other-owner", "world-writable", "group-writable",
                                 "writable-directory", "symlink-to-writable", "config-entry"])
def test_runtime_another_user_can_write_is_refused(cli, tmp_path, how):
    marker = str(tmp_path / "ran")
    d = str(tmp_path / "bin")
    path = _evil(d, marker)
    argv_runtime = path
    extra = []
    if how == "other-owner":
        os.chown(path, 1000, 1000)
    elif how == "world-writable":
        os.chmod(path, 0o757)
    elif how == "group-writable":
        os.chmod(path, 0o775)
    elif how == "writable-directory":
        os.chmod(d, 0o777)  # another user could replace the file
    elif how == "symlink-to-writable":
        os.chown(path, 1000, 1000)
        os.makedirs(tmp_path / "trusted")
        argv_runtime = str(tmp_path / "trusted" / "runc")
        os.symlink(path, argv_runtime)
    elif how == "config-entry":
        os.chown(path, 1000, 1000)
        conf = tmp_path / "pyrt.toml"
        conf.write_text(f'[runtimes]\nrunc = "{path}"\n')
        extra = ["--config", str(conf)]
        argv_runtime = "runc"
    for argv in (["run", "--rm"], ["run", "-d"], ["create"]):
        _refused(cli, marker, *extra, *argv, "--runtime", argv_runtime, cli.image, "true")
    assert cli(*extra, "ps", "-aq").stdout == ""
    assert leftovers(cli) == [] and conmon_pids(cli) == []


def test_runtime_made_writable_after_create_is_refused(cli, tmp_path):
    """Trusted when the container was created, writable by others when it starts: the
    start refuses it (the check is made again before every use)."""
    marker = str(tmp_path / "ran")
    path = _evil(str(tmp_path / "bin"), marker)
    r = cli("create", "--name", "later", "--runtime", path, cli.image, "true")
    assert r.returncode == 0, r.stderr
    os.chmod(path, 0o777)
    _refused(cli, marker, "start", "later", code=1)  # start takes several containers: 1 (docker)
    assert cli("inspect", "-f", "{{.State.Status}}", "later").stdout.strip() == "exited"
    assert cli("rm", "later").returncode == 0
    assert leftovers(cli) == [] and conmon_pids(cli) == []
