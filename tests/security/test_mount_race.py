"""Mount-target race through a shared volume (runc's CVE-2021-30465 class).

A container that shares a volume with another swaps a directory of the volume
with a symlink, again and again (renameat2 RENAME_EXCHANGE), while the other
container is being set up with a second mount whose destination lies below that
directory (``/shared/d/bin``).  A runtime that resolves the destination as a path and then mounts
on the path string follows the symlink that appeared meanwhile: the mount lands
where the attacker points, outside the container's intended tree.  Here the
symlink points at the victim's own root by its host path, so a misplaced mount
covers the victim's /bin and shows there as a marker file.

The swapping runs as a host process (the kernel cannot tell it from a
container process that shares the volume); the victim is started through
pyrt-runtime, as podman and containerd start it, 60 times.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

RUNTIME = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")

SWAPPER = textwrap.dedent("""
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    nr = {"x86_64": 316, "aarch64": 276}[os.uname().machine]  # renameat2
    vol = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
    print("ready", flush=True)
    while True:
        libc.syscall(nr, vol, b"d", vol, b"l", 2)  # RENAME_EXCHANGE
""")


def _runtime(root, *args):
    with tempfile.TemporaryFile() as out:
        r = subprocess.run([RUNTIME, "--root", root, *args], stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, timeout=60)
        out.seek(0)
        return r.returncode, out.read().decode(errors="replace")


def test_swapped_volume_directory_never_misplaces_a_mount(busybox_rootfs, tmp_path, subreaper):
    bundle = os.path.dirname(busybox_rootfs)
    # the victim's program lives outside /bin, so that it still runs when /bin is covered
    os.mkdir(os.path.join(busybox_rootfs, "victim"))
    shutil.copy2(os.path.join(busybox_rootfs, "bin", "busybox"),
                 os.path.join(busybox_rootfs, "victim", "busybox"))
    volume = tmp_path / "shared-volume"
    (volume / "d" / "bin").mkdir(parents=True)
    os.symlink(busybox_rootfs, volume / "l")  # the victim's root, by its host path
    second = tmp_path / "second-volume"
    second.mkdir()
    (second / "MISPLACED-MOUNT").write_text("x")
    report = tmp_path / "report"
    report.mkdir()
    spec = {
        "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "victim",
        "process": {"args": ["/victim/busybox", "sh", "-c",
                             "/victim/busybox ls /bin > /report/bin.txt 2>&1"],
                    "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]},
        "mounts": [
            {"destination": "/report", "type": "bind", "source": str(report), "options": ["rbind"]},
            {"destination": "/shared", "type": "bind", "source": str(volume), "options": ["rbind"]},
            {"destination": "/shared/d/bin", "type": "bind", "source": str(second),
             "options": ["rbind"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("mount", "pid", "ipc", "uts", "network")]},
    }
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(volume)],
                               stdout=subprocess.PIPE, text=True)
    root = str(tmp_path / "state")
    misplaced = started = 0
    try:
        assert swapper.stdout.readline().strip() == "ready"
        for i in range(60):
            cid = f"victim{i}"
            (report / "bin.txt").unlink(missing_ok=True)
            rc, out = _runtime(root, "create", "--bundle", bundle, cid)
            try:
                if rc != 0:
                    assert "Traceback" not in out, out
                    continue  # refused (the destination was a symlink just then): fine
                started += 1
                _runtime(root, "start", cid)
                for _ in range(200):
                    rc, st = _runtime(root, "state", cid)
                    if rc != 0 or json.loads(st)["status"] == "stopped":
                        break
                seen = (report / "bin.txt").read_text() if (report / "bin.txt").exists() else ""
                if "MISPLACED-MOUNT" in seen:
                    misplaced += 1
            finally:
                _runtime(root, "delete", "--force", cid)
    finally:
        swapper.kill()
        swapper.wait()
    assert misplaced == 0, f"{misplaced} of {started} containers got a mount outside its place"
    # the victim itself must still work when nobody races it
    assert started > 0 or pytest.fail("no victim container could start at all")
