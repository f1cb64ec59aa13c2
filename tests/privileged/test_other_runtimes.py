"""``--runtime runc|crun|NAME|PATH``: containers run by another OCI runtime than
pyrt-runtime (monitor.ociruntime), and every later operation going through it: start,
exec, kill, stop, pause, rm, recovery; foreground runs go through conmon."""
import json
import os
import shutil
import subprocess

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.lifecycle import conmon_pids, inspect, leftovers, state, wait_for

RUNTIMES = ["runc", "crun"]


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _runtime_state(cli, name, cid):
    """What the runtime itself says of ``cid`` under pyrt's state directory for it."""
    exe = shutil.which(name)
    r = subprocess.run([exe, "--root", os.path.join(cli.runroot, "runtimes", name), "state", cid],
                       capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None


def _usable(name):
    exe = shutil.which(name)
    assert exe, f"{name} is not installed (scripts/test installs it with apt)"
    if name == "crun":
        machine.skip_unless("crun-cgroups", detail="crun cannot create a container on this host")
    return os.path.realpath(exe)


@pytest.mark.parametrize("rt", RUNTIMES)
def test_detached_container_under_another_runtime(cli, rt):
    exe = _usable(rt)
    r = cli("run", "-d", "--runtime", rt, "--name", "other", cli.image,
            "sh", "-c", "echo hello; trap 'echo term; exit 4' TERM; sleep 1000 & wait")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    c = inspect(cli, "other")
    assert c["HostConfig"]["Runtime"] == rt
    assert c["Pyrt"]["OCIRuntime"] == exe and c["Pyrt"]["Monitor"] == "conmon"
    # the runtime's own state knows it, running with the init pyrt recorded; pyrt-runtime's doesn't
    rs = _runtime_state(cli, rt, cid)
    assert rs is not None and rs["status"] == "running" and rs["pid"] == c["State"]["Pid"]
    assert not os.path.exists(os.path.join(cli.runroot, "runtime", cid))
    wait_for(lambda: "hello" in cli("logs", "other").stdout, what="output")
    # exec through that runtime: output, exit code, the container's pid namespace
    r = cli("exec", "other", "sh", "-c", "echo inside $$; cat /proc/1/cmdline | tr '\\0' ' '; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout.startswith("inside ") and "sh -c echo hello" in r.stdout
    # pause / unpause through it
    assert cli("pause", "other").returncode == 0
    assert _runtime_state(cli, rt, cid)["status"] == "paused"
    assert cli("unpause", "other").returncode == 0
    assert _runtime_state(cli, rt, cid)["status"] == "running"
    # kill: the signal reaches the init (its trap answers), the exit is recorded
    assert cli("kill", "-s", "TERM", "other").returncode == 0
    assert cli("wait", "other").stdout.strip() == "4"
    wait_for(lambda: state(cli, "other")["Status"] == "exited", what="the exit recorded")
    assert "term" in cli("logs", "other").stdout
    assert _runtime_state(cli, rt, cid) is None  # deleted (its cgroup with it)
    # a second run uses the same runtime; stop sends the stop signal through it
    assert cli("start", "other").returncode == 0
    assert _runtime_state(cli, rt, cid)["status"] == "running"
    r = cli("stop", "-t", "5", "other")
    assert r.returncode == 0, r.stderr
    assert state(cli, "other")["ExitCode"] == 4
    assert _runtime_state(cli, rt, cid) is None
    assert cli("start", "other").returncode == 0
    assert cli("rm", "-f", "other").returncode == 0
    assert _runtime_state(cli, rt, cid) is None
    assert leftovers(cli) == []
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")


@pytest.mark.parametrize("rt", RUNTIMES)
def test_foreground_run_under_another_runtime(cli, rt):
    """The CLI is no runtime's monitor: a foreground run with --runtime goes through conmon
    (as --restart does) and keeps the foreground's exit code, output and --rm."""
    _usable(rt)
    r = cli("run", "--rm", "--runtime", rt, cli.image, "sh", "-c", "echo fg; echo err >&2; exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, "fg\n", "err\n")
    wait_for(lambda: cli("ps", "-aq").stdout == "", what="--rm removal")
    r = cli("run", "--name", "fg", "--runtime", rt, cli.image, "cat", "/proc/self/status")
    assert r.returncode == 0 and "NoNewPrivs:\t1" in r.stdout, r.stdout + r.stderr
    assert inspect(cli, "fg")["HostConfig"]["Runtime"] == rt
    assert "NoNewPrivs" in cli("logs", "fg").stdout


def test_runtime_by_path_and_from_config(cli, tmp_path):
    exe = _usable("runc")
    r = cli("run", "--rm", "--runtime", exe, cli.image, "echo", "by-path")
    assert (r.returncode, r.stdout) == (0, "by-path\n"), r.stderr
    conf = tmp_path / "pyrt.toml"
    conf.write_text(f'[runtimes]\nmine = ["/nonexistent/runc", "{exe}"]\n')
    r = cli("--config", conf, "run", "-d", "--runtime", "mine", "--name", "cfg", cli.image,
            "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert inspect(cli, "cfg")["Pyrt"]["OCIRuntime"] == exe
    rs = subprocess.run([exe, "--root", os.path.join(cli.runroot, "runtimes", "mine"), "state", cid],
                        capture_output=True, text=True)
    assert rs.returncode == 0 and json.loads(rs.stdout)["status"] == "running"
    assert cli("--config", conf, "rm", "-f", "cfg").returncode == 0


@pytest.mark.parametrize("value, message", [
    ("nosuch", "unknown or invalid runtime name: nosuch"),
    ("relative/runc", "a runtime name or an absolute path"),
    ("/nonexistent/runc", "/nonexistent/runc"),
    ("", "invalid --runtime"),
])
@pytest.mark.parametrize("mode", ["run", "run-d", "create"])
def test_bad_runtime_is_refused_before_anything_exists(cli, value, message, mode):
    argv = {"run": ["run"], "run-d": ["run", "-d"], "create": ["create"]}[mode]
    r = cli(*argv, "--runtime", value, "--name", "bad", cli.image, "true")
    assert r.returncode == 125, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert cli("ps", "-aq").stdout == ""
    assert leftovers(cli) == [] and conmon_pids(cli) == []


def test_recovery_after_a_lost_monitor_uses_the_runtime(cli):
    """conmon and the init killed: the next command's recovery marks the container exited
    and deletes the runtime's state (its cgroup with it) through that runtime."""
    _usable("runc")
    r = cli("run", "-d", "--runtime", "runc", "--name", "rec", cli.image, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    pid = state(cli, "rec")["Pid"]
    mons = conmon_pids(cli)
    assert len(mons) == 1 and _runtime_state(cli, "runc", cid)["status"] == "running"
    os.kill(mons[0], 9)
    os.kill(pid, 9)
    wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon gone")
    # the orphaned init is reaped by whoever adopted it (this machine's init): wait for that
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30, what="the init reaped")
    assert cli("ps", "-a").returncode == 0  # its recovery pass
    s = state(cli, "rec")
    assert s["Status"] == "exited" and not s["Running"]
    assert _runtime_state(cli, "runc", cid) is None
    assert leftovers(cli) == []
    assert cli("rm", "rec").returncode == 0


def test_exec_with_stdin_and_a_terminal_under_another_runtime(cli):
    from pyrt_core.testing.terminal import Term

    _usable("runc")
    cli("run", "-d", "--runtime", "runc", "--name", "xt", cli.image, "sleep", "1000", check=True)
    r = cli("exec", "-i", "xt", "sh", "-c", "cat; echo end >&2", input="from-stdin\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "from-stdin\n", "end\n")
    # without -i nothing of ours reaches it: its stdin is empty (runc copies the container's
    # /dev/null we give it into a pipe of its own; exec -d's stdio: tests/security)
    r = cli("exec", "xt", "sh", "-c", "cat; stat -L -c '%d:%i' /proc/self/fd/0",
            input="not-for-the-container\n")
    host = os.stat("/dev/null")
    assert r.returncode == 0 and "not-for-the-container" not in r.stdout, r.stdout + r.stderr
    assert r.stdout.strip() != f"{host.st_dev}:{host.st_ino}", r.stdout
    t = Term(cli.argv("exec", "-it", "xt", "sh"), rows=40, cols=120)
    try:
        t.send(b"tty; stty size; echo ma$((0))rk\n")
        out = t.expect(b"ma0rk\r\n")
        assert b"/dev/pts/" in out and b"40 120" in out, out
        t.send(b"exit 5\n")
        assert t.wait() == 5
    finally:
        t.close()
    assert cli("exec", "-d", "xt", "sh", "-c", "sleep 1; touch /tmp/detached-ran").returncode == 0
    wait_for(lambda: cli("exec", "xt", "test", "-e", "/tmp/detached-ran").returncode == 0,
             what="the detached exec")
    assert cli("rm", "-f", "xt").returncode == 0
