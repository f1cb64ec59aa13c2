"""``run -a/--attach``, ``--sig-proxy``, ``--detach-keys`` (run, start, attach, exec):
docker's meanings, proven on real containers, the terminal ones through a pty the test
holds (pyrt_core.testing.terminal)."""
import signal
import subprocess
import time

import pytest

from pyrt_core.testing.lifecycle import conmon_pids, leftovers, state, wait_for
from pyrt_core.testing.terminal import Term

TRAP = 'trap "echo got-term; exit 7" TERM INT; echo ready; sleep 1000 & wait'


@pytest.fixture
def cli(detached_cli):
    return detached_cli


@pytest.mark.parametrize("streams, out, err", [
    (["stdout"], "out\n", ""), (["stderr"], "", "err\n"), (["stdout", "STDERR"], "out\n", "err\n"),
])
def test_attach_only_the_named_streams(cli, streams, out, err):
    flags = [x for s in streams for x in ("-a", s)]
    r = cli("run", *flags, "--name", "att", cli.image, "sh", "-c", "echo out; echo err >&2")
    assert (r.returncode, r.stdout, r.stderr) == (0, out, err)
    lg = cli("logs", "att")  # what is not attached is still logged
    assert (lg.stdout, lg.stderr) == ("out\n", "err\n")


def test_attach_stdin_only_with_interactive(cli):
    r = cli("run", "--rm", "-i", "-a", "stdin", "-a", "stdout", cli.image, "sh", "-c",
            "read x; echo got-$x; echo err >&2", input="hello\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "got-hello\n", "")
    r = cli("run", "--rm", "-i", "-a", "stdout", cli.image, "sh", "-c", "cat; echo end",
            input="not-attached\n")
    assert (r.returncode, r.stdout) == (0, "end\n")  # stdin not attached: the container's is empty


@pytest.mark.parametrize("flags, message", [
    (["-d", "-a", "stdout"], "Conflicting options: -a and -d"),
    (["-a", "stdsomething"], "valid streams are STDIN, STDOUT and STDERR"),
    (["--sig-proxy=maybe"], "expected true or false"),
    (["--detach-keys", "ctrl-1"], "invalid detach keys"),
    (["--detach-keys", "ctrl-p,,q"], "invalid detach keys"),
])
def test_bad_attach_flags_are_refused_before_anything_exists(cli, flags, message):
    r = cli("run", *flags, "--name", "bad", cli.image, "true")
    assert r.returncode == 125, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert cli("ps", "-aq").stdout == "" and leftovers(cli) == [] and conmon_pids(cli) == []


def _start_run(cli, *flags):
    p = subprocess.Popen(cli.argv("run", *flags, "--name", "sp", cli.image, "sh", "-c", TRAP),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    return p


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("flags", [[], ["--sig-proxy"], ["--sig-proxy=true"],
                                   ["--detach-keys", "ctrl-a,d"]])  # the last: through conmon
def test_sig_proxy_passes_signals_on(cli, sig, flags):
    p = _start_run(cli, *flags)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 7 and out == "got-term\n"
    assert state(cli, "sp")["ExitCode"] == 7


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sig_proxy_false_keeps_the_container_running(cli, sig):
    p = _start_run(cli, "--sig-proxy=false")
    p.send_signal(sig)
    p.communicate(timeout=20)
    assert p.returncode != 0 and p.returncode != 7  # the CLI ended, not the container
    time.sleep(0.3)
    s = state(cli, "sp")
    assert s["Running"] and s["Status"] == "running"
    assert "got-term" not in cli("logs", "sp").stdout
    assert cli("stop", "sp").returncode == 0
    assert state(cli, "sp")["ExitCode"] == 7  # its trap ran for stop's SIGTERM only


def test_detach_keys_on_run_and_attach(cli):
    import time

    since = f"{time.time():.6f}"
    t = Term(cli.argv("run", "-it", "--detach-keys", "ctrl-a,d", "--name", "dk", cli.image, "sh"))
    try:
        t.send(b"echo one-$((1))\n")
        t.expect(b"one-1")
        t.send(b"\x10\x11echo two-$((2))\n")  # docker's default keys are not these: passed on
        t.expect(b"two-2")
        t.send(b"\x01d")
        assert t.wait() == 0
    finally:
        t.close()
    assert state(cli, "dk")["Running"]
    t = Term(cli.argv("attach", "--detach-keys", "ctrl-x", "dk"))
    try:
        t.send(b"echo three-$((3))\n")
        t.expect(b"three-3")
        t.send(b"\x18")
        assert t.wait() == 0
    finally:
        t.close()
    assert state(cli, "dk")["Running"]
    t = Term(cli.argv("start", "-ai", "--detach-keys", "ctrl-e,e", "dk"))
    try:
        t.send(b"echo four-$((4))\n")
        t.expect(b"four-4")
        t.send(b"\x05e")
        assert t.wait() == 0
    finally:
        t.close()
    assert state(cli, "dk")["Running"]
    # docker's events: each client's attach, and its detach by the keys
    r = cli("events", "--since", since, "--until", "0s", "--filter", "container=dk",
            "--format", "{{.Action}}", check=True)
    assert r.stdout.split() == ["create", "attach", "start", "detach", "attach", "detach",
                                "attach", "detach"], r.stdout
    assert cli("rm", "-f", "dk").returncode == 0


@pytest.mark.parametrize("argv", [["start", "-a", "--detach-keys", "ctrl-1", "box"],
                                  ["attach", "--detach-keys", "ctrl-1", "box"],
                                  ["exec", "--detach-keys", "ctrl-1", "box", "true"],
                                  ["exec", "-it", "--detach-keys", "ctrl-a", "box", "true"]])
def test_bad_or_unsupported_detach_keys_on_start_attach_exec(cli, argv):
    cli("run", "-d", "--name", "box", cli.image, "sleep", "1000", check=True)
    r = cli(*argv)
    assert r.returncode == 125, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "detach" in r.stderr
    wait_for(lambda: state(cli, "box")["Running"], what="box still running")
