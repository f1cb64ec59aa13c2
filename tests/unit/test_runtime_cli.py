"""pyrt-runtime pieces that need no root: parsing, the state document, the log
lines, exec's process from flags, update's resources, list, features."""
from __future__ import annotations

import datetime
import io
import json
import os
import signal

import pytest

from pyrt_core.runtime import cli, runlog
from pyrt_core.runtime.commands_exec import process_from_args
from pyrt_core.runtime.commands_query import list_
from pyrt_core.runtime.commands_resources import resources_doc, runc_stats
from pyrt_core.runtime.common import RuntimeFailure, oci_state, parse_signal
from pyrt_core.runtime.state import OCI_VERSION, RuntimeState


@pytest.fixture(autouse=True)
def _quiet_log():
    yield
    runlog.setup(None)


def test_parse_signal_forms():
    assert parse_signal("15") == parse_signal("TERM") == parse_signal("SIGTERM") == 15
    assert parse_signal("sigkill") == 9 and parse_signal(" hup ") == 1
    assert parse_signal("SIGRTMIN") == signal.SIGRTMIN
    assert parse_signal("RTMIN+2") == signal.SIGRTMIN + 2
    for bad in ("0", "65", "FOO", "SIGRTMAX+1", "RTMIN+x", "", "-9"):
        with pytest.raises(RuntimeFailure, match="invalid signal"):
            parse_signal(bad)


def test_oci_state_document():
    data = {"pid": 1234, "pid_start": None, "boot": None, "bundle": "/b", "rootfs": "/b/rootfs",
            "created": 1700000000.5, "annotations": {"a": "b"}, "started": True}
    st = oci_state("c1", data, "running")
    assert list(st) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                        "owner", "annotations"]
    assert st["ociVersion"] == OCI_VERSION and st["pid"] == 1234 and st["owner"] == ""
    assert st["created"] == "2023-11-14T22:13:20.500000000Z"
    assert oci_state("c1", data, "stopped")["pid"] == 0


def test_status_paused_and_creating():
    me = {"pid": os.getpid()}
    assert RuntimeState.status(dict(me, started=True)) == "running"
    assert RuntimeState.status(dict(me, started=True, paused=True)) == "paused"
    assert RuntimeState.status({"pid": 0}) == "creating"
    assert RuntimeState.status(None) == "stopped"


def test_unknown_id_says_does_not_exist(tmp_path, capsys):
    assert cli.main(["--root", str(tmp_path), "state", "nope"]) == 1
    err = capsys.readouterr().err
    assert err == "pyrt-runtime: container nope does not exist\n"
    assert cli.main(["--root", str(tmp_path), "delete", "--force", "nope"]) == 0
    assert cli.main(["--root", str(tmp_path), "delete", "nope"]) == 1


def test_json_log_lines(tmp_path, capsys):
    log = tmp_path / "log.json"
    args = ["--root", str(tmp_path), "--log", str(log), "--log-format", "json"]
    assert cli.main(args + ["kill", "nope", "9"]) == 1
    assert cli.main(args + ["--debug", "state", "nope"]) == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["level"] for x in lines] == ["error", "debug", "error"]
    assert lines[0]["msg"] == "container nope does not exist"
    assert set(lines[0]) == {"level", "msg", "time"}
    t = lines[0]["time"]
    assert t.endswith("Z")
    datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")


def test_text_log_and_debug_on_stderr(tmp_path, capsys):
    log = tmp_path / "log.txt"
    assert cli.main(["--root", str(tmp_path), "--log", str(log), "state", "x"]) == 1
    line = log.read_text()
    assert line.startswith('time="') and 'level=error msg="container x does not exist"' in line
    capsys.readouterr()
    assert cli.main(["--root", str(tmp_path), "--debug", "list", "-q"]) == 0
    assert "debug: pyrt-runtime" in capsys.readouterr().err


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("pyrt-runtime version ") and out[1] == f"spec: {OCI_VERSION}"


def test_systemd_cgroup_refused_before_anything(tmp_path, capsys):
    assert cli.main(["--root", str(tmp_path), "--systemd-cgroup", "create", "--bundle",
                     str(tmp_path), "x"]) == 1
    assert "--systemd-cgroup is not supported" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_rootless_values():
    p = cli.build_parser()
    assert p.parse_args(["--rootless", "false", "list"]).rootless == "false"
    assert p.parse_args(["--rootless=auto", "list"]).rootless == "auto"
    with pytest.raises(SystemExit):
        p.parse_args(["--rootless", "maybe", "list"])


def test_exec_args_parse_after_the_id():
    a = cli.build_parser().parse_args(["exec", "-t", "-e", "A=1", "--cap", "CAP_NET_ADMIN",
                                       "c1", "sh", "-c", "echo -e x"])
    assert a.id == "c1" and a.args == ["sh", "-c", "echo -e x"] and a.tty and a.env == ["A=1"]


def test_process_from_args_starts_from_the_container_process():
    base = {"args": ["init"], "env": ["PATH=/bin", "A=1"], "cwd": "/", "terminal": True,
            "consoleSize": {"height": 1, "width": 2},
            "user": {"uid": 5, "gid": 6, "additionalGids": [7]},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}}
    p = process_from_args(base, ["ls", "-l"], cwd="/tmp", env=["B=2"], user="1000",
                          caps=["net_admin"], no_new_privs=True)
    assert p["args"] == ["ls", "-l"] and p["terminal"] is False and "consoleSize" not in p
    assert p["env"] == ["PATH=/bin", "A=1", "B=2"] and p["cwd"] == "/tmp"
    assert p["user"] == {"uid": 1000, "gid": 6, "additionalGids": [7]}
    assert p["capabilities"]["bounding"] == ["CAP_KILL", "CAP_NET_ADMIN"]
    assert p["capabilities"]["ambient"] == ["CAP_NET_ADMIN"]
    assert p["noNewPrivileges"] is True
    assert base["args"] == ["init"]  # not changed
    with pytest.raises(RuntimeFailure, match="needs a command"):
        process_from_args(base, [])
    with pytest.raises(RuntimeFailure, match="--user"):
        process_from_args(base, ["x"], user="root")


