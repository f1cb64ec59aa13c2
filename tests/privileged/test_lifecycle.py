"""Detached containers end to end: create/start/run -d/stop/kill/restart/rm/ps/logs/wait/
inspect/exec/top/prune, restart policies, and bad input (docker's conventions)."""
import json
import os
import time

import pytest

from pyrt_core.testing.lifecycle import conmon_pids, inspect, leftovers, state, wait_for

TRAP = 'trap "echo got-term; exit 3" TERM; echo ready; sleep 1000 & wait'


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _logs(cli, ref, *flags):
    return cli("logs", *flags, ref)


def test_run_detached_logs_stop_rm(cli):
    # returns while the container runs on (its trap waits for ever: a `run -d` that waited
    # for it would hit the CLI's time-out)
    r = cli("run", "-d", "--name", "web", cli.image, "sh", "-c", "echo out; echo err >&2; " + TRAP)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    wait_for(lambda: "ready" in _logs(cli, "web").stdout, what="output")
    s = state(cli, "web")
    assert s["Status"] == "running" and s["Running"] and s["Pid"] > 0 and s["StartedAt"]
    c = inspect(cli, "web")
    assert c["Pyrt"]["Monitor"] == "conmon" and c["Pyrt"]["OCIRuntime"].endswith("pyrt-runtime")
    assert len(conmon_pids(cli)) == 1
    ps = cli("ps")
    assert "web" in ps.stdout and "Up" in ps.stdout
    assert cli("ps", "-q").stdout.split() == [cid[:12]]
    lg = _logs(cli, "web")
    assert lg.stdout == "out\nready\n" and lg.stderr == "err\n"
    r = cli("stop", "web")
    assert (r.returncode, r.stdout) == (0, "web\n")
    s = state(cli, "web")
    assert (s["Status"], s["Running"], s["ExitCode"], s["Pid"]) == ("exited", False, 3, 0)
    assert s["FinishedAt"] >= s["StartedAt"]
    assert "got-term" in _logs(cli, "web").stdout
    assert cli("ps", "-q").stdout == ""
    assert "Exited (3)" in cli("ps", "-a").stdout
    assert leftovers(cli) == []
    assert conmon_pids(cli) == []
    assert cli("rm", "web").returncode == 0
    assert cli("ps", "-aq").stdout == ""


def test_create_then_start_attached(cli):
    r = cli("create", "--name", "job", cli.image, "sh", "-c", "echo hello; echo oops >&2; exit 7")
    assert r.returncode == 0, r.stderr
    assert state(cli, "job")["Status"] == "created"
    assert "Created" in cli("ps", "-a").stdout
    r = cli("start", "-a", "job")
    assert r.returncode == 7
    assert "hello" in r.stdout and "oops" in r.stderr
    assert state(cli, "job")["ExitCode"] == 7
    # a second start runs it again: the exited container can be started
    assert cli("start", "job").returncode == 0
    assert cli("wait", "job").stdout.strip() == "7"
    assert _logs(cli, "job").stdout == "hello\nhello\n"


def test_start_interactive_stdin(cli):
    cli("create", "-i", "--name", "cat", cli.image, "sh", "-c", "read line; echo got:$line", check=True)
    r = cli("start", "-a", "-i", "cat", input="hi there\n")
    assert r.returncode == 0 and r.stdout == "got:hi there\n", r.stderr


def test_stop_escalates_to_sigkill(cli):
    # PID 1 ignores TERM; the container's own stop time-out is long, so `-t 1` being
    # honoured shows with a margin no busy machine eats (1 s vs 90 s)
    cli("run", "-d", "--name", "stubborn", "--stop-timeout", "90", cli.image, "sleep", "1000",
        check=True)
    t = time.monotonic()
    r = cli("stop", "-t", "1", "stubborn", timeout=120)
    took = time.monotonic() - t
    assert r.returncode == 0
    assert 1.0 <= took < 45  # waited the grace period it was given, not the container's
    assert state(cli, "stubborn")["ExitCode"] == 137


def test_stop_signal_flag(cli):
    cli("run", "-d", "--name", "hup", "--stop-signal", "HUP", cli.image, "sh", "-c",
        'trap "exit 11" HUP; sleep 1000 & wait', check=True)
    assert cli("stop", "-t", "5", "hup").returncode == 0
    assert state(cli, "hup")["ExitCode"] == 11


