"""``-v SRC:DST:ro`` must be read-only all the way down (docker 25+ makes it recursive).

A bind mount of a host directory that has mounts below it copies those mounts
too (rbind); a read-only remount of the top alone leaves them writable, so a
container given ``:ro`` could still write into the host's filesystems mounted
below the source.  The runtime spells the recursive request ``rro`` (runc's
option, what docker 25 sends).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

RUNTIME = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")


@pytest.fixture
def source_with_submount(tmp_path):
    """A host directory with a tmpfs mounted below it (removed after the test)."""
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src / "sub")], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=False)


WRITE = ("for f in /data/top /data/sub/below; do "
         "if touch $f 2>/dev/null; then echo wrote:$f; else echo refused:$f; fi; done")


def test_ro_volume_is_read_only_below_too(demo_cli, source_with_submount):
    r = demo_cli("run", "--rm", "-v", f"{source_with_submount}:/data:ro", demo_cli.image,
                 "sh", "-c", WRITE)
    assert r.returncode == 0, r.stderr
    assert "refused:/data/top" in r.stdout
    assert "refused:/data/sub/below" in r.stdout, "a mount below a :ro volume stayed writable"
    assert not (source_with_submount / "sub" / "below").exists()


def test_rw_volume_stays_writable_below(demo_cli, source_with_submount):
    r = demo_cli("run", "--rm", "-v", f"{source_with_submount}:/data", demo_cli.image,
                 "sh", "-c", WRITE)
    assert "wrote:/data/top" in r.stdout and "wrote:/data/sub/below" in r.stdout, r.stdout


def test_runtime_rro_option(busybox_rootfs, source_with_submount, tmp_path, subreaper):
    bundle = os.path.dirname(busybox_rootfs)
    out_file = tmp_path / "out"
    out_file.write_text("")
    spec = {
        "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "rro",
        "process": {"args": ["sh", "-c", WRITE + " > /out"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]},
        "mounts": [{"destination": "/data", "type": "bind", "source": str(source_with_submount),
                    "options": ["rbind", "ro", "rro"]},
                   {"destination": "/out", "type": "bind", "source": str(out_file),
                    "options": ["bind"]}],
        "linux": {"namespaces": [{"type": t} for t in ("mount", "pid", "ipc", "uts", "network")]},
    }
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    root = str(tmp_path / "state")

    def rt(*args):
        with tempfile.TemporaryFile() as out:
            r = subprocess.run([RUNTIME, "--root", root, *args], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT, timeout=30)
            out.seek(0)
            return r.returncode, out.read().decode()

    try:
        rc, out = rt("create", "--bundle", bundle, "rro")
        assert rc == 0, out
        assert rt("start", "rro")[0] == 0
        for _ in range(200):
            rc, st = rt("state", "rro")
            if json.loads(st)["status"] == "stopped":
                break
    finally:
        rt("delete", "--force", "rro")
    text = out_file.read_text()
    assert "refused:/data/top" in text and "refused:/data/sub/below" in text, text
