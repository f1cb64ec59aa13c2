"""Volumes end to end (docs/volumes.md): named and anonymous volumes, copy-up, ``:ro``,
``rm -v``, in-use refusal, the local driver's tmpfs, ``--mount``, ``--tmpfs``,
``--volumes-from``, bad input, recovery, and a third-party driver, each proven inside a
real container."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tarfile

import pytest

from pyrt_core.testing.imagebuilder import dir_layer_tar, write_oci_layout
from pyrt_core.testing.lifecycle import conmon_pids, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def cli(demo_cli):
    return demo_cli


def _volumes(cli) -> list[str]:
    return cli("volume", "ls", "-q", check=True).stdout.split()


def _one_line(r, code=125, *words):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def _tar(entries) -> bytes:
    """A layer: ``(kind, name, uid, gid, mode[, data])`` with owners (make_layer_tar has
    none)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, uid, gid, mode, *rest in entries:
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mode, ti.mtime = uid, gid, mode, 1700000000
            data = None
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, rest[0]
            else:
                data = rest[0].encode()
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def image_with(cli, tmp_path, name, entries, config):
    """The demo busybox plus a layer of ``entries`` and ``config`` (Volumes...)."""
    from pyrt_core.testing.fixtures import make_busybox_rootfs

    rootfs = make_busybox_rootfs(str(tmp_path / f"rootfs-{name}"))
    layout = str(tmp_path / f"layout-{name}")
    write_oci_layout(layout, [dir_layer_tar(rootfs), _tar(entries)],
                     config={"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"],
                                        **config}})
    iid = cli("load", "-q", "-i", layout, check=True).stdout.split()[-1]
    cli("tag", iid, f"test/{name}:latest", check=True)
    return f"test/{name}"


def test_named_volume_outlives_its_container(cli):
    r = cli("run", "--rm", "-v", "pgdata:/var/lib/data", cli.image, "sh", "-c",
            "echo kept > /var/lib/data/f")
    assert r.returncode == 0, r.stderr
    assert _volumes(cli) == ["pgdata"]
    r = cli("run", "--rm", "-v", "pgdata:/d", cli.image, "cat", "/d/f")
    assert (r.returncode, r.stdout) == (0, "kept\n"), r.stderr
    info = json.loads(cli("volume", "inspect", "pgdata", check=True).stdout)[0]
    assert set(info) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                         "Scope"}
    assert info["Mountpoint"] == os.path.join(cli.root, "volumes", "pgdata", "_data")
    with open(os.path.join(info["Mountpoint"], "f")) as f:
        assert f.read() == "kept\n"
    assert cli("volume", "inspect", "-f", "{{.Driver}} {{.Name}}", "pgdata").stdout == \
        "local pgdata\n"
    cli("volume", "rm", "pgdata", check=True)
    assert _volumes(cli) == [] and not os.path.exists(info["Mountpoint"])


def test_copy_up_keeps_owners_and_modes(cli, tmp_path):
    img = image_with(cli, tmp_path, "withvol", [
        ("dir", "srv", 0, 0, 0o755), ("dir", "srv/data", 1000, 1001, 0o750),
        ("file", "srv/data/f", 1234, 5678, 0o640, "from the image\n"),
        ("dir", "srv/data/sub", 7, 8, 0o1770),
        ("symlink", "srv/data/link", 0, 0, 0o777, "/etc/hostname"),
    ], {"Volumes": {"/srv/data": {}}})
    probe = "stat -c '%u:%g:%a %n' /srv/data /srv/data/f /srv/data/sub; cat /srv/data/f; " \
            "readlink /srv/data/link; grep ' /srv/data ' /proc/self/mountinfo | wc -l"
    want = ["1000:1001:750 /srv/data", "1234:5678:640 /srv/data/f", "7:8:1770 /srv/data/sub",
            "from the image", "/etc/hostname", "1"]
    # the image's VOLUME: an anonymous volume, filled from the image
    r = cli("run", "--name", "anon", img, "sh", "-c", probe)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:6] == want
    (anon,) = _volumes(cli)
    assert len(anon) == 64
    # a new named volume there: filled the same way; nocopy: left empty
    r = cli("run", "--rm", "-v", "named:/srv/data", img, "sh", "-c", probe)
    assert r.stdout.split("\n")[:6] == want, r.stderr
    r = cli("run", "--rm", "-v", "empty:/srv/data:nocopy", img, "ls", "-A", "/srv/data")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    # a volume with data already: its data wins (no copy)
    r = cli("run", "--rm", "--mount", "src=named,dst=/srv/data", img, "sh", "-c",
            "echo changed > /srv/data/f; rm /srv/data/link")
    r = cli("run", "--rm", "-v", "named:/srv/data", img, "sh", "-c", "cat /srv/data/f; ls /srv/data")
    assert r.stdout == "changed\nf\nsub\n", r.stderr
    cli("rm", "-v", "anon", check=True)
    assert sorted(_volumes(cli)) == ["empty", "named"]


