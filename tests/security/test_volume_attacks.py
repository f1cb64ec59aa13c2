"""Volumes against a hostile image or container (docs/volumes.md, docs/security.md).

The host side touches two things of a container for a volume: the image's content at
the volume's path, copied into a new volume (copy-up), and the path the volume is
mounted at.  Both are chosen by the image (its ``VOLUME`` and its files) or by the
container itself on a later start.  pyrt reads the image's content through descriptors
resolved inside the rootfs (containers.copyup: openat2 RESOLVE_IN_ROOT, then O_NOFOLLOW
relative opens) and the runtime resolves the mount's destination inside the rootfs, so a
symlink to a host path means that path *inside the container*.  A volume's name is a
directory under the store: docker's name rule keeps ``../../etc`` from being one.
"""
from __future__ import annotations

import json
import os

import pytest

from hostile import busybox_layout, host_bait, one_line_error


def _load(cli, tmp_path, entries, volumes, tag="hostile"):
    layout = busybox_layout(str(tmp_path / f"img-{tag}"), str(tmp_path), entries=entries,
                            config={"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"],
                                    "Volumes": {v: {} for v in volumes}})
    iid = cli("load", "-q", "-i", layout, check=True).stdout.split()[-1]
    return iid


def _volume_data(cli, name=None):
    names = cli("volume", "ls", "-q", check=True).stdout.split()
    assert len(names) == 1 if name is None else name in names, names
    return os.path.join(cli.root, "volumes", name or names[0], "_data")


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(str(path))]


@pytest.mark.parametrize("how", ["absolute symlink", "relative symlink climbing out",
                                 "parent directory a symlink"])
def test_an_image_volume_that_is_a_symlink_to_the_host_stays_in_the_rootfs(
        demo_cli, tmp_path, how):
    bait = host_bait(tmp_path)
    if how == "absolute symlink":
        entries, vol = [("symlink", "data", bait.dir)], "/data"
    elif how == "relative symlink climbing out":
        entries, vol = [("symlink", "data", "../" * 30 + bait.dir.lstrip("/"))], "/data"
    else:
        entries = [("symlink", "srv", os.path.dirname(bait.dir))]
        vol = "/srv/" + os.path.basename(bait.dir)
    iid = _load(demo_cli, tmp_path, entries, [vol])
    r = demo_cli("run", "--name", "victim", iid, "sh", "-c",
                 f"cat {vol}/secret; echo pwned > {vol}/written-by-container; ls {vol}")
    bait.assert_untouched(r.stdout + r.stderr)
    assert _mounts_under(bait.dir) == []
    data = _volume_data(demo_cli)
    # copy-up took nothing of the host's
    assert not os.path.exists(os.path.join(data, "secret"))
    if r.returncode == 0:  # mounted at the path resolved inside the rootfs
        assert os.listdir(data) == ["written-by-container"]
    else:  # or refused by the runtime (pyrt's refuses a symlink on a mount's path)
        one_line_error(r, 125, "is not a directory (or became a symlink")
        assert os.listdir(data) == []
    demo_cli("rm", "-v", "victim", check=True)
    assert demo_cli("volume", "ls", "-q").stdout == ""


def test_special_files_in_an_image_volume_are_copied_not_opened(demo_cli, tmp_path):
    """A FIFO (would block a reader forever) and /dev/zero (endless) at the volume's path:
    copied as nodes, never opened; the run ends at once."""
    iid = _load(demo_cli, tmp_path, [("dir", "data"), ("fifo", "data/pipe"),
                                     ("chardev", "data/zero", 1, 5),
                                     ("file", "data/f", b"ok\n")], ["/data"])
    r = demo_cli("run", "--name", "fifo", iid, "sh", "-c",
                 "ls -l /data | cut -c1 | sort | tr -d '\\n'; cat /data/f", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "-cp\nok\n" or r.stdout.endswith("ok\n"), r.stdout
    data = _volume_data(demo_cli)
    import stat

    assert stat.S_ISFIFO(os.lstat(os.path.join(data, "pipe")).st_mode)
    demo_cli("rm", "-v", "fifo", check=True)


@pytest.mark.parametrize("argv", [
    ["volume", "create", "../../etc"],
    ["volume", "create", "a/../../../b"],
    ["volume", "rm", "../../etc"],
    ["volume", "inspect", "../../etc"],
    ["run", "--rm", "-v", "../../etc:/x", "IMAGE", "true"],
    ["run", "--rm", "--mount", "src=../../../escape,dst=/x", "IMAGE", "true"],
])
def test_a_volume_name_is_never_a_path(demo_cli, tmp_path, argv):
    argv = [demo_cli.image if a == "IMAGE" else a for a in argv]
    r = demo_cli(*argv)
    assert r.returncode in (1, 125), r
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    for p in (os.path.join(demo_cli.root, "etc"), os.path.join(os.path.dirname(demo_cli.root),
                                                                "etc"),
              os.path.join(demo_cli.root, "escape"), str(tmp_path / "escape")):
        assert not os.path.exists(p), p
    assert demo_cli("volume", "ls", "-q").stdout == ""
    assert demo_cli("ps", "-aq").stdout == ""


def test_a_container_swaps_its_volume_path_for_a_symlink_before_its_next_start(
        demo_cli, tmp_path):
    """Run 1: the container moves the volume's parent away and puts a symlink to a host
    directory there.  Run 2 (``pyrt start``): the volume is mounted at that path
    resolved inside the rootfs, never on the host's directory."""
    bait = host_bait(tmp_path)
    script = ("if [ -L /work ]; then touch /work/vol/second; ls /work/vol; "
              f"else echo first > /work/vol/first; mv /work /work.old && "
              f"ln -s {bait.dir} /work; fi")
    cid = demo_cli("create", "--name", "swapper", "-v", "data:/work/vol", demo_cli.image,
                   "sh", "-c", script, check=True).stdout.strip()
    r = demo_cli("start", "-a", cid)
    assert r.returncode == 0, r.stderr
    r = demo_cli("start", "-a", cid)
    assert sorted(os.listdir(bait.dir)) == ["secret"], "the volume went onto the host's path"
    assert _mounts_under(bait.dir) == []
    data = _volume_data(demo_cli, "data")
    if r.returncode == 0:  # mounted at the path resolved inside the rootfs
        assert r.stdout.split() == ["first", "second"]
        assert sorted(os.listdir(data)) == ["first", "second"]
    else:  # or refused by the runtime: one line, and the volume released
        one_line_error(r, 125, "is not a directory (or became a symlink")
        assert sorted(os.listdir(data)) == ["first"]
        rec = json.load(open(os.path.join(demo_cli.root, "volumes", "data", "volume.json")))
        assert rec["MountedBy"] == []
    demo_cli("rm", cid, check=True)
    demo_cli("volume", "rm", "data", check=True)