def test_kill_and_signals(cli):
    cli("run", "-d", "--name", "kk", cli.image, "sh", "-c",
        'trap "echo usr1" USR1; echo ready; while true; do sleep 0.1; done', check=True)
    wait_for(lambda: "ready" in _logs(cli, "kk").stdout)
    assert cli("kill", "-s", "USR1", "kk").returncode == 0
    wait_for(lambda: "usr1" in _logs(cli, "kk").stdout, what="trap output")
    assert state(cli, "kk")["Running"]
    assert cli("kill", "kk").stdout == "kk\n"  # SIGKILL by default
    assert cli("wait", "kk").stdout.strip() == "137"
    r = cli("kill", "kk")
    assert r.returncode == 1 and "not running" in r.stderr
    r = cli("kill", "-s", "NOSUCH", "kk")
    assert r.returncode == 125 and "invalid signal" in r.stderr


def test_restart_command(cli):
    cli("run", "-d", "--name", "rr", cli.image, "sh", "-c", TRAP, check=True)
    pid1 = state(cli, "rr")["Pid"]
    assert cli("restart", "-t", "5", "rr").returncode == 0
    s = state(cli, "rr")
    assert s["Running"] and s["Pid"] != pid1


def test_rm_running_needs_force(cli):
    cli("run", "-d", "--name", "busy", cli.image, "sleep", "1000", check=True)
    r = cli("rm", "busy")
    assert r.returncode == 1 and "running" in r.stderr and "-f" in r.stderr
    assert state(cli, "busy")["Running"]
    r = cli("rm", "-f", "-v", "busy")
    assert r.returncode == 0
    assert cli("ps", "-aq").stdout == ""
    assert leftovers(cli) == []


def test_wait_and_run_rm_detached(cli):
    cid = cli("run", "-d", cli.image, "sh", "-c", "sleep 0.3; exit 5", check=True).stdout.strip()
    r = cli("wait", cid[:8])  # short-id prefix
    assert (r.returncode, r.stdout) == (0, "5\n")
    cid = cli("run", "-d", "--rm", cli.image, "sh", "-c", "sleep 0.3; exit 6", check=True).stdout.strip()
    assert cli("wait", cid).stdout.strip() == "6"
    wait_for(lambda: cli("ps", "-aq", "--no-trunc").stdout.split().count(cid) == 0, what="--rm removal")


def test_exec(cli):
    cli("run", "-d", "--name", "ex", "-e", "FROM_RUN=1", cli.image, "sleep", "1000", check=True)
    r = cli("exec", "ex", "sh", "-c", 'echo $FROM_RUN; cat /proc/1/cmdline | tr "\\0" " "; echo; exit 4')
    assert r.returncode == 4
    assert r.stdout.splitlines() == ["1", "sleep 1000 "]
    r = cli("exec", "-e", "X=y z", "-u", "1000", "-w", "/tmp", "ex", "sh", "-c", 'echo "$X"; id -u; pwd')
    assert r.returncode == 0 and r.stdout.split("\n")[:3] == ["y z", "1000", "/tmp"]
    r = cli("exec", "-i", "ex", "sh", "-c", "cat", input="piped\n")
    assert r.stdout == "piped\n"
    # the same namespaces as the container's init
    pid = state(cli, "ex")["Pid"]
    r = cli("exec", "ex", "sh", "-c",
            "for f in /proc/1/ns/pid /proc/self/ns/net /proc/self/ns/mnt; do readlink $f; done")
    want = [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "net", "mnt")]
    assert r.stdout.split() == want
    assert cli("exec", "ex", "no-such-cmd").returncode == 127
    r = cli("exec", "-u", "nosuchuser", "ex", "true")  # docker exec's 126 (run's is 125)
    assert r.returncode == 126 and "unable to find user nosuchuser" in r.stderr, r.stderr
    top = cli("top", "ex")
    assert top.returncode == 0 and "sleep 1000" in top.stdout
    cli("stop", "-t", "0", "ex", check=True)
    r = cli("exec", "ex", "true")
    assert r.returncode == 125 and "not running" in r.stderr
    r = cli("top", "ex")
    assert r.returncode == 125 and "not running" in r.stderr


def test_logs_tail_timestamps_follow_json(cli):
    cli("run", "-d", "--name", "lg", cli.image, "sh", "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.5; echo late", check=True)
    wait_for(lambda: "line5" in _logs(cli, "lg").stdout)
    assert _logs(cli, "lg", "--tail", "2").stdout in ("line4\nline5\n", "line5\nlate\n")
    ts = _logs(cli, "lg", "-t").stdout.splitlines()[0]
    assert ts.endswith(" line1") and ts[4] == "-" and "T" in ts.split()[0] and ts.split()[0].endswith("Z")
    r = cli("logs", "-f", "lg", timeout=30)  # returns when the container exits
    assert r.stdout.endswith("late\n")
    j = [json.loads(x) for x in _logs(cli, "lg", "--format", "json").stdout.splitlines()]
    assert j[0]["log"] == "line1\n" and j[0]["stream"] == "stdout" and j[0]["time"].endswith("Z")