def test_readonly_volume(cli):
    cli("run", "--rm", "-v", "data:/data", cli.image, "sh", "-c", "echo x > /data/f", check=True)
    r = cli("run", "--rm", "-v", "data:/data:ro", cli.image, "sh", "-c",
            "cat /data/f; echo y > /data/f")
    assert r.returncode != 0 and r.stdout == "x\n"
    assert "Read-only file system" in r.stderr
    r = cli("run", "--rm", "--mount", "source=data,target=/data,readonly", cli.image, "touch",
            "/data/g")
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_anonymous_volumes_go_with_rm_v_and_run_rm(cli):
    cli("run", "--name", "keep", "-v", "/anon", cli.image, "touch", "/anon/x", check=True)
    assert len(_volumes(cli)) == 1
    cli("rm", "keep", check=True)  # without -v: kept (docker)
    (left,) = _volumes(cli)
    cli("run", "--name", "gone", "-v", "/anon", "-v", "named:/n", cli.image, "true", check=True)
    assert len(_volumes(cli)) == 3
    cli("rm", "-v", "gone", check=True)  # its anonymous volume only
    assert sorted(_volumes(cli)) == sorted([left, "named"])
    cli("run", "--rm", "-v", "/anon2", "--mount", "type=volume,dst=/anon3", cli.image, "true",
        check=True)
    assert sorted(_volumes(cli)) == sorted([left, "named"])
    r = cli("volume", "prune", "-f", check=True)  # anonymous ones unused; named stay
    assert left in r.stdout and _volumes(cli) == ["named"]
    cli("volume", "prune", "-f", "-a", check=True)
    assert _volumes(cli) == []


def test_a_volume_in_use_is_not_removed(cli):
    cid = cli("create", "--name", "user", "-v", "busy:/b", cli.image, "true",
              check=True).stdout.strip()
    r = cli("volume", "rm", "busy")
    _one_line(r, 1, f"remove busy: volume is in use - [{cid}]")
    r = cli("volume", "rm", "-f", "busy")
    _one_line(r, 1, "volume is in use")
    assert _volumes(cli) == ["busy"]
    assert cli("volume", "prune", "-f", "-a", check=True) and _volumes(cli) == ["busy"]
    cli("rm", "user", check=True)
    cli("volume", "rm", "busy", check=True)
    assert _volumes(cli) == []
    _one_line(cli("volume", "rm", "busy"), 1, "no such volume")
    assert cli("volume", "rm", "-f", "busy").returncode == 0


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_local_tmpfs_volume_mounted_while_used(detached_cli):
    cli = detached_cli
    cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=5m",
        "tv", check=True)
    data = os.path.join(cli.root, "volumes", "tv", "_data")
    assert not _mounted(data)
    a = cli("run", "-d", "-v", "tv:/v", cli.image, "sleep", "600", check=True).stdout.strip()
    b = cli("run", "-d", "-v", "tv:/w", cli.image, "sleep", "600", check=True).stdout.strip()
    assert _mounted(data)
    r = cli("exec", a, "sh", "-c", "echo shared > /v/f; df -k /v | tail -1")
    assert r.stdout.split()[1] == "5120", r.stdout
    assert cli("exec", b, "cat", "/w/f").stdout == "shared\n"
    cli("rm", "-f", a, check=True)
    assert _mounted(data)  # b still uses it
    cli("rm", "-f", b, check=True)
    assert not _mounted(data)  # the last user gone: unmounted (a tmpfs: its data too)
    r = cli("run", "--rm", "-v", "tv:/v", cli.image, "ls", "-A", "/v")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    assert not _mounted(data)
    cli("volume", "rm", "tv", check=True)


