"""Hostile images and host-side bait for the security tier.

:func:`host_bait` puts a secret on the host that a container must never
read, and names where a container must never write; :func:`climb` is the
relative path from any directory on the host to one of them.
:func:`load_image` builds a busybox image with a hand-written config and
extra layer entries (what an attacker controls) and loads it into a store.
:func:`busybox_layout` writes such an image as an OCI layout by hand (umoci refuses
some of these; nothing here needs the network); :func:`one_line_error` checks a
refusal's shape.
"""
from __future__ import annotations

import os
import secrets
import tarfile

from pyrt_core.testing import imagebuilder as ib
from pyrt_core.testing.imagebuilder import busybox_rootfs, make_layer_tar, write_oci_layout


class Bait:
    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.token = "host-secret-" + secrets.token_hex(8)
        self.secret = os.path.join(self.dir, "secret")
        with open(self.secret, "w") as f:
            f.write(self.token + "\n")
        self.written = os.path.join(self.dir, "written-by-container")

    def assert_untouched(self, output: str = "") -> None:
        assert self.token not in output, "the container read a file of the host"
        assert not os.path.exists(self.written), "the container wrote a file on the host"


def host_bait(tmp_path) -> Bait:
    return Bait(tmp_path / "host-bait")


def climb(path: str, depth: int = 40) -> str:
    """``../../...`` up to the root from anywhere (no deeper than ``depth``), then ``path``."""
    return "../" * depth + path.lstrip("/")


def busybox_layer(tmp_path, edit=None) -> bytes:
    """An uncompressed layer tar of the test busybox rootfs, after ``edit(rootfs)``."""
    root = busybox_rootfs(tmp_path / "hostile-rootfs")
    if edit is not None:
        edit(root)
    path = str(tmp_path / "hostile-layer.tar")
    with tarfile.open(path, "w") as tf:
        for name in sorted(os.listdir(root)):
            tf.add(os.path.join(root, name), arcname=name)
    with open(path, "rb") as f:
        return f.read()


def load_image(cli, tmp_path, name: str, config: dict | None = None, edit=None,
               entries=None) -> str:
    """Build a busybox image (``config`` merged into its image config, ``edit`` run on its
    rootfs, ``entries`` as a second hand-made layer) and load it as ``name``."""
    layers = [busybox_layer(tmp_path, edit)]
    if entries:
        layers.append(make_layer_tar(entries))
    layout = str(tmp_path / ("layout-" + name.replace("/", "_").replace(":", "_")))
    cfg = {"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"], **(config or {})}}
    write_oci_layout(layout, layers, config=cfg)
    r = cli("load", "-q", "-i", layout)
    assert r.returncode == 0, r.stderr
    cli("tag", r.stdout.split()[0], name, check=True)
    return name


def static_elf(code: bytes, machine: int = 62, base: int = 0x400000) -> bytes:
    """A minimal static ELF64 executable: ``code`` loaded at ``base`` + 120 and run
    from its first byte (x86_64 unless ``machine`` says otherwise)."""
    import struct

    headers = 64 + 56
    size = headers + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, base + headers, 64, 0, 0,
                                 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + phdr + code


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