def test_log_size_cap(cli):
    cli("run", "-d", "--name", "noisy", "--log-opt", "max-size=20k", cli.image, "sh", "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done", check=True)
    assert cli("wait", "noisy").stdout.strip() == "0"
    path = inspect(cli, "noisy")["LogPath"]
    assert os.path.getsize(path) <= 20 * 1024
    assert _logs(cli, "noisy").stdout.endswith("line-2999-xxxxxxxxxxxxxxxxxxxxxxxx\n")


def test_restart_policy_on_failure(cli):
    cli("run", "-d", "--name", "flaky", "--restart", "on-failure:2", cli.image, "sh", "-c", "exit 3",
        check=True)
    c = wait_for(lambda: (lambda c: c if c["RestartCount"] == 2 and not c["State"]["Running"]
                          and c["State"]["Status"] == "exited" else None)(inspect(cli, "flaky")),
                 timeout=30, what="two restarts")
    assert c["State"]["ExitCode"] == 3
    time.sleep(1)
    assert inspect(cli, "flaky")["RestartCount"] == 2


def test_restart_policy_always_and_stop(cli):
    cli("run", "-d", "--name", "svc", "--restart", "always", cli.image, "sh", "-c", "sleep 0.2; exit 0",
        check=True)
    wait_for(lambda: inspect(cli, "svc")["RestartCount"] >= 2, timeout=30, what="restarts")
    assert cli("stop", "-t", "1", "svc").returncode == 0
    n = inspect(cli, "svc")["RestartCount"]
    time.sleep(1.5)
    c = inspect(cli, "svc")
    assert c["RestartCount"] == n and not c["State"]["Running"]


def test_prune_and_stop_all(cli):
    cli("create", "--name", "c1", cli.image, "true", check=True)
    cli("run", "-d", "--name", "c2", cli.image, "sh", "-c", TRAP, check=True)
    cli("run", "-d", "--name", "c3", cli.image, "sh", "-c", TRAP, check=True)
    r = cli("stop", "--all")
    assert r.returncode == 0 and len(r.stdout.split()) == 2
    assert [state(cli, n)["ExitCode"] for n in ("c2", "c3")] == [3, 3]
    r = cli("container", "prune", "-f")
    assert r.returncode == 0 and len(r.stdout.split()) == 3
    assert cli("ps", "-aq").stdout == ""


def test_bad_input(cli):
    for args in (("stop", "nosuch"), ("kill", "nosuch"), ("rm", "nosuch"), ("start", "nosuch"),
                 ("wait", "nosuch"), ("restart", "nosuch")):
        r = cli(*args)
        assert r.returncode == 1 and "no such container: nosuch" in r.stderr, args
    for args in (("logs", "nosuch"), ("exec", "nosuch", "true"), ("attach", "nosuch"), ("top", "nosuch")):
        r = cli(*args)
        assert r.returncode == 125 and "no such container: nosuch" in r.stderr, args
    r = cli("inspect", "--type", "container", "nosuch")
    assert r.returncode == 125
    cli("create", "--name", "dup", cli.image, "true", check=True)
    r = cli("run", "-d", "--name", "dup", cli.image, "true")
    assert r.returncode == 125 and 'name "dup" is already in use' in r.stderr
    r = cli("create", "--name", "bad/name", cli.image, "true")
    assert r.returncode == 125 and "Invalid container name (bad/name)" in r.stderr
    # stopping a stopped container is not an error (docker)
    assert cli("stop", "dup").returncode == 0
    r = cli("run", "-d", "--restart", "sometimes", cli.image, "true")
    assert r.returncode == 125 and "invalid restart policy" in r.stderr
    r = cli("run", "-d", "--rm", "--restart", "always", cli.image, "true")
    assert r.returncode == 125 and "conflicting options" in r.stderr
    r = cli("run", "-d", cli.image, "no-such-command")
    assert r.returncode == 127 and "no-such-command" in r.stderr
    r = cli("attach", "dup")
    assert r.returncode == 125 and "stopped container" in r.stderr


def test_ambiguous_prefix(cli):
    ids = set()
    for _ in range(20):
        ids.add(cli("create", cli.image, "true", check=True).stdout.strip())
    firsts = {}
    for i in ids:
        firsts.setdefault(i[0], []).append(i)
    shared = next((v for v in firsts.values() if len(v) > 1), None)
    if shared:
        r = cli("rm", shared[0][0])
        assert r.returncode == 1 and "ambiguous" in r.stderr
