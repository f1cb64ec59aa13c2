"""Fault injection: SIGKILL the CLI or the monitor at points of each operation, then
check the next pyrt command leaves a consistent state and nothing leaked.

``PYRT_FAULT=point`` makes a pyrt process SIGKILL itself at ``point`` (see
pyrt_core.engine.common.fault); monitors are killed from outside.  The leak guard of
tests/privileged (mounts, cgroups, processes in other pid namespaces) runs after
every test as well.
"""
import json
import os
import shutil
import signal
import subprocess
import threading

import pytest

from pyrt_core.testing.lifecycle import conmon_pids, inspect, leftovers, state, wait_for

TRAP = 'trap "exit 3" TERM; echo ready; sleep 1000 & wait'


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def gone(pid):
    """Wait until ``pid`` is reaped: orphans go to this machine's pid 1, which reaps
    them about a second later (and the leak guard counts zombies too)."""
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=20, what=f"pid {pid} reaped")


def faulty(point):
    return dict(os.environ, PYRT_FAULT=point)


def layer_dirs(cli):
    home = os.path.join(cli.root, "storage", "overlay")
    return {d for d in os.listdir(home) if d not in ("l", "empty") and not d.startswith(".")}


def image_layers(cli):
    with open(os.path.join(cli.root, "storage", "layers.json")) as f:
        d = json.load(f)
    return len(d.get("layers", d))


def assert_clean(cli, running=()):
    """No run state, mount, conmon or layer beyond what the running containers explain."""
    if not running:
        wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")
    assert [x for x in leftovers(cli) if not any(r in x for r in running)] == []


# -- create --------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["create:published", "create:layer"])
def test_killed_during_create(cli, point):
    r = cli("create", "--name", "half", cli.image, "true", env=faulty(point))
    assert r.returncode == -signal.SIGKILL
    r = cli("ps", "-a")  # the next command recovers
    assert r.returncode == 0 and "half" not in r.stdout
    assert len(layer_dirs(cli)) == image_layers(cli)
    assert cli("create", "--name", "half", cli.image, "true").returncode == 0  # the name is free


# -- start ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["start:mounted", "start:created"])
def test_killed_during_start(cli, point):
    cli("create", "--name", "ss", cli.image, "sh", "-c", TRAP, check=True)
    r = cli("start", "ss", env=faulty(point))
    assert r.returncode == -signal.SIGKILL
    st = state(cli, "ss")  # inspect recovers first
    assert st["Status"] == "exited" and not st["Running"]
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")
    assert_clean(cli)
    # and it can be started again
    assert cli("start", "ss").returncode == 0
    assert state(cli, "ss")["Running"]
    assert cli("stop", "ss").returncode == 0
    assert state(cli, "ss")["ExitCode"] == 3
    assert_clean(cli)


def test_killed_right_after_exec(cli):
    cli("create", "--name", "ss", cli.image, "sh", "-c", TRAP, check=True)
    assert cli("start", "ss", env=faulty("start:started")).returncode == -signal.SIGKILL
    st = state(cli, "ss")
    assert st["Status"] == "running" and st["Pid"] > 0  # the container did start: keep it
    assert cli("stop", "ss").returncode == 0
    assert state(cli, "ss")["ExitCode"] == 3
    assert_clean(cli)


def test_run_detached_killed_after_its_monitor_started(cli):
    # run -d starts conmon before the record exists (Engine.prelaunch); killed there, the
    # runtime reads EOF and exits, conmon too, and the next command removes the directories
    r = cli("run", "-d", "--name", "early", cli.image, "sh", "-c", TRAP, env=faulty("run:launched"))
    assert r.returncode == -signal.SIGKILL
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")
    r = cli("ps", "-a")
    assert r.returncode == 0 and "early" not in r.stdout and "unfinished run" in r.stderr
    assert os.listdir(os.path.join(cli.root, "containers")) == ["names"]
    assert_clean(cli)
    assert cli("run", "-d", "--name", "early", cli.image, "sh", "-c", TRAP).returncode == 0
    assert cli("rm", "-f", "early").returncode == 0
    assert_clean(cli)


def test_run_detached_bad_image_leaves_nothing(cli):
    # the early monitor of a run -d whose create fails is stopped and its directories go
    r = cli("run", "-d", "--name", "nope", "no/such:image", "true")
    assert r.returncode == 125 and "no/such" in r.stderr
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")
    assert os.listdir(os.path.join(cli.root, "containers")) == ["names"]
    assert_clean(cli)