def test_update_flags_over_the_resources_file():
    doc = resources_doc({"memory": {"limit": 1}, "cpu": {"shares": 2}},
                        {"memory": "64m", "pids_limit": "10", "cpu_quota": "-1",
                         "cpuset_cpus": "0-1", "cpu_period": None})
    assert doc == {"memory": {"limit": 64 << 20}, "cpu": {"shares": 2, "quota": -1, "cpus": "0-1"},
                   "pids": {"limit": 10}}
    with pytest.raises(RuntimeFailure, match="--pids-limit"):
        resources_doc({}, {"pids_limit": "many"})


def test_update_resources_file_errors(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "r.json"
    bad.write_text("[")
    assert cli.main(["--root", str(tmp_path), "update", "-r", str(bad), "c"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("42"))
    assert cli.main(["--root", str(tmp_path), "update", "-r", "-", "c"]) == 1
    assert "JSON object" in capsys.readouterr().err


def test_runc_stats_shape():
    out = runc_stats({"cpu": {"usage_ns": 5}, "memory": {"usage": 10, "limit": None},
                      "pids": {"current": 2, "limit": None},
                      "blkio": {"read_bytes": 1, "write_bytes": 2}})
    assert out == {"cpu": {"usage": {"total": 5}}, "memory": {"usage": {"usage": 10}},
                   "pids": {"current": 2},
                   "blkio": {"ioServiceBytesRecursive": [{"op": "Read", "value": 1},
                                                         {"op": "Write", "value": 2}]}}


def test_list_reads_the_state_dirs(tmp_path):
    for cid, pid in (("b", os.getpid()), ("a", 0)):
        st = RuntimeState(str(tmp_path), cid)
        os.makedirs(st.dir)
        st.save({"pid": pid, "bundle": "/x", "created": 0, "started": True})
    os.makedirs(tmp_path / "not-a-container")
    assert list_(str(tmp_path), quiet=True).split() == ["a", "b"]
    js = json.loads(list_(str(tmp_path), "json"))
    assert [(s["id"], s["status"]) for s in js] == [("a", "creating"), ("b", "running")]
    with pytest.raises(RuntimeFailure, match="invalid format"):
        list_(str(tmp_path), "xml")


def test_features_reports_what_is_installed(capsys):
    assert cli.main(["features"]) == 0
    f = json.loads(capsys.readouterr().out)
    assert f["ociVersionMax"] == OCI_VERSION
    assert f["linux"]["cgroup"]["systemd"] is False
    assert f["linux"]["apparmor"]["enabled"] is False
    # the filters are built by the namespaces plugin (libseccomp): without it, no seccomp
    from pyrt_core.testing import machine

    assert f["linux"]["seccomp"]["enabled"] is machine.has("distribution", "pyrt-namespaces")


def test_features_report_only_enabled_plugins(capsys):
    # what a plugin adds comes from its pyrt_runtime_features: a disabled one adds nothing
    from pyrt_core.testing import machine

    machine.skip_unless("distribution", "pyrt-cgroups")
    machine.skip_unless("distribution", "pyrt-namespaces")
    assert cli.main(["features"]) == 0
    linux = json.loads(capsys.readouterr().out)["linux"]
    assert linux["cgroup"]["v1"] is linux["cgroup"]["v2"] is True and linux["namespaces"]
    assert cli.main(["--disable-plugins", "cgroups", "features"]) == 0
    linux = json.loads(capsys.readouterr().out)["linux"]
    assert linux["cgroup"] == {"v1": False, "v2": False, "systemd": False, "systemdUser": False}
    assert "pid" in linux["namespaces"] and "CAP_SYS_ADMIN" in linux["capabilities"]
    assert cli.main(["--disable-plugins", "namespaces", "features"]) == 0
    linux = json.loads(capsys.readouterr().out)["linux"]
    assert linux["namespaces"] == linux["capabilities"] == []
    assert linux["seccomp"] == {"enabled": False} and linux["cgroup"]["v1"] is True


def test_lean_start_up():
    """``state`` must not load the plugin machinery or the namespaces code."""
    import subprocess
    import sys

    code = ("import sys; from pyrt_core.runtime import cli; cli.main(['--root', '/nonexistent',"
            " 'state', 'x']); print(sorted(m for m in sys.modules if m.startswith(('pluggy',"
            " 'pyrt_namespaces', 'pyrt_cgroups', 'attrs'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stdout


def test_default_device_rules_follow_a_restrictive_config():
    from pyrt_core.runtime.spec import from_spec

    base = {"root": {"path": "/r"}, "process": {"args": ["sh"]}}
    cfg = from_spec(dict(base, linux={"resources": {"devices": [
        {"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1,
                                            "minor": 3, "access": "rwm"}]}}), "c", "/b")
    def rules():
        return [(r.allow, r.type, r.major, r.minor, r.access) for r in cfg.resources.devices]

    assert rules()[0] == (False, "a", None, None, "rwm")
    assert (True, "c", 5, 2, "rwm") in rules() and (True, "c", 136, None, "rwm") in rules()
    assert (True, "c", None, None, "m") in rules()
    assert rules().count((True, "c", 1, 3, "rwm")) == 1  # present: not added again
    cfg = from_spec(base, "c", "/b")
    assert cfg.resources.devices == []  # no rules: no restriction is introduced
