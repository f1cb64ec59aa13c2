"""``exec`` in a container of another OCI runtime (``--runtime runc``) must not hand the
container a host file as the process's stdio.

``runc exec --detach`` (``pyrt exec -d``) gives the process runc's own stdin, stdout and
stderr as they are (runc's ``inheritStdio``): whatever pyrt passes becomes the container's.
Passing the host's ``/dev/null`` (Popen's DEVNULL) would let root in the container chmod
or replace the machine's ``/dev/null`` through ``/proc/self/fd/0`` (docs/security.md, 12,
the same class for pyrt's own runtime).  pyrt gives it the container's own ``/dev/null``,
opened with openat2(RESOLVE_IN_ROOT) under ``/proc/<init>/root`` and checked to be the
null device (engine.exec._container_null): a ``/dev/null`` the container replaced by a
link to a host path (an absolute link would lead out of a plain ``/proc/PID/root/...``
open) or by a regular file is refused, nothing run."""
from __future__ import annotations

import os
import shutil
import time

import pytest

from pyrt_core.testing.lifecycle import state, wait_for

# what the detached process learns of its stdio: the identity of the file behind each fd,
# written to a file in the container (no change is made to anything it was given)
# (the shell's own fds, /proc/$$/fd: in $(...) a command's stdout is the substitution's pipe)
PROBE = ("exec 3>/tmp/ids.tmp; for n in 0 1 2; do echo fd$n=$(stat -L -c %d:%i /proc/$$/fd/$n) >&3; "
         "done; echo null=$(stat -L -c %d:%i /dev/null) >&3; exec 3>&-; mv /tmp/ids.tmp /tmp/ids")


@pytest.fixture
def box(detached_cli):
    assert shutil.which("runc"), "runc is not installed (scripts/test installs it with apt)"
    cli = detached_cli
    cli("run", "-d", "--runtime", "runc", "--name", "xr", cli.image, "sleep", "1000", check=True)
    yield cli
    cli("rm", "-f", "xr")


def _identity(path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def test_detached_exec_gets_the_containers_dev_null_not_the_hosts(box):
    r = box("exec", "-d", "xr", "sh", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: box("exec", "xr", "test", "-e", "/tmp/ids").returncode == 0,
             what="the detached exec's probe")
    ids = dict(line.split("=", 1) for line in box("exec", "xr", "cat", "/tmp/ids").stdout.split())
    host = _identity("/dev/null")
    for n in ("fd0", "fd1", "fd2"):
        assert ids[n] != host, f"the container got the host's /dev/null as {n}: {ids}"
        assert ids[n] == ids["null"], f"{n} is not the container's /dev/null: {ids}"


@pytest.mark.parametrize("how", ["link-to-a-host-path", "dangling-link", "regular-file"])
def test_a_replaced_dev_null_is_refused(box, tmp_path, how):
    """The container replaced its /dev/null: by an absolute link to a path that names a host
    file (a plain open of /proc/PID/root/dev/null resolves an absolute link from the host's
    root: that file would become the process's stdio and take its output), the same
    link with no such path in the container, or a file.  exec -d is refused with one line;
    nothing runs; the host file is intact; a foreground exec without -i is refused alike."""
    victim = tmp_path / "host-file"
    victim.write_text("host's\n")
    os.chmod(victim, 0o600)
    make = {
        # the path exists in the container too (runc looks the container's /dev/null up)
        "link-to-a-host-path": f"mkdir -p {tmp_path} && echo decoy > {victim} && ln -s {victim} /dev/null",
        "dangling-link": f"ln -s {victim} /dev/null",
        "regular-file": "echo container > /dev/null.new && mv /dev/null.new /dev/null",
    }[how]
    r = box("exec", "xr", "sh", "-c", f"rm /dev/null && {make}")
    assert r.returncode == 0, r.stderr
    r = box("exec", "-d", "xr", "sh", "-c", "echo ran > /tmp/ran; echo from-the-container; " + PROBE)
    time.sleep(0.5)  # (what a process handed the host file would have written by now)
    assert victim.read_text() == "host's\n", "the container's process wrote to the host file"
    assert r.returncode == 125, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "/dev/null" in r.stderr, r.stderr
    # (read from here: runc itself cannot exec into a container without a /dev/null)
    assert not os.path.lexists(f"/proc/{state(box, 'xr')['Pid']}/root/tmp/ran"), "the process ran"
    r = box("exec", "xr", "true")
    assert r.returncode == 125 and "/dev/null" in r.stderr, r.stdout + r.stderr
    assert victim.read_text() == "host's\n" and os.stat(victim).st_mode & 0o777 == 0o600