def test_local_bind_volume(cli, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "h").write_text("from the host\n")
    cli("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host}", "bv",
        check=True)
    r = cli("run", "--rm", "-v", "bv:/b", cli.image, "sh", "-c", "cat /b/h; echo c > /b/c")
    assert (r.returncode, r.stdout) == (0, "from the host\n"), r.stderr
    assert (host / "c").read_text() == "c\n"
    assert not _mounted(os.path.join(cli.root, "volumes", "bv", "_data"))
    r = cli("volume", "create", "-o", "type=none", "-o", "o=bind", "-o",
            f"device={tmp_path}/missing", "bad")
    _one_line(r, 125, "no such directory")
    cli("volume", "rm", "bv", check=True)
    assert (host / "h").exists()  # the volume's removal leaves the host's directory alone
    assert _volumes(cli) == []


def test_mount_flag(cli, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "in").write_text("in\n")
    r = cli("run", "--rm", "--mount", f"type=bind,source={src},target=/b,readonly",
            "--mount", "type=volume,src=mv,dst=/v", "--mount",
            "type=tmpfs,destination=/t,tmpfs-size=2m,tmpfs-mode=1770", cli.image, "sh", "-c",
            "cat /b/in; touch /b/x 2>/dev/null || echo ro; touch /v/ok; "
            "stat -c %a /t; df -k /t | tail -1")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[:3] == ["in", "ro", "1770"] and out[3].split()[1] == "2048"
    assert _volumes(cli) == ["mv"]
    # --mount type=bind of a missing host path: refused (docker's message), nothing made
    missing = tmp_path / "missing"
    r = cli("run", "--rm", "--mount", f"type=bind,src={missing},dst=/m", cli.image, "true")
    _one_line(r, 125, f'invalid mount config for type "bind": bind source path does not '
                      f'exist: {missing}')
    assert not missing.exists()
    # -v of a missing host path: made (docker)
    r = cli("run", "--rm", "-v", f"{missing}:/m", cli.image, "touch", "/m/made")
    assert r.returncode == 0 and (missing / "made").exists(), r.stderr
    assert cli("ps", "-aq").stdout == ""


def test_tmpfs_flag(cli):
    r = cli("run", "--rm", "--tmpfs", "/t:size=1m,mode=1777", "--tmpfs", "/u", cli.image,
            "sh", "-c", "df -k /t | tail -1; stat -c %a /t; grep ' /u ' /proc/mounts")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].split()[1] == "1024" and lines[1] == "1777"
    assert {"nosuid", "nodev", "noexec"} <= set(lines[2].split()[3].split(","))
    assert _volumes(cli) == []


def test_volumes_from(cli):
    cli("create", "--name", "src1", "-v", "shared:/data", "-v", "/anon", cli.image, "true",
        check=True)
    cli("run", "--rm", "-v", "shared:/data", cli.image, "sh", "-c", "echo s > /data/f",
        check=True)
    r = cli("run", "--rm", "--volumes-from", "src1", cli.image, "sh", "-c",
            "cat /data/f; touch /anon/ok && echo rw")
    assert (r.returncode, r.stdout) == (0, "s\nrw\n"), r.stderr
    r = cli("run", "--rm", "--volumes-from", "src1:ro", cli.image, "sh", "-c",
            "cat /data/f; touch /data/g")
    assert r.returncode != 0 and r.stdout == "s\n" and "Read-only file system" in r.stderr
    r = cli("run", "--rm", "--volumes-from", "nosuch", cli.image, "true")
    _one_line(r, 125, "no such container: nosuch")
    mounts = json.loads(cli("inspect", "src1", check=True).stdout)[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"], m["RW"]) for m in mounts] == [
        ("volume", "shared", "/data", True), ("volume", mounts[1]["Name"], "/anon", True)]
    assert mounts[0]["Source"] == os.path.join(cli.root, "volumes", "shared", "_data")
    cli("rm", "-v", "src1", check=True)
    assert _volumes(cli) == ["shared"]


@pytest.mark.parametrize("flags, words", [
    (["-v", "../../etc:/x"], "invalid characters for a local volume name"),
    (["-v", "a:relative"], "absolute path"),
    (["-v", "/h:/c:bogus"], "unknown option"),
    (["--mount", "type=bind,src=/tmp"], "target is required"),
    (["--mount", "type=tmpfs,src=x,dst=/t"], "field Source must not be specified"),
    (["--mount", "type=volume,dst=/v,volume-driver=nosuch"], "plugin 'nosuch' not found"),
    (["--mount", "type=volume,dst=/v,volume-opt=colour=red"], "invalid option key"),
    (["--tmpfs", "/t:colour=red"], "unknown option"),
    (["-v", "d1:/same", "-v", "d2:/same"], "Duplicate mount point: /same"),
    (["--volumes-from", "x:rx"], "CONTAINER[:ro|rw]"),
])
def test_bad_input_one_line_nothing_made(cli, flags, words):
    r = cli("run", "--rm", *flags, cli.image, "true")
    _one_line(r, 125, words)
    assert cli("ps", "-aq").stdout == "" and _volumes(cli) == []
    assert not os.listdir(os.path.join(cli.root, "volumes")) \
        if os.path.isdir(os.path.join(cli.root, "volumes")) else True
    r = cli("volume", "create", "-d", "nosuch", "v1")
    _one_line(r, 125, "plugin 'nosuch' not found")
    assert _volumes(cli) == []


