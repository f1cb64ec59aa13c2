"""Health checks end to end (docs/lifecycle.md, "Health checks"): docker's flags and the
image's HEALTHCHECK, the per-run runner (started with the container, ended by its
cleanup, restarted by recovery), State.Health in inspect, ps's STATUS and
``--filter health=``, ``pyrt healthcheck run``, each proven in a real container with short
intervals; bad durations are one line, exit 125 and nothing created."""
from __future__ import annotations

import os
import signal

import pytest

from pyrt_core.testing.imagebuilder import dir_layer_tar, write_oci_layout
from pyrt_core.testing.lifecycle import inspect, leftovers, store_pids, wait_for

SLEEP = ["sh", "-c", "sleep 1000"]


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def runners(cli) -> list[int]:
    """Health check runners of this store (their command line names its run root)."""
    return store_pids(cli, lambda argv: any(a.endswith(b"health/runner.py") for a in argv))


def health(cli, ref) -> dict | None:
    return inspect(cli, ref)["State"].get("Health")


def status_of(cli, ref) -> str | None:
    h = health(cli, ref)
    return h and h["Status"]


def ps_status(cli, name) -> str:
    r = cli("ps", "--format", "{{.Names}}|{{.Status}}", check=True)
    for line in r.stdout.splitlines():
        n, _, s = line.partition("|")
        if n == name:
            return s
    return ""


def filtered(cli, value) -> list[str]:
    return cli("ps", "-a", "--filter", f"health={value}", "--format", "{{.Names}}",
               check=True).stdout.split()


def test_starting_healthy_unhealthy_and_stop(cli):
    r = cli("run", "-d", "--name", "web", "--health-cmd", "cat /tmp/ready",
            "--health-interval", "1s", "--health-retries", "2", cli.image,
            "sh", "-c", "sleep 2; echo ok > /tmp/ready; sleep 1000")
    assert r.returncode == 0, r.stderr
    c = inspect(cli, "web")
    assert c["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "cat /tmp/ready"],
                                          "Interval": 1_000_000_000, "Retries": 2}
    assert c["State"]["Health"]["Status"] == "starting"
    assert "(health: starting)" in ps_status(cli, "web")
    assert filtered(cli, "starting") == ["web"] and filtered(cli, "healthy") == []
    assert len(runners(cli)) == 1
    wait_for(lambda: status_of(cli, "web") == "healthy", timeout=15, what="healthy")
    h = health(cli, "web")
    assert h["FailingStreak"] == 0
    last = h["Log"][-1]
    assert (last["ExitCode"], last["Output"]) == (0, "ok\n")
    assert last["Start"] <= last["End"] and last["End"].endswith("Z")
    assert ps_status(cli, "web").startswith("Up ") and ps_status(cli, "web").endswith("(healthy)")
    assert filtered(cli, "healthy") == ["web"] and filtered(cli, "none") == []
    assert cli("healthcheck", "run", "web").returncode == 0
    # the check starts failing: unhealthy after 2 failures in a row
    cli("exec", "web", "rm", "/tmp/ready", check=True)
    wait_for(lambda: status_of(cli, "web") == "unhealthy", timeout=15, what="unhealthy")
    h = health(cli, "web")
    assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
    assert "No such file" in h["Log"][-1]["Output"]
    assert len(h["Log"]) <= 5
    assert ps_status(cli, "web").endswith("(unhealthy)")
    assert filtered(cli, "unhealthy") == ["web"]
    r = cli("healthcheck", "run", "web")
    assert (r.returncode, r.stdout) == (1, "unhealthy\n")
    # a stop ends the runner (nothing left: the leak guard checks the processes too)
    assert cli("stop", "-t", "1", "web").returncode == 0
    assert runners(cli) == [] and leftovers(cli) == []
    assert status_of(cli, "web") == "unhealthy"
    assert cli("healthcheck", "run", "web").returncode == 125
    # a new start is "starting" again, with the log kept
    assert cli("start", "web").returncode == 0
    h = health(cli, "web")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0 and h["Log"]
    assert len(runners(cli)) == 1
    assert cli("rm", "-f", "web").returncode == 0
    assert runners(cli) == []


def test_timeout_kills_the_hanging_check(cli):
    cli("run", "-d", "--name", "hang", "--health-cmd", "sleep 77", "--health-timeout", "1s",
        "--health-interval", "1s", "--health-retries", "1", cli.image, *SLEEP, check=True)
    wait_for(lambda: status_of(cli, "hang") == "unhealthy", timeout=20, what="unhealthy")
    last = health(cli, "hang")["Log"][-1]
    assert (last["ExitCode"], last["Output"]) == (-1, "Health check exceeded timeout (1s)")
    # the check's processes are gone from the container: only the init's shell and its
    # sleep are left (a check may just have started again: allow its exec a moment)
    pid = inspect(cli, "hang")["State"]["Pid"]
    ns = os.readlink(f"/proc/{pid}/ns/pid")

    def hanging():
        out = []
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and os.readlink(f"/proc/{p}/ns/pid") == ns:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        out.append(f.read())
            except OSError:
                pass
        return [a for a in out if b"77" in a]

    # between two checks (each runs 1 s at most, then 1 s of interval) none is left
    wait_for(lambda: hanging() == [], timeout=5, what="no hanging check")
    s, e = last["Start"], last["End"]
    assert s[:19] <= e[:19]


