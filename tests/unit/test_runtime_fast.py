"""The runtime's lean hot paths (issue 8's benchmark): the hand parser of the hot
commands agrees with argparse, the lean JSON is :mod:`json`'s, the hot commands
import neither argparse, json, attrs nor pluggy, and delete releases through the
lean hook caller."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pyrt_core import jsonlean
from pyrt_core.runtime import cli, lifecycle
from pyrt_core.runtime.state import RuntimeState

PARSED = [
    ["state", "c1"],
    ["--root", "/r", "start", "c1"],
    ["--root=/r", "--log", "/l", "--log-format", "json", "--debug", "delete", "--force", "c1"],
    ["delete", "c1", "-f"],
    ["--disable-plugins", "cgroups", "kill", "c1"],
    ["kill", "--all", "c1", "KILL"],
    ["kill", "c1", "9", "-a"],
    ["--systemd-cgroup", "create", "--bundle", "/b", "--pid-file=/p", "--console-socket", "/s",
     "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "c1"],
    ["create", "-b", "/b", "c1"],
    ["create", "c1", "--bundle", "/b"],
    ["--criu", "x", "state", "-"],
]

REFUSED = [  # left to argparse: its parse or its message
    [], ["--help"], ["state"], ["state", "a", "b"], ["state", "--help", "c1"],
    ["--log-format", "xml", "state", "c1"], ["--root"], ["--rootless", "true", "state", "c1"],
    ["--version"], ["list"], ["exec", "c1", "true"], ["delete", "--forc", "c1"],
    ["kill", "c1", "-9"], ["kill", "c1", "TERM", "x"], ["create", "--preserve-fds", "x", "c1"],
    ["create", "-b=/b", "c1"], ["create", "--bundle"], ["--bogus", "state", "c1"],
    ["state", "--", "c1"],
]


@pytest.mark.parametrize("argv", PARSED, ids=" ".join)
def test_fast_parse_agrees_with_argparse(argv):
    fast = cli._fast_parse(argv)
    full = cli.build_parser().parse_args(argv)
    assert fast is not None
    for k, v in vars(fast).items():
        assert getattr(full, k) == v, k
    assert {k for k in vars(full) if not k.startswith("_")} <= set(vars(fast)) | {"rootless"}


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a) or "(none)")
def test_fast_parse_leaves_the_rest_to_argparse(argv):
    assert cli._fast_parse(argv) is None


def test_fast_parse_root_from_the_environment(monkeypatch):
    monkeypatch.setenv("PYRT_RUNTIME_ROOT", "/elsewhere")
    assert cli._fast_parse(["state", "c1"]).root == "/elsewhere"


def test_lifecycle_functions_still_reachable_from_cli():
    assert cli.create is lifecycle.create and cli.delete is lifecycle.delete
    assert cli.start is lifecycle.start and cli.state is lifecycle.state
    with pytest.raises(AttributeError):
        cli.nothing_here  # noqa: B018


DOCS = [{"a": [1, 2.5, None, True, {}], "b": "é\"\n\t\u2028", "c": {"x": {"y": []}}, "d": -3},
        [], {}, "x", 1.0, 0, False, {"k": [1, [2, [3]]]}, {1: "a", True: "b", None: "c"},
        {"annotations": {"org.opencontainers.image.title": "ünï"}, "pid": 12}]


@pytest.mark.parametrize("doc", DOCS, ids=repr)
def test_jsonlean_is_json(doc):
    assert jsonlean.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    for indent in (1, 2, 4):
        assert jsonlean.dumps_indented(doc, indent) == json.dumps(doc, indent=indent)
        assert jsonlean.dumps_indented(doc, indent, ensure_ascii=False) == \
            json.dumps(doc, indent=indent, ensure_ascii=False)
    text = json.dumps(doc, indent=1)
    assert jsonlean.loads(text) == json.loads(text)
    assert jsonlean.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("bad", ["", "  ", "{", "{} x", "nul", "[1,]", '"\x01"', "{'a': 1}"])
def test_jsonlean_refuses_what_json_refuses(bad):
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        jsonlean.loads(bad)


def test_jsonlean_refuses_what_json_cannot_encode():
    with pytest.raises(TypeError):
        jsonlean.dumps({"a": {1, 2}})


def test_state_record_round_trip(tmp_path):
    st = RuntimeState(str(tmp_path), "c1")
    os.mkdir(st.dir)
    data = {"id": "c1", "pid": 5, "annotations": {"a": "ü"}, "hooks": {}, "created": 1.5}
    st.save(data)
    assert st.load() == data and json.load(open(st.path)) == data
    assert os.listdir(st.dir) == ["state.json"]  # no temporary file left
    with open(st.path, "w") as f:
        f.write("{broken")
    assert st.load() is None
    os.mkfifo(os.path.join(st.dir, "exec.fifo"))
    os.mkdir(os.path.join(st.dir, "sub"))  # not flat: shutil takes it
    st.remove()
    assert not os.path.exists(st.dir)
    st.remove()  # gone already: no error


@pytest.mark.parametrize("command", ["state", "start", "delete", "kill"])
def test_hot_commands_import_nothing_heavy(tmp_path, command):
    """An engine runs start, state and delete for every container: none of them may
    import argparse, json (re), attrs or pluggy (each ~5-25 ms of start-up)."""
    code = ("import sys\nfrom pyrt_core.runtime import cli\n"
            f"code = cli.main(['--root', {str(tmp_path)!r}, {command!r}, 'nope'])\n"
            "heavy = [m for m in ('argparse', 'json', 're', 'attrs', 'pluggy', 'shutil', "
            "'importlib.metadata') if m in sys.modules]\n"
            "print(code, heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "1 []", r.stdout + r.stderr
    assert "container nope does not exist" in r.stderr


def test_delete_releases_through_the_hook_and_skips_it_for_none(tmp_path, monkeypatch):
    released = []

    class Hook:
        def pyrt_resources_release(self, container_id, record):
            released.append((container_id, record))

    class PM:
        hook = Hook()

    monkeypatch.setattr(lifecycle, "plugin_manager", lambda disabled=None: PM())
    monkeypatch.delenv("PYRT_DISABLE_PLUGINS", raising=False)
    st = RuntimeState(str(tmp_path), "c1")
    os.mkdir(st.dir)
    record = {"manager": "cgroupfs-v1", "path": "/x"}
    st.save({"id": "c1", "pid": 0, "resources": record})
    lifecycle.delete(str(tmp_path), "c1")
    assert released == [("c1", record)] and not os.path.exists(st.dir)
    # the core's "none" manager: no plugin manager, nothing to call
    monkeypatch.setattr(lifecycle, "plugin_manager",
                        lambda disabled=None: pytest.fail("the plugin manager was built"))
    os.mkdir(st.dir)
    st.save({"id": "c1", "pid": 0, "resources": {"manager": "none"}})
    lifecycle.delete(str(tmp_path), "c1")
    assert len(released) == 1 and not os.path.exists(st.dir)


def test_start_calls_the_isolation_plugin_create_found(tmp_path, monkeypatch):
    """start calls pyrt_isolation_start from the plan create kept in the state (the plugin
    that made the container starts it); a record without one (an older pyrt's) goes
    through the plugin manager; nobody starting it is an error."""
    import types

    from pyrt_core import hookspecs, procutil

    started = []

    @hookspecs.hookimpl
    def pyrt_isolation_start(container_id, fifo, status_fifo):
        started.append((container_id, os.path.basename(fifo), os.path.basename(status_fifo)))
        return True

    mod = types.ModuleType("rtf_isolation")
    mod.pyrt_isolation_start = pyrt_isolation_start
    monkeypatch.setitem(sys.modules, "rtf_isolation", mod)
    plan = {"firstresult": True,
            "impls": [["rtf_isolation", "pyrt_isolation_start", ["container_id", "fifo",
                                                                 "status_fifo"]]]}
    ident = procutil.identity(os.getpid())  # a live "init": the container is "created"

    def created(**extra):
        st = RuntimeState(str(tmp_path), "c1")
        os.makedirs(st.dir, exist_ok=True)
        st.save({"id": "c1", "pid": os.getpid(), "pid_start": ident["start"],
                 "boot": ident["boot"], "started": False, **extra})
        return st

    monkeypatch.setattr(lifecycle, "plugin_manager",
                        lambda disabled=None: pytest.fail("the plugin manager was built"))
    st = created(calls={"pyrt_isolation_start": plan})
    lifecycle.start(str(tmp_path), "c1")
    assert started == [("c1", "exec.fifo", "exec.status")] and st.load()["started"] is True

    class PM:
        hook = types.SimpleNamespace(pyrt_isolation_start=pyrt_isolation_start)

    monkeypatch.setattr(lifecycle, "plugin_manager", lambda disabled=None: PM())
    created(started=False)  # no "calls": an older pyrt's record
    lifecycle.start(str(tmp_path), "c1")
    assert len(started) == 2
    created(calls={"pyrt_isolation_start": {"firstresult": True, "impls": []}})
    with pytest.raises(lifecycle.RuntimeFailure, match="no isolation plugin starts it"):
        lifecycle.start(str(tmp_path), "c1")


def test_jsonlean_refuses_malformed_documents_without_json_imported():
    # _json raises its decode error only when json.decoder is imported: without it,
    # loads must still give a ValueError with json's message, not a SystemError
    code = ("import sys\nfrom pyrt_core.jsonlean import loads\n"
            "for bad in ('{not json', '[1,2', '\"abc'):\n"
            "    try:\n        loads(bad)\n    except ValueError as e:\n"
            "        print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all(x.startswith("JSONDecodeError ") for x in lines), r.stdout
    assert "line 1 column 2" in lines[0]
