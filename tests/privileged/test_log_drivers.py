"""``--log-driver json-file|k8s-file|journald|none`` and ``--log-opt max-size/max-file/tag``
(monitor.logdrivers): what each driver keeps of a real container's output, detached
(conmon) and in the foreground (the CLI), what ``pyrt logs`` reads back, and the refusals."""
import os
import time

import pytest

from pyrt_core.testing import machine
from pyrt_core.testing.lifecycle import conmon_pids, inspect, leftovers, wait_for


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _log_file(cli, cid):
    return os.path.join(cli.root, "containers", cid, "ctr.log")


def _records(path):
    with open(path, "rb") as f:
        return [line.rstrip(b"\n").split(b" ", 3) for line in f]


@pytest.mark.parametrize("driver", ["json-file", "k8s-file"])
@pytest.mark.parametrize("detach", [True, False])
def test_file_drivers_keep_the_output_in_the_k8s_file_format(cli, driver, detach):
    cmd = ["sh", "-c", "echo out; echo err >&2; printf part"]
    if detach:
        r = cli("run", "-d", "--log-driver", driver, "--name", "lg", cli.image, *cmd)
        assert r.returncode == 0, r.stderr
        assert cli("wait", "lg").stdout.strip() == "0"
    else:
        r = cli("run", "--log-driver", driver, "--name", "lg", cli.image, *cmd)
        assert (r.returncode, r.stdout, r.stderr) == (0, "out\npart", "err\n")
    c = inspect(cli, "lg")
    assert c["HostConfig"]["LogConfig"]["Type"] == driver
    recs = _records(_log_file(cli, c["Id"]))
    assert sorted((s, t, d) for _, s, t, d in recs) == [
        (b"stderr", b"F", b"err"), (b"stdout", b"F", b"out"), (b"stdout", b"P", b"part")]
    assert all(ts.endswith(b"+00:00") and b"T" in ts for ts, *_ in recs)
    r = cli("logs", "lg")
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\npart", "err\n")


@pytest.mark.parametrize("detach", [True, False])
def test_max_size_caps_the_log(cli, detach):
    # 200 lines of ~50 bytes (~12 KiB of records) into a 2 KiB log: it starts again when full
    cmd = ["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; "
           "i=$((i+1)); done"]
    flags = ["--log-opt", "max-size=2k", "--log-opt", "max-file=1", "--name", "cap"]
    if detach:
        assert cli("run", "-d", *flags, cli.image, *cmd).returncode == 0
        assert cli("wait", "cap").stdout.strip() == "0"
    else:
        r = cli("run", *flags, cli.image, *cmd)
        assert r.returncode == 0 and r.stdout.count("\n") == 200  # the terminal gets it all
    path = _log_file(cli, inspect(cli, "cap")["Id"])
    assert 0 < os.path.getsize(path) <= 2048
    out = cli("logs", "cap").stdout
    assert out.endswith("line-199-xxxxxxxxxxxxxxxxxxxxxxxx\n") and "line-0-" not in out
    assert inspect(cli, "cap")["HostConfig"]["LogConfig"]["Config"]["max-size"] == "2k"


@pytest.mark.parametrize("detach", [True, False])
def test_none_keeps_nothing_and_logs_says_so(cli, detach):
    if detach:
        assert cli("run", "-d", "--log-driver", "none", "--name", "quiet", cli.image,
                   "echo", "secret").returncode == 0
        assert cli("wait", "quiet").stdout.strip() == "0"
    else:
        r = cli("run", "--log-driver", "none", "--name", "quiet", cli.image, "echo", "secret")
        assert (r.returncode, r.stdout) == (0, "secret\n")  # the terminal still gets it
    cid = inspect(cli, "quiet")["Id"]
    path = _log_file(cli, cid)
    assert not os.path.exists(path) or b"secret" not in open(path, "rb").read()
    r = cli("logs", "quiet")
    assert r.returncode == 125 and r.stdout == ""
    assert "configured logging driver does not support reading" in r.stderr
    assert inspect(cli, "quiet")["HostConfig"]["LogConfig"]["Type"] == "none"


@machine.needs("journald")
@pytest.mark.parametrize("detach", [True, False])
def test_journald_entries_are_read_back(cli, detach):
    flags = ["--log-driver", "journald", "--log-opt", "tag=t-{{.Name}}", "--name", "jd"]
    cmd = ["sh", "-c", "echo to-journal; echo err-journal >&2"]
    if detach:
        assert cli("run", "-d", *flags, cli.image, *cmd).returncode == 0
        assert cli("wait", "jd").stdout.strip() == "0"
    else:
        assert cli("run", *flags, cli.image, *cmd).returncode == 0
    cid = inspect(cli, "jd")["Id"]
    import subprocess

    def entries():
        r = subprocess.run(["journalctl", "--no-pager", "-o", "json", f"CONTAINER_ID_FULL={cid}"],
                           capture_output=True, text=True)
        return r.stdout
    wait_for(lambda: "err-journal" in entries(), what="the journal entries")
    assert '"CONTAINER_TAG":"t-jd"' in entries().replace(" ", "")
    r = cli("logs", "jd")
    assert (r.returncode, r.stdout, r.stderr) == (0, "to-journal\n", "err-journal\n")


@machine.needs("no-journald")
@pytest.mark.parametrize("mode", [["run"], ["run", "-d"], ["create"]])
def test_journald_refused_when_it_does_not_run(cli, mode):
    r = cli(*mode, "--log-driver", "journald", "--name", "jd", cli.image, "true")
    assert r.returncode == 125, r.stdout + r.stderr
    assert "journald is not enabled on this host" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("ps", "-aq").stdout == "" and leftovers(cli) == [] and conmon_pids(cli) == []


@pytest.mark.parametrize("flags, message", [
    (["--log-driver", "syslog"], "no log driver named 'syslog' is registered"),
    (["--log-opt", "max-file=3"], "max-file greater than 1 is not supported"),
    (["--log-opt", "max-size=big"], "invalid value for --log-opt max-size"),
    (["--log-opt", "tag={{.Bad}}"], "{{.Bad}} is not one of"),
    (["--log-opt", "colour=red"], "unknown log opt 'colour' for k8s-file log driver"),
    (["--log-driver", "journald", "--log-opt", "max-size=1m"],
     "unknown log opt 'max-size' for journald log driver"),
])
@pytest.mark.parametrize("mode", [["run"], ["run", "-d"], ["create"]])
def test_bad_log_flags_are_refused_before_anything_exists(cli, flags, message, mode):
    r = cli(*mode, *flags, "--name", "bad", cli.image, "true")
    assert r.returncode == 125, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    time.sleep(0.1)
    assert cli("ps", "-aq").stdout == "" and leftovers(cli) == [] and conmon_pids(cli) == []