def test_start_period_failures_not_counted(cli):
    cli("run", "-d", "--name", "slow", "--health-cmd", "false", "--health-interval", "1s",
        "--health-start-period", "4s", "--health-start-interval", "300ms",
        "--health-retries", "1", cli.image, *SLEEP, check=True)
    # within the start period: failures are logged, not counted (start interval 300 ms)
    wait_for(lambda: len((health(cli, "slow") or {}).get("Log") or []) >= 3, timeout=3.5,
             what="three checks in the start period")
    h = health(cli, "slow")
    started = inspect(cli, "slow")["State"]["StartedAt"]
    assert h["Status"] == "starting" and h["FailingStreak"] == 0, (h, started)
    assert all(e["ExitCode"] == 1 for e in h["Log"])
    wait_for(lambda: status_of(cli, "slow") == "unhealthy", timeout=10, what="unhealthy")
    assert health(cli, "slow")["FailingStreak"] >= 1


def _image_with_healthcheck(cli, tmp_path, healthcheck) -> str:
    from pyrt_core.testing.fixtures import make_busybox_rootfs

    rootfs = make_busybox_rootfs(str(tmp_path / "rootfs-hc"))
    layout = str(tmp_path / "layout-hc")
    write_oci_layout(layout, [dir_layer_tar(rootfs)],
                     config={"config": {"Cmd": ["sh", "-c", "sleep 1000"],
                                        "Env": ["PATH=/usr/bin:/bin"],
                                        "Healthcheck": healthcheck}})
    iid = cli("load", "-q", "-i", layout, check=True).stdout.split()[-1]
    cli("tag", iid, "test/hc:latest", check=True)
    return "test/hc"


def test_image_healthcheck_merge_and_no_healthcheck(cli, tmp_path):
    image = _image_with_healthcheck(cli, tmp_path, {
        "Test": ["CMD", "sh", "-c", "echo from-image"], "Interval": 1_000_000_000,
        "Retries": 2})
    cli("run", "-d", "--name", "img", image, check=True)
    assert inspect(cli, "img")["Config"]["Healthcheck"] == {
        "Test": ["CMD", "sh", "-c", "echo from-image"], "Interval": 1_000_000_000, "Retries": 2}
    wait_for(lambda: status_of(cli, "img") == "healthy", timeout=15, what="healthy")
    assert health(cli, "img")["Log"][-1]["Output"] == "from-image\n"
    # a flag overrides one field; the image's test and the rest stay (moby's merge)
    cli("create", "--name", "merged", "--health-interval", "2s", image, check=True)
    assert inspect(cli, "merged")["Config"]["Healthcheck"] == {
        "Test": ["CMD", "sh", "-c", "echo from-image"], "Interval": 2_000_000_000, "Retries": 2}
    # --no-healthcheck turns the image's off: no State.Health, no runner, health=none
    cli("run", "-d", "--name", "off", "--no-healthcheck", image, check=True)
    c = inspect(cli, "off")
    assert c["Config"]["Healthcheck"]["Test"] == ["NONE"]  # (moby merges the rest too)
    assert "Health" not in c["State"]
    assert ps_status(cli, "off").startswith("Up") and "health" not in ps_status(cli, "off")
    assert "off" in filtered(cli, "none") and "img" not in filtered(cli, "none")
    assert len(runners(cli)) == 1  # img's only
    r = cli("healthcheck", "run", "off")
    assert r.returncode == 125 and "no defined healthcheck" in r.stderr


def test_runner_killed_is_restarted_by_recovery(cli):
    cli("run", "-d", "--name", "kr", "--health-cmd", "echo x", "--health-interval", "500ms",
        cli.image, *SLEEP, check=True)
    wait_for(lambda: len(runners(cli)) == 1, timeout=5, what="the runner")
    (old,) = runners(cli)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: runners(cli) == [], timeout=5, what="the runner gone")
    r = cli("ps")
    assert r.returncode == 0
    assert "restarted the health check runner" in r.stderr
    wait_for(lambda: len(runners(cli)) == 1, timeout=5, what="a new runner")

    def last_end():
        log = health(cli, "kr")["Log"]
        return log[-1]["End"] if log else ""

    before = last_end()
    wait_for(lambda: last_end() > before, timeout=10, what="checks again")
    assert cli("ps").stderr == ""  # a live runner: nothing to do
    assert cli("rm", "-f", "kr").returncode == 0
    assert runners(cli) == []


def test_foreground_run_gets_checks(cli):
    r = cli("run", "--name", "fg", "--health-cmd", "echo fg-ok", "--health-interval", "300ms",
            cli.image, "sleep", "3")
    assert r.returncode == 0, r.stderr
    h = health(cli, "fg")
    assert h["Log"] and h["Log"][-1]["Output"] == "fg-ok\n"
    assert h["Status"] == "unhealthy"  # moby: the end of the run (the monitor stopped)
    assert runners(cli) == []


@pytest.mark.parametrize("flags,words", [
    (["--health-interval", "30"], ['invalid argument "30" for "--health-interval" flag',
                                   "missing unit"]),
    (["--health-timeout", "1x"], ['unknown unit "x"']),
    (["--health-start-period=-1s"], ["--health-start-period cannot be negative"]),
    (["--health-interval", "10us"], ["--health-interval cannot be less than 1ms"]),
    (["--health-retries", "two"], ['invalid argument "two" for "--health-retries" flag']),
    (["--health-retries", "-1"], ["--health-retries cannot be negative"]),
    (["--no-healthcheck", "--health-cmd", "true"], ["--no-healthcheck conflicts with --health-* options"]),
])
@pytest.mark.parametrize("command", [["run", "-d"], ["create"]])
def test_bad_health_flags(cli, command, flags, words):
    r = cli(*command, "--name", "bad", *flags, cli.image, "true")
    assert r.returncode == 125, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert cli("ps", "-aq").stdout == "" and leftovers(cli) == [] and runners(cli) == []
