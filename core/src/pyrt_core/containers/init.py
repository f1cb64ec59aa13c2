"""``--init``: a minimal init (Debian's static catatonit, or tini) as the container's
PID 1, which reaps orphaned children and forwards signals to the command.

Hostile by default: docker bind-mounts the host's ``docker-init`` read-only into the
container, so a container that can remount it (``--privileged``, CAP_SYS_ADMIN) can
``chmod u+s`` it, set a file capability on it or (when no container runs it) rewrite
it: the host's binary, which the host's users run too.  pyrt copies the binary's
*contents* into the container's own bundle directory (root's only, 0700) on every
start and binds that copy read-only at :data:`DESTINATION`: whatever a container
does to it changes its private copy, never the host's file
(tests/security/test_init_copy.py).
"""
from __future__ import annotations

import os
import stat

from ..errors import UsageError

#: where the init appears in the container (podman's is /run/podman-init, docker's
#: /sbin/docker-init): under /run, so the image's /sbin is left alone
DESTINATION = "/run/pyrt-init"

#: the bundle file holding the container's copy
BUNDLE_NAME = "init"

#: searched in this order when ``--init-path`` is not given (Debian's catatonit first)
CANDIDATES = ("/usr/bin/catatonit", "/usr/libexec/catatonit/catatonit",
              "/usr/libexec/podman/catatonit", "/usr/bin/tini-static", "/usr/bin/tini",
              "/usr/bin/docker-init")

#: a static init is ~0.7 MB; anything far larger is not one
MAX_SIZE = 64 << 20


def find(path: str | None = None) -> str:
    """The host path of the init binary: ``path`` (``--init-path``) or the first of
    :data:`CANDIDATES` that exists; checked (:func:`_open_checked`), else UsageError."""
    if path:
        os.close(_open_checked(path))
        return path
    for candidate in CANDIDATES:
        if os.path.exists(candidate):
            os.close(_open_checked(candidate))
            return candidate
    raise UsageError("--init: no init binary found (install catatonit, or give --init-path)")


def _open_checked(path: str) -> int:
    """An open descriptor of ``path`` when it is a regular, executable file of at most
    :data:`MAX_SIZE` that only root or the caller can have written (it becomes the
    container's PID 1: another user must not choose what runs there)."""
    if not os.path.isabs(path):
        raise UsageError(f"invalid --init-path {path!r}: it must be an absolute path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise UsageError(f"invalid --init-path {path!r}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        why = None
        if not stat.S_ISREG(st.st_mode):
            why = "not a regular file"
        elif not st.st_mode & 0o111:
            why = "not executable"
        elif st.st_size > MAX_SIZE:
            why = f"larger than {MAX_SIZE >> 20} MiB"
        elif st.st_uid not in (0, os.geteuid()) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            why = "writable by another user"
        if why:
            raise UsageError(f"invalid --init-path {path!r}: {why}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def copy_into(bundle: str, path: str | None) -> str:
    """Copy the init's contents into ``bundle`` (a new inode, mode 0555, replacing an
    earlier start's copy) and return the copy's path."""
    src = _open_checked(find(path))
    dst = os.path.join(bundle, BUNDLE_NAME)
    tmp = dst + ".tmp"
    try:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o500)
        try:
            while True:
                chunk = os.read(src, 1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            os.fchmod(out, 0o555)
        finally:
            os.close(out)
    finally:
        os.close(src)
    os.replace(tmp, dst)
    return dst


def wrap_args(args: list[str]) -> list[str]:
    """The process args with the init in front (``init -- CMD ARGS``)."""
    return [DESTINATION, "--"] + list(args)
