"""Resource control of running containers through the CLI: pause/unpause (freezer),
stats, update, OOM reporting, and the clear error without a resource plugin."""
import json
import os
import time

import pytest


@pytest.fixture
def cli(pyrt_cli, demo_layout):
    pyrt_cli.image = pyrt_cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    return pyrt_cli


def _count(path):
    """Progress of the counter: the size of a file it only ever appends to."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def test_pause_stops_progress_and_unpause_resumes(cli, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    cid = cli("run", "-d", "--name", "counter", "-v", f"{vol}:/out", cli.image, "sh", "-c",
              "while true; do printf x >> /out/n; done", check=True).stdout.strip()
    n = vol / "n"
    deadline = time.monotonic() + 20
    while _count(n) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cli("pause", "counter").returncode == 0
    c = json.loads(cli("inspect", "--type", "container", "counter", check=True).stdout)[0]
    time.sleep(0.2)
    a = _count(n)
    time.sleep(1.0)
    assert _count(n) == a, "a paused container made progress"
    r = cli("pause", "counter")
    assert r.returncode == 1 and "already paused" in r.stderr
    assert cli("unpause", cid[:12]).returncode == 0
    deadline = time.monotonic() + 30  # progress again, however long a busy machine takes
    while _count(n) == a and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(n) > a
    assert c["State"]["Running"]
    # stop works on a paused container too (it is thawed first)
    cli("pause", "counter", check=True)
    r = cli("stop", "-t", "1", "counter")
    assert r.returncode == 0, r.stderr
    assert cli("pause", "counter").returncode == 1  # not running any more


def test_stats_and_update(cli):
    cli("run", "-d", "--name", "ss", "-m", "48m", "--pids-limit", "50", cli.image, "sleep", "1000", check=True)
    r = cli("stats", "--no-stream", "--format", "json", "ss", check=True, timeout=30)
    [row] = json.loads(r.stdout)
    assert row["Name"] == "ss" and row["PIDs"] >= 1 and row["MemUsage"] > 0
    assert row["MemLimit"] == 48 << 20
    cli("update", "--memory", "96m", "--pids-limit", "20", "ss", check=True)
    [row] = json.loads(cli("stats", "--no-stream", "--format", "json", "ss", check=True, timeout=30).stdout)
    assert row["MemLimit"] == 96 << 20
    c = json.loads(cli("inspect", "--type", "container", "ss", check=True).stdout)[0]
    assert c["Pyrt"]["ContainerConfig"]["resources"]["pids"] == {"limit": 20}
    assert c["HostConfig"]["PidsLimit"] == 20
    r = cli("stats", "--no-stream", "ss")  # the table form
    assert r.returncode == 0 and r.stdout.startswith("CONTAINER ID")
    assert "/ 101MB" in r.stdout.splitlines()[1]  # 96 MiB, shown in docker's decimal units
    r = cli("update", "--memory", "10x", "ss")
    assert r.returncode == 125 and "invalid" in r.stderr.lower()
    r = cli("update", "ss")
    assert r.returncode == 125 and "at least one resource flag" in r.stderr


@pytest.fixture
def loop_device(tmp_path):
    """A block device the default rules do not allow: a loop device on a small file
    that starts with a known line (detached at the end)."""
    import subprocess

    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.write(b"pyrt-device-ok\n")
        f.truncate(1 << 20)
    r = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dev = r.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def _open_a_node_made_in_the_container(cli, dev, *flags):
    """mknod (allowed: docker's default "b *:* m") a node of ``dev`` in the container,
    then read from it (``rw`` is what the device cgroup decides)."""
    st = os.stat(dev)
    script = (f"mknod /tmp/node b {os.major(st.st_rdev)} {os.minor(st.st_rdev)} && echo made; "
              "head -n 1 /tmp/node; echo rc=$?")
    return cli("run", "--rm", *flags, cli.image, "sh", "-c", script)


def test_a_device_the_rules_do_not_allow_cannot_be_opened(cli, loop_device):
    r = _open_a_node_made_in_the_container(cli, loop_device)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["made", "rc=1"], (r.stdout, r.stderr)
    assert "Operation not permitted" in r.stderr, r.stderr  # EPERM from the device cgroup


def test_device_flag_allows_that_device(cli, loop_device):
    r = _open_a_node_made_in_the_container(cli, loop_device, "--device", loop_device)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["made", "pyrt-device-ok", "rc=0"], (r.stdout, r.stderr)
    # and the node --device made in the container's /dev
    r = cli("run", "--rm", "--device", loop_device, cli.image, "head", "-n", "1", loop_device)
    assert (r.returncode, r.stdout) == (0, "pyrt-device-ok\n"), r.stderr


def test_oom_is_reported(cli):
    since = f"{time.time():.6f}"
    r = cli("run", "--name", "hog", "-m", "32m", "--memory-swap", "32m", cli.image, "sh", "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' 'x'); echo never")
    assert r.returncode == 137, r.stderr
    c = json.loads(cli("inspect", "--type", "container", "hog", check=True).stdout)[0]
    assert c["State"]["OOMKilled"] is True and c["State"]["ExitCode"] == 137
    # docker's oom event, before the die
    ev = cli("events", "--since", since, "--until", "0s", "--filter", "container=hog",
             "--format", "{{.Action}} {{.Actor.Attributes.name}}", check=True).stdout.split("\n")
    assert [e for e in ev if e.startswith(("oom", "die"))] == ["oom hog", "die hog"], ev


def test_without_a_resource_plugin_limits_and_device_rules_are_refused(cli):
    # the plugin disabled (or missing, or left out of a cache): nothing would enforce a
    # limit, nor the device rules every container has (docs/security.md)
    env = {k: v for k, v in os.environ.items() if k != "PYRT_CGROUP_MANAGER"}
    env["PYRT_DISABLE_PLUGINS"] = "cgroups"
    r = cli("run", "--rm", "-m", "64m", cli.image, "true", env=env)
    assert r.returncode == 125 and "pyrt-cgroups" in r.stderr and r.stderr.count("\n") == 1
    for args in (("run", "--rm"), ("run", "-d", "--name", "plain"), ("create",)):
        r = cli(*args, cli.image, "true", env=env)
        assert r.returncode == 125 and r.stderr.count("\n") == 1, r.stderr
        assert "without its device cgroup" in r.stderr and "PYRT_CGROUP_MANAGER=none" in r.stderr
    assert cli("ps", "-aq", env=env).stdout == ""
    info = json.loads(cli("info", "--format", "json", env=env, check=True).stdout)
    assert info["device_cgroup"].startswith("unavailable")
    # --privileged allows every device: there is nothing to enforce
    cli("run", "--rm", "--privileged", cli.image, "true", env=env, check=True)


def test_no_cgroups_chosen_runs_without_a_device_cgroup_and_says_so(cli):
    env = {k: v for k, v in os.environ.items() if k != "PYRT_DISABLE_PLUGINS"}
    env["PYRT_CGROUP_MANAGER"] = "none"
    r = cli("run", "--name", "plain", cli.image, "true", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") == 1 and "warning" in r.stderr and "device" in r.stderr
    c = json.loads(cli("inspect", "--type", "container", "plain", check=True).stdout)[0]
    assert c["Pyrt"]["CgroupManager"] == "none" and c["Pyrt"]["DeviceCgroup"] is False
    info = json.loads(cli("info", "--format", "json", env=env, check=True).stdout)
    assert info["device_cgroup"].startswith("NOT ENFORCED")
    cli("run", "-d", "--name", "sleeper", cli.image, "sleep", "1000", env=env, check=True)
    r = cli("pause", "sleeper", env=env)
    assert r.returncode == 1 and "pyrt-cgroups" in r.stderr


def test_cgroup_manager_from_the_config_file(cli, tmp_path):
    cfg = tmp_path / "pyrt.toml"
    cfg.write_text('[cgroups]\nmanager = "none"\n')
    env = {k: v for k, v in os.environ.items() if k != "PYRT_CGROUP_MANAGER"}
    r = cli("--config", cfg, "run", "--rm", "-m", "64m", cli.image, "true", env=env)
    assert r.returncode == 125 and r.stderr.count("\n") == 1
    cli("--config", cfg, "run", "--name", "nocg", cli.image, "true", env=env, check=True)
    c = json.loads(cli("inspect", "--type", "container", "nocg", check=True).stdout)[0]
    assert c["Pyrt"]["CgroupManager"] == "none" and c["Pyrt"]["DeviceCgroup"] is False
    cli("run", "--name", "withcg", cli.image, "true", env=env, check=True)
    c = json.loads(cli("inspect", "--type", "container", "withcg", check=True).stdout)[0]
    assert c["Pyrt"]["CgroupManager"].startswith("cgroupfs-") and c["Pyrt"]["DeviceCgroup"] is True
