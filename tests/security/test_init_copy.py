"""``--init`` must never hand the host's init binary to the container.

Docker binds the host's ``docker-init`` read-only into the container.  A container that
can remount (``--privileged``, or CAP_SYS_ADMIN) turns the bind writable and changes
the *host's* file: ``chmod 4777`` makes the host's init a setuid-root program that runs
any command as root for any local user (catatonit and tini run the program they are
given), and when no container is running it, its contents can be rewritten.  pyrt
copies the contents into the container's bundle (containers/init.py): the attack
changes the container's private copy only.
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


@pytest.fixture(params=["copy", "default"])
def init_binary(request, tmp_path):
    """A host init: a private copy of catatonit given by --init-path, or the host's
    /usr/bin/catatonit itself (the default --init)."""
    if not os.path.exists(HOST_INIT):
        pytest.skip(f"{HOST_INIT} is not installed on this machine (package catatonit)")
    if request.param == "default":
        return HOST_INIT, []
    path = tmp_path / "catatonit"
    shutil.copy2(HOST_INIT, path)
    os.chmod(path, 0o755)
    return str(path), ["--init-path", str(path)]


def test_privileged_container_cannot_change_the_hosts_init(demo_cli, init_binary):
    path, flags = init_binary
    before = _fingerprint(path)
    r = demo_cli("run", "--rm", "--privileged", "--init", *flags, demo_cli.image,
                 "sh", "-c", ATTACK)
    # the attack did run: it remounted and changed the file it was given...
    assert r.stdout.split() == ["remounted", "chowned", "chmodded", "4777"], (r.stdout, r.stderr)
    # ...which was the container's copy: the host's binary is unchanged
    assert _fingerprint(path) == before
