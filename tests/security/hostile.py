"""Hostile images for the security tier: the test busybox root filesystem in one layer,
with some of its files replaced by what an attacker would put there, and any image
config.  Built by hand (tarfile + imagebuilder.write_oci_layout): umoci refuses some of
these, and nothing here needs the network."""
from __future__ import annotations

import os

import imagebuilder as ib

DEFAULT_CONFIG = {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]}


def busybox_layout(dest: str, work: str, *, entries=(), skip=(), config=None) -> str:
    """An OCI layout at ``dest`` (ref "latest"): busybox without the paths in ``skip``,
    plus ``entries`` (imagebuilder.make_layer_tar's tuples); ``config`` is the image
    config's ``config`` object (default: Cmd /bin/sh)."""
    rootfs = os.path.join(work, "busybox-rootfs")
    if not os.path.isdir(rootfs):
        ib.busybox_rootfs(rootfs)
    layer = ib.dir_layer_tar(rootfs, skip=skip, entries=entries)
    os.makedirs(dest)
    ib.write_oci_layout(dest, [layer], ref_name="latest", compress="gzip",
                        config={"config": DEFAULT_CONFIG if config is None else config})
    return dest


def one_line_error(r, code: int = 125, *words: str, progress: str | None = None) -> None:
    """``r`` (a finished pyrt) failed with ``code`` and one line on stderr, no traceback
    (besides progress lines that start with ``progress``, as pull's "Trying to pull")."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines()
             if not (progress and ln.startswith(progress))]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
