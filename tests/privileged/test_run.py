"""`pyrt run` end to end: a real image, real storage, real namespaces."""
import json
import os
import signal
import subprocess

import pytest


@pytest.fixture
def cli(demo_cli):
    return demo_cli


def test_echo(cli):
    r = cli("run", "--rm", cli.image, "echo", "hello", "world")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello world\n", "")


def test_default_cmd_from_image(cli):
    r = cli("run", "--rm", "-i", cli.image, input="echo from-stdin; exit 4\n")
    assert r.returncode == 4 and r.stdout == "from-stdin\n"


def test_exit_codes(cli):
    assert cli("run", "--rm", cli.image, "sh", "-c", "exit 42").returncode == 42
    r = cli("run", "--rm", cli.image, "no-such-command")
    assert r.returncode == 127
    assert "no-such-command" in r.stderr and r.stderr.count("\n") == 1
    r = cli("run", "--rm", cli.image, "/etc/passwd")
    assert r.returncode == 126 and "/etc/passwd" in r.stderr


def test_isolation_defaults(cli):
    script = ("echo pid=$$; hostname; ls /sys/class/net; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs)';"
              "cat /proc/kcore | wc -c; touch /sys/x 2>/dev/null || echo sys-ro;"
              "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo procsys-ro; ls /dev")
    # --network none: docker's default for this test's subject (the namespaces), loopback only
    r = cli("run", "--rm", "--network", "none", "--hostname", "box", cli.image, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[0] == "pid=1" and out[1] == "box" and out[2] == "lo"
    assert out[3].split() == ["CapEff:", "00000000a80425fb"]  # docker's 14 capabilities
    assert out[4].split() == ["NoNewPrivs:", "1"]
    assert out[5].strip() == "0"
    assert "sys-ro" in out and "procsys-ro" in out
    devs = set(r.stdout.split("procsys-ro\n", 1)[1].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
            "fd", "stdin", "stdout", "stderr"} <= devs


def _status(out: str, key: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith(key + ":"))


def _caps_of(mask_hex: str) -> set[str]:
    from pyrt_core.capabilities import CAP_NAMES

    mask = int(mask_hex, 16)
    return {c for n, c in enumerate(CAP_NAMES) if mask >> n & 1}


def test_cap_add_and_cap_drop(cli):
    from pyrt_core.capabilities import DEFAULT_CAPS

    probe = "grep -E '^Cap(Eff|Bnd):' /proc/self/status; chown 1 /tmp 2>/dev/null || echo chown-denied"
    r = cli("run", "--rm", "--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", cli.image,
            "sh", "-c", probe)
    assert r.returncode == 0, r.stderr
    expected = (set(DEFAULT_CAPS) - {"CAP_CHOWN"}) | {"CAP_NET_ADMIN"}
    assert _caps_of(_status(r.stdout, "CapEff")) == expected
    assert _caps_of(_status(r.stdout, "CapBnd")) == expected
    assert "chown-denied" in r.stdout
    r = cli("run", "--rm", "--cap-drop", "ALL", "--cap-add", "SYS_TIME", cli.image, "sh", "-c", probe)
    assert _caps_of(_status(r.stdout, "CapEff")) == {"CAP_SYS_TIME"}
    # bad names: one line, docker's exit code for a refused flag, nothing created
    before = cli("ps", "-a", "-q").stdout
    r = cli("run", "--rm", "--cap-add", "FOO", cli.image, "true")
    assert r.returncode == 125 and r.stderr.count("\n") == 1
    assert "invalid --cap-add 'FOO': unknown capability 'CAP_FOO'" in r.stderr
    assert cli("ps", "-a", "-q").stdout == before


def test_no_new_privileges_can_be_turned_off(cli):
    probe = "grep ^NoNewPrivs: /proc/self/status"
    r = cli("run", "--rm", cli.image, "sh", "-c", probe)
    assert r.stdout.split() == ["NoNewPrivs:", "1"]  # pyrt's default
    r = cli("run", "--rm", "--security-opt", "no-new-privileges=false", cli.image, "sh", "-c", probe)
    assert r.returncode == 0 and r.stdout.split() == ["NoNewPrivs:", "0"], r.stderr
    r = cli("run", "--rm", "--security-opt", "no-new-privileges=maybe", cli.image, "true")
    assert r.returncode == 125 and "no-new-privileges takes true or false" in r.stderr


def test_privileged(cli):
    script = ("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status;"
              "grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1;"
              "grep -c -E ' /proc/(keys|kcore|sys) ' /proc/mounts;"
              "ls /dev/loop-control; : </dev/loop-control && echo opened")
    r = cli("run", "--rm", "--privileged", cli.image, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    with open("/proc/self/status") as f:
        ours = _caps_of(_status(f.read(), "CapBnd"))
    assert _caps_of(_status(r.stdout, "CapEff")) == ours  # all the runtime itself may grant
    assert _status(r.stdout, "NoNewPrivs") == "0" and _status(r.stdout, "Seccomp") == "0"
    lines = r.stdout.splitlines()
    assert lines[3] == "rw" and lines[4] == "0"  # /sys writable; nothing masked in /proc
    assert lines[5:7] == ["/dev/loop-control", "opened"]  # the host's devices, usable
    insp = json.loads(cli("inspect", cli("create", "--privileged", "--cap-drop", "chown",
                                         cli.image, "true").stdout.strip()).stdout)[0]
    assert insp["HostConfig"]["Privileged"] is True
    assert insp["HostConfig"]["CapDrop"] == ["CAP_CHOWN"] and insp["HostConfig"]["CapAdd"] is None
    cli("rm", insp["Id"], check=True)
    r = cli("run", "--rm", "--privileged", "--userns", "private", cli.image, "true")
    assert r.returncode == 125 and "--privileged cannot be used with a user namespace" in r.stderr


def test_user_workdir_env_entrypoint(cli):
    r = cli("run", "--rm", "-u", "user", "-w", "/home/user", "-e", "A=1", "-e", "B=two words",
            "--entrypoint", "sh", cli.image, "-c", 'id -u; id -g; pwd; echo "$A/$B"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:4] == ["1000", "1000", "/home/user", "1/two words"]
    r = cli("run", "--rm", "-u", "4242:4343", "-w", "/new/dir", cli.image, "sh", "-c", "id -u; id -g; pwd")
    assert r.stdout.split() == ["4242", "4343", "/new/dir"]
    r = cli("run", "--rm", "-u", "nosuchuser", cli.image, "true")
    # docker's 125 (its CLI's runStartContainerErr: a daemon error; podman says 126)
    assert r.returncode == 125 and "unable to find user nosuchuser" in r.stderr


def test_volumes_and_read_only(cli, tmp_path):
    src = tmp_path / "vol"
    src.mkdir()
    (src / "in.txt").write_text("host data\n")
    r = cli("run", "--rm", "-v", f"{src}:/data", cli.image, "sh", "-c", "cat /data/in.txt; echo out > /data/out.txt")
    assert r.returncode == 0 and r.stdout == "host data\n"
    assert (src / "out.txt").read_text() == "out\n"
    r = cli("run", "--rm", "-v", f"{src}:/data:ro", cli.image, "sh", "-c", "echo x > /data/y")
    assert r.returncode != 0 and not (src / "y").exists()
    assert "Read-only file system" in r.stderr, r.stderr  # EROFS, not some other failure
    # --read-only: the write fails with EROFS and leaves no file (seen from inside, where
    # the root still exists; and in the container's layer after it exited)
    r = cli("run", "--name", "ro", "--read-only", cli.image, "sh", "-c",
            "touch /newfile; echo rc=$?; [ -e /newfile ] && echo present || echo absent")
    assert r.returncode == 0 and r.stdout.split() == ["rc=1", "absent"], (r.stdout, r.stderr)
    assert "Read-only file system" in r.stderr, r.stderr
    home = os.path.join(cli.root, "storage", "overlay")
    assert not [d for d in os.listdir(home) if os.path.lexists(os.path.join(home, d, "diff", "newfile"))]
    cli("rm", "ro", check=True)
    r = cli("run", "--rm", "--read-only", cli.image, "sh", "-c", "touch /tmp/../dev/shm/ok && echo ok")
    assert r.stdout == "ok\n"


def test_network_modes(cli):
    r = cli("run", "--rm", "--network", "none", cli.image, "sh", "-c", "ip -o link | wc -l; ip -o addr show lo")
    lines = r.stdout.splitlines()
    assert lines[0].strip() == "1" and "127.0.0.1" in r.stdout
    r = cli("run", "--rm", "--network", "host", cli.image, "ls", "/sys/class/net")
    assert sorted(r.stdout.split()) == sorted(os.listdir("/sys/class/net"))


def test_user_namespace(cli):
    r = cli("run", "--rm", "--userns", "private", cli.image, "sh", "-c", "cat /proc/self/uid_map; id -u")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "100000", "65536", "0"]
    r = cli("run", "--rm", "--uidmap", "0:200000:1000", cli.image, "cat", "/proc/self/gid_map")
    assert r.stdout.split() == ["0", "200000", "1000"]


def test_rm_and_container_records(cli):
    cli("run", "--name", "kept", cli.image, "sh", "-c", "exit 3")
    ps = cli("ps", "-a", "--format", "json", check=True)
    [row] = [json.loads(ln) for ln in ps.stdout.splitlines()]
    assert row["Names"] == "kept" and row["State"] == "exited" and row["Status"].startswith("Exited (3)")
    [c] = json.loads(cli("inspect", "kept", check=True).stdout)
    assert c["Name"] == "/kept" and c["State"]["ExitCode"] == 3 and c["State"]["Status"] == "exited"
    assert c["GraphDriver"]["Name"] == "overlay" and c["Pyrt"]["CgroupManager"]
    r = cli("run", "--name", "kept", cli.image, "true")
    assert r.returncode == 125 and "already in use" in r.stderr
    assert cli("rm", "kept").returncode == 0
    assert cli("ps", "-aq").stdout == ""
    cli("run", "--rm", cli.image, "true", check=True)
    assert cli("ps", "-aq").stdout == ""
    # nothing left in the driver but the image's layers
    layers = json.loads(open(os.path.join(cli.root, "storage", "layers.json")).read())
    home = os.path.join(cli.root, "storage", "overlay")
    dirs = {d for d in os.listdir(home) if d not in ("l", "empty") and not d.startswith(".")}
    assert len(dirs) == len(layers.get("layers", layers))


def test_signals_are_forwarded(cli):
    p = subprocess.Popen(cli.argv("run", "--rm", cli.image, "sh", "-c",
                                  'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done'),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 7, err
        assert out == "got-term\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_killed_container_exits_137(cli):
    p = subprocess.Popen(cli.argv("run", "--rm", "--name", "victim", cli.image, "sh", "-c", "echo ready; sleep 1000"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        c = json.loads(cli("inspect", "--type", "container", "victim", check=True).stdout)[0]
        assert c["State"]["Running"] and c["State"]["Pid"] > 0
        os.kill(c["State"]["Pid"], signal.SIGKILL)
        p.communicate(timeout=20)
        assert p.returncode == 137
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_unknown_image(cli):
    r = cli("run", "--rm", "--pull", "never", "nosuch/image:1", "true")
    assert r.returncode == 125
    assert r.stderr == "Error: image nosuch/image:1 not found locally (--pull never)\n"
    # a registry that is not there (a closed port on loopback): one line, 125, nothing left
    r = cli("run", "--rm", "127.0.0.1:9/nosuch/image:1", "true")
    assert r.returncode == 125
    assert r.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert cli("ps", "-aq").stdout == ""
    assert cli("images", "-q").stdout.split() == [cli("images", "-q").stdout.split()[0]]


def test_parallel_runs_on_one_store(cli):
    procs = [subprocess.Popen(cli.argv("run", "--rm", cli.image, "sh", "-c", f"echo {i}"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1] for o in outs]
    assert sorted(int(o[0]) for o in outs) == list(range(8))
    assert cli("ps", "-aq").stdout == ""


def test_storage_driver_choice_and_no_silent_switch(cli, demo_layout):
    info = json.loads(cli("info", "--format", "json", check=True).stdout)
    assert info["storage"]["selected"] == "overlay"  # first in priority that works here
    r = cli("--storage-driver", "vfs", "images")
    assert r.returncode == 125 and "refusing to switch" in r.stderr


def test_vfs_driver(tmp_path, demo_layout):
    from pyrt_core.testing.cli import PyrtCLI

    v = PyrtCLI(tmp_path / "vroot", tmp_path / "vrun", driver="vfs")
    try:
        iid = v("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
        r = v("run", "--rm", iid, "sh", "-c", "echo x > /f; cat /f; echo $$")
        assert r.stdout.split() == ["x", "1"], r.stderr
    finally:
        v.cleanup()
