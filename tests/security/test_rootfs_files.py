"""A hostile image (or container) chooses what the engine reads on the host side.

pyrt reads the image's /etc/passwd and /etc/group as root on the host to resolve the
user (at every start, and for ``pyrt exec -u``).  An image whose /etc/passwd was a FIFO
hung pyrt forever; one whose /etc/passwd was a character device like /dev/zero grew the
engine to gigabytes in seconds.  Now (containers.inroot) the file is resolved inside the
root (openat2 RESOLVE_IN_ROOT), opened O_PATH, and read only when it is a regular file of
at most 1 MiB: anything else is one line, exit 125, at once, with nothing left behind.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from hostile import busybox_layout, one_line_error

# the CLI's time-out: a hang guard (the old code never returned), not a speed check
FAST = 60


def _run_image(cli, layout, *args, cmd=("id",), timeout=FAST):
    iid = cli("load", "-q", "-i", layout, check=True).stdout.split()[0]
    t = time.monotonic()
    r = cli("run", "--rm", *args, iid, *cmd, timeout=timeout)
    return r, time.monotonic() - t


def _nothing_left(cli):
    assert cli("ps", "-aq").stdout == ""
    bundles = os.path.join(cli.runroot, "containers")
    assert not os.path.isdir(bundles) or os.listdir(bundles) == []


@pytest.mark.parametrize("what, entries, words", [
    ("fifo", [("fifo", "etc/passwd")], "it is a fifo, not a regular file"),
    ("char device like /dev/zero", [("chardev", "etc/passwd", 1, 5)],
     "it is a character device, not a regular file"),
    ("symlink to the image's own /dev/zero node",
     [("chardev", "dev/zero", 1, 5), ("symlink", "etc/passwd", "/dev/zero")],
     "it is a character device, not a regular file"),
    ("directory", [("dir", "etc/passwd")], "it is a directory"),
    ("file over 1 MiB", [("file", "etc/passwd", b"root:x:0:0::/:/bin/sh\n" * 60000)],
     "larger than 1048576 bytes"),
    ("symlink loop", [("symlink", "etc/passwd", "/etc/passwd")], "symbolic links"),
])
def test_a_passwd_that_is_not_a_small_regular_file_is_refused_at_once(demo_cli, tmp_path, what,
                                                                       entries, words):
    layout = busybox_layout(str(tmp_path / "img"), str(tmp_path), skip=["etc/passwd"],
                            entries=entries)
    r, took = _run_image(demo_cli, layout)
    one_line_error(r, 125, "cannot read /etc/passwd in the container", words)
    _nothing_left(demo_cli)


@pytest.mark.parametrize("target", ["/etc/shadow", "../../../../../../../../../../etc/shadow",
                                    "/dev/zero"])
def test_a_passwd_symlink_is_resolved_inside_the_image(demo_cli, tmp_path, target):
    # the host's /etc/shadow would give "root" the uid of its third field (a date); the
    # host's /dev/zero would be read forever: inside the image neither exists
    layout = busybox_layout(str(tmp_path / "img"), str(tmp_path), skip=["etc/passwd"],
                            entries=[("symlink", "etc/passwd", target)])
    r, took = _run_image(demo_cli, layout, "-u", "root")
    assert r.returncode == 125 and "unable to find user root" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # numeric root needs no passwd entry (what the container's own programs make of its
    # /etc/passwd is its business: `id` would read its /dev/zero forever, as under docker)
    r, took = _run_image(demo_cli, layout, cmd=("echo", "ran"))
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr
    _nothing_left(demo_cli)


def test_a_passwd_symlink_inside_the_image_is_followed_as_the_container_sees_it(demo_cli,
                                                                               tmp_path):
    # docker and runc resolve it in the container; the old check refused every symlink
    layout = busybox_layout(
        str(tmp_path / "img"), str(tmp_path), skip=["etc/passwd"],
        entries=[("dir", "realetc"), ("file", "realetc/passwd", "app:x:1234:1234::/:/bin/sh\n"),
                 ("symlink", "etc/passwd", "/realetc/passwd")])
    r, _ = _run_image(demo_cli, layout, "-u", "app")
    assert r.returncode == 0 and r.stdout.startswith("uid=1234(app) gid=1234"), (r.stdout, r.stderr)


def test_exec_into_a_container_that_replaced_its_passwd(detached_cli):
    # the container is running and owns its root: pyrt exec -u reads /etc/passwd again
    cli = detached_cli
    cli("run", "-d", "--name", "swap", cli.image, "sh", "-c",
        "rm /etc/passwd && mkfifo /etc/passwd && touch /tmp/ready && sleep 1000", check=True)
    deadline = time.monotonic() + 10
    while cli("exec", "swap", "test", "-e", "/tmp/ready").returncode != 0:
        assert time.monotonic() < deadline, "the container never got ready"
        time.sleep(0.1)
    r = cli("exec", "-u", "root", "swap", "id", timeout=FAST)
    one_line_error(r, 125, "cannot read /etc/passwd in the container", "fifo")
    # a terabyte of holes: refused by its size, never read
    cli("exec", "swap", "sh", "-c", "rm /etc/passwd && dd if=/dev/zero of=/etc/passwd bs=1 "
        "count=0 seek=1099511627776 2>/dev/null", check=True)
    r = cli("exec", "-u", "root", "swap", "id", timeout=FAST)
    one_line_error(r, 125, "larger than 1048576 bytes (1099511627776 bytes)")
    assert json.loads(cli("inspect", "swap", check=True).stdout)[0]["State"]["Running"]


def test_restart_after_the_container_replaced_its_passwd(detached_cli):
    # the next start reads the file the container left; a huge sparse one is refused
    cli = detached_cli
    r = cli("run", "--name", "grow", cli.image, "sh", "-c",
            "rm /etc/passwd && dd if=/dev/zero of=/etc/passwd bs=1 count=0 seek=1099511627776")
    assert r.returncode == 0, r.stderr
    r = cli("start", "-a", "grow", timeout=FAST)
    one_line_error(r, 125, "cannot read /etc/passwd in the container", "larger than")
    c = json.loads(cli("inspect", "grow", check=True).stdout)[0]
    assert not c["State"]["Running"] and "larger than" in c["State"]["Error"]