def test_run_detached_killed_before_start(cli):
    r = cli("run", "-d", "--name", "rd", cli.image, "sh", "-c", TRAP, env=faulty("start:created"))
    assert r.returncode == -signal.SIGKILL
    assert state(cli, "rd")["Status"] == "exited"
    wait_for(lambda: conmon_pids(cli) == [], timeout=10)
    assert_clean(cli)


# -- stop and rm ---------------------------------------------------------------------------------


def test_killed_during_stop(cli):
    cli("run", "-d", "--name", "st", cli.image, "sh", "-c", TRAP, check=True)
    assert cli("stop", "st", env=faulty("stop:signalled")).returncode == -signal.SIGKILL
    # the signal was sent: conmon's exit command records the exit
    wait_for(lambda: state(cli, "st")["Status"] == "exited", what="exit recorded")
    assert state(cli, "st")["ExitCode"] == 3
    wait_for(lambda: conmon_pids(cli) == [], timeout=10)
    assert_clean(cli)


@pytest.mark.parametrize("point", ["rm:killed", "rm:removing", "rm:layer"])
def test_killed_during_rm(cli, point):
    cli("run", "-d", "--name", "victim", cli.image, "sh", "-c", TRAP, check=True)
    r = cli("rm", "-f", "victim", env=faulty(point))
    assert r.returncode == -signal.SIGKILL
    def settled():
        left = [json.loads(ln) for ln in cli("ps", "-a", "--format", "json").stdout.splitlines()]
        # removed, or (rm:killed) exited once the monitor's exit command ran
        return left if all(c["State"] == "exited" for c in left) else None

    left = wait_for(lambda: settled() is not None and settled(), timeout=20, what="a settled state") \
        if settled() is None else settled()
    wait_for(lambda: conmon_pids(cli) == [], timeout=10)
    assert_clean(cli)
    if left:
        assert cli("rm", "victim").returncode == 0
    assert cli("ps", "-aq").stdout == ""
    assert len(layer_dirs(cli)) == image_layers(cli)


# -- monitors ------------------------------------------------------------------------------------


def test_monitor_killed(cli):
    cli("run", "-d", "--name", "mm", cli.image, "sh", "-c", TRAP, check=True)
    [mon] = conmon_pids(cli)
    pid = state(cli, "mm")["Pid"]
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: conmon_pids(cli) == [], timeout=10)
    st = state(cli, "mm")  # recovery: the container lost its monitor -> killed, cleaned up
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    gone(pid)
    assert_clean(cli)
    assert cli("start", "mm").returncode == 0  # and it starts again
    assert cli("stop", "mm").returncode == 0


def test_monitor_killed_restart_policy_waits_for_start_or_boot(cli):
    # podman's rule: restart policies act on the exit the monitor reports; a container whose
    # monitor died is marked exited and stays so until `start` or `system boot`
    cli("run", "-d", "--name", "al", "--restart", "always", cli.image, "sh", "-c", TRAP, check=True)
    [mon] = conmon_pids(cli)
    pid = state(cli, "al")["Pid"]
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: conmon_pids(cli) == [], timeout=10)
    st = state(cli, "al")  # the implicit recovery: killed, cleaned up, not restarted
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and "monitor" in st["Error"]
    gone(pid)
    for _ in range(3):  # more commands, more recovery passes: still not restarted
        assert json.loads(cli("ps", "-a", "--format", "json").stdout.splitlines()[0])["State"] == "exited"
    assert inspect(cli, "al")["RestartCount"] == 0 and conmon_pids(cli) == []
    assert_clean(cli)
    r = cli("system", "boot")  # at host start-up: restarted
    assert r.returncode == 0 and "started al" in r.stdout
    st = state(cli, "al")
    assert st["Running"] and st["Error"] == ""
    assert cli("stop", "al").returncode == 0
    assert state(cli, "al")["ExitCode"] == 3
    assert_clean(cli)


def test_cleanup_exit_command_killed(cli):
    # the monitor's exit command (`pyrt container cleanup`) inherits PYRT_FAULT from run -d
    cli("run", "-d", "--name", "cc", cli.image, "sh", "-c", TRAP, env=faulty("cleanup:released"),
        check=True)
    assert cli("kill", "-s", "TERM", "cc").returncode == 0
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")
    st = state(cli, "cc")
    assert st["Status"] == "exited" and st["ExitCode"] == 3
    assert_clean(cli)