def test_a_failed_create_leaves_no_volume(cli):
    cli("create", "--name", "taken", cli.image, "true", check=True)
    r = cli("create", "--name", "taken", "-v", "fresh:/f", "-v", "/anon", cli.image, "true")
    assert r.returncode == 125 and _volumes(cli) == []


def test_recovery_releases_the_mounts_of_a_dead_run(detached_cli):
    cli = detached_cli
    cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tv", check=True)
    data = os.path.join(cli.root, "volumes", "tv", "_data")
    cid = cli("run", "-d", "-v", "tv:/v", cli.image, "sleep", "600", check=True).stdout.strip()
    assert _mounted(data)
    pid = json.loads(cli("inspect", cid).stdout)[0]["State"]["Pid"]
    # the monitor dies (a crash): nothing ran the container's clean-up
    for mon in conmon_pids(cli):
        os.kill(mon, signal.SIGKILL)
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to die")
    assert _mounted(data)
    r = cli("system", "recover", check=True)
    assert not _mounted(data), r.stderr
    assert json.loads(cli("inspect", cid).stdout)[0]["State"]["Running"] is False
    # the killed init is an orphan the machine's pid 1 reaps a moment later
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=20, what=f"pid {pid} reaped")
    rec = json.load(open(os.path.join(cli.root, "volumes", "tv", "volume.json")))
    assert rec["MountedBy"] == []
    cli("rm", cid, check=True)
    cli("volume", "rm", "tv", check=True)


def test_a_third_party_volume_driver(cli, tmp_path):
    """tests/volume_plugin/pyrt_volume_example.py, installed as a distribution with a
    ``pyrt.plugins`` entry point (on PYTHONPATH): ``-d example`` and
    ``volume-driver=example`` reach it through the hooks, in the protocol's order."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(os.path.join(HERE, "..", "volume_plugin", "pyrt_volume_example.py"), site)
    dist = site / "pyrt_volume_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pyrt-volume-example\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text("[pyrt.plugins]\nvolume_example = "
                                           "pyrt_volume_example\n")
    env = dict(os.environ, PYTHONPATH=str(site))

    def pyrt(*a, **kw):
        return cli(*a, env=env, **kw)

    pyrt("volume", "create", "-d", "example", "-o", "greeting=hello", "ex1", check=True)
    _one_line(pyrt("volume", "create", "-d", "example", "-o", "colour=red", "ex2"), 125,
              "example driver: unknown option 'colour'")
    info = json.loads(pyrt("volume", "inspect", "ex1", check=True).stdout)[0]
    assert (info["Driver"], info["Scope"], info["Status"]) == ("example", "global",
                                                               {"driver": "example"})
    r = pyrt("run", "--rm", "-v", "ex1:/x", cli.image, "sh", "-c", "cat /x/greeting; touch /x/t")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    r = pyrt("run", "--rm", "--mount", "type=volume,src=ex3,dst=/y,volume-driver=example",
             cli.image, "true")
    assert r.returncode == 0, r.stderr
    assert pyrt("volume", "ls", "--filter", "driver=example", "-q").stdout.split() == \
        ["ex1", "ex3"]
    pyrt("volume", "rm", "ex1", "ex3", check=True)
    log = (tmp_path / "root" / "volume-example.log").read_text().split("\n")
    words = [ln.split()[:2] for ln in log if ln]
    assert words == [["create", "ex1"], ["mount", "ex1"], ["unmount", "ex1"],
                     ["create", "ex3"], ["mount", "ex3"], ["unmount", "ex3"],
                     ["remove", "ex1"], ["remove", "ex3"]]
    # without the plugin, its volumes cannot be used: one line
    pyrt("volume", "create", "-d", "example", "ex4", check=True)
    r = cli("run", "--rm", "-v", "ex4:/z", cli.image, "true")
    _one_line(r, 125, "plugin 'example' not found")
    pyrt("volume", "rm", "ex4", check=True)
    assert _volumes(cli) == []
