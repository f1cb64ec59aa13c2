"""Where a container's log is written (``--log-driver``/``--log-opt``, monitor.logdrivers):
only root's own file in the container's record directory on the host, never a path the
caller, the image or the container can choose or reach.

Attack: the log is written as root (by conmon, or by the CLI in the foreground) with
whatever the container prints.  A log destination that could be named (podman's
``--log-opt path=``) or that lay inside the rootfs or a mount the container sees would let
the container's output be written to a file of the host (or a link the container made in
its rootfs be followed from the host side), and a log another user could read would give
them the container's output (a secret it prints).  pyrt takes no path option (each
driver's options are docker's, ``path`` is refused), writes ``<root>/containers/<id>/ctr.log``
only (not a link, root's, mode 0600, also after ``max-size`` starts it again, in 0700
directories), and nothing of that directory is mounted into the container."""
from __future__ import annotations

import os
import stat

import pytest

from pyrt_core.testing.lifecycle import inspect, leftovers, state


@pytest.fixture
def cli(detached_cli):
    return detached_cli


@pytest.mark.parametrize("driver", [None, "json-file", "k8s-file"])
@pytest.mark.parametrize("mode", [["run"], ["run", "-d"], ["create"]])
def test_no_log_path_can_be_named(cli, tmp_path, driver, mode):
    """podman's k8s-file ``path`` option (the log anywhere, e.g. inside a rootfs) is refused,
    with one line, exit 125, nothing created and nothing written there."""
    target = tmp_path / "elsewhere.log"
    flags = (["--log-driver", driver] if driver else []) + ["--log-opt", f"path={target}"]
    r = cli(*mode, *flags, "--name", "lp", cli.image, "echo", "to-the-log")
    assert r.returncode == 125, r.stdout + r.stderr
    assert "unknown log opt 'path'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not target.exists()
    assert cli("ps", "-aq").stdout == "" and leftovers(cli) == []


def _assert_roots_only(cli, cid):
    log = os.path.join(cli.root, "containers", cid, "ctr.log")
    st = os.lstat(log)
    assert stat.S_ISREG(st.st_mode), "the log is not a regular file"
    assert st.st_uid == 0 and not st.st_mode & 0o077, oct(st.st_mode)
    d = os.path.dirname(log)
    while d != os.path.dirname(cli.root):  # the record directories up to the store root
        dst = os.lstat(d)
        assert stat.S_ISDIR(dst.st_mode) and dst.st_uid == 0, d
        assert not dst.st_mode & 0o022, f"{d} is writable by others: {oct(dst.st_mode)}"
        d = os.path.dirname(d)
    assert not os.lstat(os.path.join(cli.root, "containers", cid)).st_mode & 0o077
    return log


@pytest.mark.parametrize("detach", [True, False])
def test_log_is_roots_file_out_of_the_containers_reach(cli, detach):
    # ~12 KiB of output into a 2 KiB log: conmon (and the CLI) start the file again
    cmd = ["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo secret-$i-xxxxxxxxxxxxxxxxxxxxxxxx; "
           "i=$((i+1)); done; sleep 1000"]
    flags = ["--log-opt", "max-size=2k", "--name", "lg"]
    if detach:
        assert cli("run", "-d", *flags, cli.image, *cmd).returncode == 0
    else:
        import subprocess

        p = subprocess.Popen(cli.argv("run", *flags, cli.image, *cmd), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    try:
        from pyrt_core.testing.lifecycle import wait_for

        wait_for(lambda: "secret-199-" in cli("logs", "lg").stdout, what="the output logged")
        cid = inspect(cli, "lg")["Id"]
        log = _assert_roots_only(cli, cid)
        # nothing of the log's directory is mounted into the container
        pid = state(cli, "lg")["Pid"]
        with open(f"/proc/{pid}/mountinfo") as f:
            roots = [line.split()[3] for line in f]
        logdir = os.path.dirname(log)
        assert not any(r == logdir or r.startswith(logdir + "/") or logdir.startswith(r.rstrip("/") + "/")
                       and r != "/" for r in roots), roots
    finally:
        assert cli("rm", "-f", "lg").returncode == 0
        if not detach:
            p.wait(timeout=30)