def test_foreground_cli_killed(cli):
    p = subprocess.Popen(cli.argv("run", "--name", "fg", cli.image, "sh", "-c", "echo ready; sleep 1000"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        pid = state(cli, "fg")["Pid"]
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    st = state(cli, "fg")  # its monitor (the CLI) is gone: the container is stopped
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    gone(pid)
    assert_clean(cli)
    assert cli("start", "fg").returncode == 0  # now under conmon
    assert cli("rm", "-f", "fg").returncode == 0


# -- reboot and failed unmounts -------------------------------------------------------------------


def test_after_reboot(cli):
    for n in ("aa", "bb"):
        cli("run", "-d", "--name", n, cli.image, "sh", "-c", TRAP, check=True)
    cli("create", "--name", "never", cli.image, "true", check=True)
    # "reboot": every process gone, every mount gone, the run root (tmpfs) gone
    pids = conmon_pids(cli) + [state(cli, n)["Pid"] for n in ("aa", "bb")]
    for p in pids:
        os.kill(p, signal.SIGKILL)
    for p in pids:
        gone(p)
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f
               if cli.root in line.split()[4] or cli.runroot in line.split()[4]]
    for mp in sorted(mps, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=True)
    shutil.rmtree(cli.runroot)
    ps = [json.loads(ln) for ln in cli("ps", "-a", "--format", "json").stdout.splitlines()]
    by = {c["Names"]: c["State"] for c in ps}
    assert by["aa"] == by["bb"] == "exited"
    assert by["never"] == "created"
    for n in ("aa", "bb", "never"):
        assert cli("start", n).returncode == 0, n
    assert state(cli, "aa")["Running"]
    assert cli("stop", "aa", "bb").returncode == 0
    assert_clean(cli)


def test_start_after_failed_unmount(cli):
    cli("run", "-d", "--name", "uu", cli.image, "sh", "-c", TRAP, check=True)
    assert cli("stop", "uu").returncode == 0
    cid = inspect(cli, "uu")["Id"]
    merged = os.path.join(cli.root, "storage", "overlay", cid, "merged")
    # the unmount "failed": the root filesystem is still mounted when the container is started again
    env = dict(os.environ)
    code = ("import sys; from pyrt_core.config import load_settings; from pyrt_core.engine import Engine;"
            f"e = Engine(load_settings(root={cli.root!r}, runroot={cli.runroot!r})); e.driver.get({cid!r})")
    subprocess.run([os.path.join(os.path.dirname(cli.exe), "python"), "-c", code], check=True, env=env)
    assert os.path.ismount(merged)
    assert cli("start", "uu").returncode == 0
    assert cli("stop", "uu").returncode == 0
    assert not os.path.ismount(merged)
    # and `system recover` releases such a stale mount
    subprocess.run([os.path.join(os.path.dirname(cli.exe), "python"), "-c", code], check=True, env=env)
    r = cli("system", "recover")
    assert r.returncode == 0 and not os.path.ismount(merged)
    assert_clean(cli)


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrent_run_and_rm(cli):
    n = 20
    results = {}

    def worker(i):
        r1 = cli("run", "-d", "--name", f"c{i}", cli.image, "sh", "-c", TRAP, timeout=120)
        r2 = cli("rm", "-f", f"c{(i + 7) % n}", timeout=120)  # often someone else's, maybe not there yet
        results[i] = (r1, r2)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    removed = {f"c{(i + 7) % n}" for i, (_, r2) in results.items() if r2.returncode == 0}
    for i, (r1, r2) in results.items():
        # a run -d whose container another thread removed before it started fails, rightly
        assert r1.returncode == 0 or (f"c{i}" in removed and "no such container" in r1.stderr), r1.stderr
        assert r2.returncode == 0 or "no such container" in r2.stderr, r2.stderr
    # nothing lost: every container is either removed or still listed and consistent
    left = [json.loads(ln) for ln in cli("ps", "-a", "--format", "json").stdout.splitlines()]
    assert {c["Names"] for c in left} == {f"c{i}" for i in range(n)} - removed
    for c in left:
        assert c["State"] == "running"
    ids = cli("ps", "-aq").stdout.split()
    threads = [threading.Thread(target=cli, args=("rm", "-f", x)) for x in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cli("ps", "-aq").stdout == ""
    wait_for(lambda: conmon_pids(cli) == [], timeout=20)
    assert_clean(cli)
    assert len(layer_dirs(cli)) == image_layers(cli)
    assert os.listdir(os.path.join(cli.root, "containers", "names")) == []
