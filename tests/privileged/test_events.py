"""``pyrt events`` through real containers (issue 16): the journal every pyrt process
appends to (pyrt_core.events) shows a container's life in order with the right ids --
``die`` written by conmon's exit command with no CLI running -- volumes' and networks'
events, ``--since``/``--until``, filters, formats, streaming and Ctrl-C."""
import json
import os
import signal
import subprocess
import time

import pytest

from pyrt_core.testing.lifecycle import wait_for


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _events(cli, since, *extra, fmt="{{.Type}} {{.Action}} {{.Actor.ID}}"):
    r = cli("events", "--since", str(since), "--until", "0s", "--format", fmt, *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def _journal(cli) -> list[dict]:
    try:
        with open(os.path.join(cli.root, "events", "events.log")) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def test_a_containers_life_in_order(cli):
    since = f"{time.time():.6f}"
    cid = cli("run", "-d", "--network", "none", "--name", "evweb", "-l", "team=a", cli.image,
              "sleep", "300", check=True).stdout.strip()
    cli("exec", "evweb", "true", check=True)
    cli("pause", "evweb", check=True)
    cli("unpause", "evweb", check=True)
    cli("rename", "evweb", "evweb2", check=True)
    cli("stop", "-t", "1", "evweb2", check=True)
    cli("restart", "-t", "1", "evweb2", check=True)
    cli("kill", "-s", "KILL", "evweb2", check=True)
    wait_for(lambda: cli("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "exited",
             what="the killed container's exit recorded")
    cli("rm", "evweb2", check=True)
    got = _events(cli, since, "--filter", f"container={cid[:12]}",
                  fmt="{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} "
                      "{{.Actor.Attributes.exitCode}}{{.Actor.Attributes.signal}}")
    actions = [line.split()[0] for line in got]
    # stop: SIGTERM, which sleep as PID 1 ignores, then SIGKILL after -t 1 (as docker);
    # restart of the stopped container: start, restart; kill: the monitor records the die
    assert actions == ["create", "start", "exec_create:", "exec_start:", "exec_die", "pause",
                       "unpause", "rename", "kill", "kill", "die", "stop", "start", "restart",
                       "kill", "die", "destroy"], got
    # the full id (after the exec actions' command, "exec_create: true")
    assert all(line.split()[2 if line.startswith("exec_") and ":" in line.split()[0] else 1]
               == cid for line in got), got
    assert got[2].startswith("exec_create: true ") and got[4].endswith(" 0<no value>")
    assert got[7] == f"rename {cid} evweb2 <no value><no value>"  # the new name from here on
    assert got[8].endswith(" evweb2 <no value>15") and got[9].endswith(" <no value>9")
    assert got[10].endswith(" 137<no value>") and got[14].endswith(" <no value>9")
    assert got[15].endswith(" 137<no value>")
    # docker's default line: time, type, action, id, (attributes sorted)
    r = cli("events", "--since", since, "--until", "0s", "--filter", "event=create",
            "--filter", f"container={cid}", check=True)
    line = r.stdout.strip()
    assert line.count("\n") == 0 and " container create " + cid in line, line
    assert line.endswith(f"(image={cli.image}, name=evweb, team=a)"), line
    assert line[4] == "-" and line[10] == "T" and line[19] == "." and line[29] in "Z+-", line
    # json: docker's message, one per line
    docs = [json.loads(x) for x in _events(cli, since, "--filter", f"container={cid}",
                                           "--filter", "event=die", fmt="json")]
    assert [d["Actor"]["Attributes"]["exitCode"] for d in docs] == ["137", "137"]
    assert all(d["Type"] == "container" and d["id"] == cid and d["from"] == cli.image
               and d["scope"] == "local" and d["time"] == d["timeNano"] // 10**9 for d in docs)
    # --until in the past ends at once; a label filter; --since after everything: nothing
    assert _events(cli, since, "--filter", "label=team=b") == []
    assert len(_events(cli, since, "--filter", "label=team=a", "--filter", "event=start")) == 2
    assert len(_events(cli, since, "--filter", "event=exec_start")) == 1  # docker's prefix match
    assert _events(cli, f"{time.time() + 5:.3f}") == []


def test_die_comes_from_the_monitor_with_no_cli_running(cli):
    """The container exits on its own: conmon's exit command (``pyrt container cleanup``)
    records the exit and journals ``die`` with its code; nothing else runs pyrt."""
    cid = cli("run", "-d", "--network", "none", cli.image, "sh", "-c", "sleep 0.3; exit 7",
              check=True).stdout.strip()

    def die():
        return [e for e in _journal(cli) if e["Action"] == "die" and e["Actor"]["ID"] == cid]

    got = wait_for(die, timeout=20, what="the die event from conmon's exit command")
    assert got[0]["Actor"]["Attributes"]["exitCode"] == "7"
    cli("rm", cid, check=True)


def test_rm_of_a_run_rm_container_and_the_image_filter(cli):
    since = f"{time.time():.6f}"
    r = cli("run", "--rm", "--network", "none", "--name", "evrm", cli.image, "sh", "-c", "exit 4")
    assert r.returncode == 4
    got = _events(cli, since, "--filter", f"image={cli.image}",
                  fmt="{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")
    # docker's order for a foreground run: the client attaches before the start
    assert got == ["create evrm <no value>", "attach evrm <no value>", "start evrm <no value>",
                   "die evrm 4", "destroy evrm <no value>"]
    assert _events(cli, since, "--filter", "image=other/image") == []


def test_streaming_follows_the_journal_until_ctrl_c(cli):
    p = subprocess.Popen(cli.argv("events", "--filter", "type=container", "--format",
                                  "{{.Action}} {{.Actor.Attributes.name}}"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # it starts at the end of the journal: only what happens from now
        cli("run", "--rm", "--network", "none", "--name", "evstream", cli.image, "true",
            check=True)
        lines = []
        deadline = time.monotonic() + 20
        while "destroy evstream" not in lines and time.monotonic() < deadline:
            lines.append(p.stdout.readline().strip())
        assert lines == ["create evstream", "attach evstream", "start evstream",
                         "die evstream", "destroy evstream"], lines
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    assert p.returncode == 0 and err == "", (p.returncode, err)


def test_until_in_the_future_ends_the_stream(cli):
    # (a duration counts back from now, as docker's: "--until 1s" is a second ago; a
    # future end is a time)
    t = time.monotonic()
    r = cli("events", "--until", f"{time.time() + 1.5:.3f}", "--filter", "type=volume")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert 1.2 < time.monotonic() - t < 10
    t = time.monotonic()
    r = cli("events", "--until", "1s", "--filter", "type=volume")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert time.monotonic() - t < 5  # in the past: the replay, no streaming


def test_volume_events(cli):
    since = f"{time.time():.6f}"
    cli("volume", "create", "evvol", check=True)
    cli("run", "--network", "none", "-v", "evvol:/data", cli.image, "true", check=True)
    cid = cli("ps", "-aq", "--no-trunc", check=True).stdout.split()[0]
    cli("rm", cid, check=True)
    cli("volume", "rm", "evvol", check=True)
    got = _events(cli, since, "--filter", "type=volume",
                  fmt="{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}} "
                      "{{.Actor.Attributes.container}} {{.Actor.Attributes.destination}}")
    assert got == ["create evvol local <no value> <no value>",
                   f"mount evvol local {cid} /data", f"unmount evvol local {cid} <no value>",
                   "destroy evvol local <no value> <no value>"], got
    assert _events(cli, since, "--filter", "volume=evvol", fmt="{{.Action}}") == [
        "create", "mount", "unmount", "destroy"]
    assert _events(cli, since, "--filter", "volume=other") == []


def test_image_events(cli):
    since = f"{time.time():.6f}"
    iid = cli("inspect", "-f", "{{.Id}}", cli.image, check=True).stdout.strip()
    cli("tag", cli.image, "evtest/busy:1", check=True)
    cli("rmi", "evtest/busy:1", check=True)
    got = _events(cli, since, "--filter", "type=image",
                  fmt="{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    assert got == [f"tag {iid} docker.io/evtest/busy:1", f"untag {iid} docker.io/evtest/busy:1"] \
        or got == [f"tag {iid} evtest/busy:1", f"untag {iid} evtest/busy:1"], got


@pytest.mark.parametrize("argv, message", [
    (("--since", "yesterday"), "Error: failed to parse value as time or duration: 'yesterday'\n"),
    (("--until", "2026-13-45T00:00:00Z"),
     "Error: failed to parse value as time or duration: '2026-13-45T00:00:00Z'\n"),
    (("--filter", "colour=red"), "Error: invalid filter 'colour'\n"),
    (("--filter", "type"), "Error: bad format of filter (expected name=value): type\n"),
    (("--filter", "type=box"), "Error: invalid filter 'type=box'\n"),
    (("--format", "{{.Type"), None),
])
def test_bad_values_are_one_line_and_125(cli, argv, message):
    journal = _journal(cli)
    r = cli("events", *argv, timeout=10)
    assert r.returncode == 125 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: "), r.stderr
    if message:
        assert r.stderr == message
    assert _journal(cli) == journal


def test_health_status_events_when_the_status_changes(cli):
    """docker's ``health_status: STATUS`` at each change of the status (not at each check),
    matched by ``--filter event=health_status`` (docker's prefix match)."""
    since = f"{time.time():.6f}"
    cid = cli("run", "-d", "--network", "none", "--name", "evhealth", "--health-cmd",
              "test -e /tmp/up", "--health-interval", "1s", "--health-retries", "1",
              "--health-start-period", "60s", cli.image, "sleep", "300", check=True).stdout.strip()

    def status():
        return cli("inspect", "-f", "{{.State.Health.Status}}", cid).stdout.strip()

    cli("exec", cid, "touch", "/tmp/up", check=True)
    wait_for(lambda: status() == "healthy", timeout=20, what="healthy")
    time.sleep(1.5)  # more checks pass: no more events
    cli("exec", cid, "rm", "/tmp/up", check=True)
    wait_for(lambda: status() == "unhealthy", timeout=20, what="unhealthy")
    got = _events(cli, since, "--filter", "event=health_status", "--filter", f"container={cid}",
                  fmt="{{.Action}}")
    assert got == ["health_status: healthy", "health_status: unhealthy"], got
    cli("rm", "-f", cid, check=True)
