"""``--init`` must never hand the host's init binary to the container.

Docker binds the host's ``docker-init`` read-only into the container.  A container that
can remount (``--privileged``, or CAP_SYS_ADMIN) turns the bind writable and changes
the *host's* file: ``chmod 4777`` makes the host's init a setuid program that runs any
command for any local user (catatonit and tini run the program they are given), and
when no container is running it, its contents can be rewritten.  pyrt copies the
contents into the container's bundle (containers/init.py): the attack changes the
container's private copy only.

The attack itself is only ever aimed at a throw-away copy (``--init-path``): were the
fix to regress, a test that attacked the host's /usr/bin/catatonit would leave that
binary setuid and owned by another user (it did once, while proving this test fails
without the fix).  For the default init the proof is read-only: the file the container
sees is another inode than the host's.
"""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

HOST_INIT = "/usr/bin/catatonit"

ATTACK = ("mount -o remount,rw,bind /run/pyrt-init && echo remounted; "
          "chown 1:1 /run/pyrt-init && echo chowned; "
          "chmod 4777 /run/pyrt-init && echo chmodded; "
          "stat -c %a /run/pyrt-init")


def _fingerprint(path: str) -> tuple:
    st = os.stat(path)
    with open(path, "rb") as f:
        return st.st_mode, st.st_uid, st.st_gid, hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def host_init():
    if not os.path.exists(HOST_INIT):
        pytest.skip(f"{HOST_INIT} is not installed on this machine (package catatonit)")
    return HOST_INIT


def test_privileged_container_cannot_change_the_init_it_was_given(demo_cli, host_init,
                                                                 tmp_path):
    path = tmp_path / "catatonit"  # the target: a copy, never the host's binary
    shutil.copy2(host_init, path)
    os.chmod(path, 0o755)
    before = _fingerprint(str(path))
    r = demo_cli("run", "--rm", "--privileged", "--init", "--init-path", str(path),
                 demo_cli.image, "sh", "-c", ATTACK)
    # the attack did run: it remounted and changed the file it was given...
    assert r.stdout.split() == ["remounted", "chowned", "chmodded", "4777"], (r.stdout, r.stderr)
    # ...which was the container's copy: the file on the host is unchanged
    assert _fingerprint(str(path)) == before


def test_default_init_is_not_the_hosts_inode(demo_cli, host_init):
    """Read-only: the default init (the host's catatonit) reaches the container as a
    copy, another inode, so no change through the mount can reach the host's file."""
    st = os.stat(host_init)
    r = demo_cli("run", "--rm", "--init", demo_cli.image, "stat", "-L", "-c", "%d %i %a",
                 "/run/pyrt-init")
    assert r.returncode == 0, r.stderr
    dev, ino, mode = r.stdout.split()
    assert (int(dev), int(ino)) != (st.st_dev, st.st_ino), "the host's own inode is bound"
    assert mode == "555"
