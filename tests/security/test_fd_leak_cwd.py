"""Working directory through a leaked fd (runc's CVE-2024-21626 class).

If any file descriptor of a host directory (the rootfs's O_PATH handle, a
mount source, a state directory) is still open when the container's working
directory is set or its executable is looked up, ``/proc/self/fd/N`` is a door
to the host: ``..`` from there climbs the host's tree.  The attacks come from
the command line (``-w``), from an image's WorkingDir, from the executable path
itself, and through ``exec`` and the OCI runtime.  Every fd number a container
could aim at (3 to 15) is tried: none may reach the host's files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from hostile import climb, host_bait, load_image
from pyrt_core.testing.lifecycle import wait_for
from pyrt_core.testing.terminal import Term

FDS = range(3, 16)


def _attack_script(bait) -> str:
    """Read the host's secret and write a file on the host, relative to the cwd."""
    return (f"cat {climb(bait.secret)} 2>/dev/null; "
            f"echo pwned > {climb(bait.written)} 2>/dev/null; echo done")


def _check(r, bait):
    out = r.stdout + r.stderr
    bait.assert_untouched(out)
    if r.returncode != 0:
        # refused: one clear line, no traceback
        assert "Traceback" not in out
        assert r.stderr.strip(), "refused without saying why"


def test_run_workdir_through_proc_fd(demo_cli, tmp_path):
    bait = host_bait(tmp_path)
    for n in FDS:
        r = demo_cli("run", "--rm", "-w", f"/proc/self/fd/{n}", demo_cli.image,
                     "sh", "-c", _attack_script(bait))
        _check(r, bait)


def test_run_executable_through_proc_fd(demo_cli, tmp_path):
    """args[0] resolved through a leaked fd would run a host binary in the container
    (execve resolves its path before close-on-exec fds are closed)."""
    bait = host_bait(tmp_path)
    marker = tmp_path / "host-bin"
    marker.mkdir()
    script = marker / "evil"
    script.write_text("#!/bin/sh\necho ran-a-host-program\n")
    script.chmod(0o755)
    for n in FDS:
        r = demo_cli("run", "--rm", demo_cli.image, f"/proc/self/fd/{n}/{climb(str(script))}")
        assert "ran-a-host-program" not in r.stdout + r.stderr
        _check(r, bait)


def test_image_working_dir_through_proc_fd(pyrt_cli, tmp_path):
    bait = host_bait(tmp_path)
    for n in (3, 4, 5, 7):
        image = load_image(pyrt_cli, tmp_path / f"img{n}", f"hostile/workdir:{n}",
                           config={"WorkingDir": f"/proc/self/fd/{n}",
                                   "Cmd": ["sh", "-c", _attack_script(bait)]})
        r = pyrt_cli("run", "--rm", image)
        _check(r, bait)


def test_run_detached_workdir_through_proc_fd(detached_cli, tmp_path):
    bait = host_bait(tmp_path)
    for n in FDS:
        name = f"fdleak{n}"
        r = detached_cli("run", "-d", "--name", name, "-w", f"/proc/self/fd/{n}",
                         detached_cli.image, "sh", "-c", _attack_script(bait))
        if r.returncode == 0:
            wait_for(lambda: detached_cli("inspect", "--format", "{{.State.Status}}", name)
                     .stdout.strip() in ("exited", "stopped")
                     or json.loads(detached_cli("inspect", name).stdout)[0]["State"]["Status"]
                     == "exited", what=f"{name} to exit")
            logs = detached_cli("logs", name)
            bait.assert_untouched(logs.stdout + logs.stderr)
        else:
            _check(r, bait)
        detached_cli("rm", "-f", name)
    bait.assert_untouched()


def test_run_it_workdir_through_proc_fd(detached_cli, tmp_path):
    bait = host_bait(tmp_path)
    for n in (3, 4, 5, 6, 7, 8):
        t = Term(detached_cli.argv("run", "-it", "--rm", "-w", f"/proc/self/fd/{n}",
                                   detached_cli.image, "sh", "-c", _attack_script(bait)))
        try:
            t.wait(30)
            out = t.buf.decode(errors="replace")
        finally:
            t.close()
        bait.assert_untouched(out)


def test_exec_workdir_through_proc_fd(detached_cli, tmp_path):
    bait = host_bait(tmp_path)
    detached_cli("run", "-d", "--name", "victim", detached_cli.image, "sleep", "300", check=True)
    for n in FDS:
        r = detached_cli("exec", "-w", f"/proc/self/fd/{n}", "victim",
                         "sh", "-c", _attack_script(bait))
        _check(r, bait)
        r = detached_cli("exec", "victim", f"/proc/self/fd/{n}/{climb('/bin/busybox')}",
                         "cat", climb(bait.secret))
        _check(r, bait)
    detached_cli("rm", "-f", "victim", check=True)


# -- the OCI runtime (as podman and containerd call it) ---------------------------------

RUNTIME = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")


def _spec(args, cwd):
    return {
        "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "rt",
        "process": {"args": args, "cwd": cwd, "user": {"uid": 0, "gid": 0},
                    "env": ["PATH=/bin:/usr/bin"]},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": t} for t in ("mount", "pid", "ipc", "uts", "network")]},
    }


def _runtime(root, *args, timeout=30):
    import tempfile

    with tempfile.TemporaryFile() as out:
        r = subprocess.run([RUNTIME, "--root", root, *args], stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        out.seek(0)
        return r.returncode, out.read().decode(errors="replace")


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8, 9, 10])
def test_runtime_create_cwd_through_proc_fd(busybox_rootfs, tmp_path, n, subreaper):
    bait = host_bait(tmp_path)
    bundle = os.path.dirname(busybox_rootfs)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(_spec(["sh", "-c", _attack_script(bait)], f"/proc/self/fd/{n}"), f)
    root = str(tmp_path / "state")
    cid = f"fdleak{n}"
    try:
        rc, out = _runtime(root, "create", "--bundle", bundle, cid)
        if rc == 0:
            rc, out2 = _runtime(root, "start", cid)
            out += out2
            for _ in range(100):  # until the process is done (it takes no time)
                rc3, st = _runtime(root, "state", cid)
                if rc3 != 0 or json.loads(st)["status"] == "stopped":
                    break
                time.sleep(0.05)
        bait.assert_untouched(out)
    finally:
        _runtime(root, "delete", "--force", cid)


def test_runtime_exec_cwd_through_proc_fd(busybox_rootfs, tmp_path, subreaper):
    bait = host_bait(tmp_path)
    bundle = os.path.dirname(busybox_rootfs)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(_spec(["sleep", "300"], "/"), f)
    root = str(tmp_path / "state")
    cid = "fdleak-exec"
    try:
        rc, out = _runtime(root, "create", "--bundle", bundle, cid)
        assert rc == 0, out
        assert _runtime(root, "start", cid)[0] == 0
        for n in FDS:
            rc, out = _runtime(root, "exec", "--cwd", f"/proc/self/fd/{n}", cid,
                               "sh", "-c", _attack_script(bait))
            bait.assert_untouched(out)
    finally:
        _runtime(root, "delete", "--force", cid)
