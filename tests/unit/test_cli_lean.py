"""The everyday commands start lean (issue 17): ``pyrt`` is a script of its own, not
pip's console-script wrapper (which imports ``re``); ``pyrt --version``, ``ps``, ``rm``,
``stop``, ``inspect -f`` of the record's fields, ``volume ls``/``inspect`` and conmon's exit
command (``container cleanup``) import none of the modules
below; and the hand parser of those command lines (:mod:`pyrt_core.cli.quick`) gives
what argparse gives, or leaves the line to argparse."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest

from pyrt_core.cli import main as climain
from pyrt_core.cli import quick
from pyrt_core.containers.store import ContainerStore
from pyrt_core.models import Container, ContainerConfig, ContainerState

#: what the everyday commands must not import (each ~2-30 ms of start-up): argparse,
#: json and enum all bring ``re``; attrs brings typing and inspect; pluggy is for hooks
#: a plugin implements (none of these commands calls one on a stopped container)
DENIED = ("re", "enum", "json", "typing", "attr", "attrs", "pluggy", "argparse", "inspect",
          "shutil", "signal", "subprocess", "gettext", "locale")

PYRT = os.path.join(os.path.dirname(sys.executable), "pyrt")

PARSED = [
    ["ps"], ["ps", "-a"], ["ps", "-aq"],
    ["ps", "--no-trunc", "--quiet"], ["rm", "a"], ["rm", "-f", "a", "b"], ["rm", "a", "b", "-f"],
    ["rm", "-fv", "a"], ["rm", "--force", "--volumes", "a"], ["stop", "a"],
    ["stop", "-t", "5", "a"], ["stop", "a", "-t", "5"], ["stop", "-t", "5", "a", "b"],
    ["stop", "--time=3", "a"], ["stop", "-a"], ["stop"], ["wait", "a", "b"], ["start", "a"],
    ["start", "-a", "a"], ["start", "--all"], ["start", "-ai", "x"],
    ["--root", "/r", "--runroot", "/rr", "ps", "-a"], ["--root=/r", "-s", "vfs", "rm", "x"],
    ["--storage-opt", "a=b", "--storage-opt", "c=d", "--config", "/c", "ps"],
    ["--root", "/r", "--runroot", "/rr", "--storage-driver", "overlay", "container", "cleanup",
     "--run", "3", "abc"],
    ["inspect", "a"], ["inspect", "-f", "{{.State.Pid}}", "a"], ["inspect", "a", "b", "-f", "{{.Id}}"],
    ["inspect", "--format={{json .}}", "--type", "container", "a"], ["inspect", "-s", "a"],
    ["inspect", "--type=image", "--size", "-f", "", "a"], ["--root", "/r", "inspect", "-f", "x", "a"],
    ["volume", "ls"], ["volume", "list", "-q"], ["volume", "ls", "--quiet", "--format", "{{.Name}}"],
    ["--root", "/r", "volume", "ls", "--format=json"], ["volume", "inspect", "v1"],
    ["volume", "inspect", "-f", "{{.Mountpoint}}", "v1", "v2"], ["volume", "inspect", "v1", "--format", "x"],
]

REFUSED = [  # argparse's to parse or to refuse
    [], ["--help"], ["ps", "-h"], ["ps", "x"], ["ps", "--format", "yaml"],
    ["ps", "--format", "json", "-a"],
    ["ps", "--format=json"], ["ps", "--al"],
    ["rm"], ["rm", "a", "-f", "b"], ["rm", "--", "a"], ["rm", "--force=1", "a"],
    ["stop", "-t", "x", "a"], ["stop", "a", "-t", "5", "b"], ["stop", "-t"], ["stop", "-t5", "a"],
    ["ps", "--root", "/x"], ["--root", "ps"], ["--bogus", "ps"], ["-s=vfs", "ps"], ["run", "img"],
    ["kill", "a"], ["container", "cleanup", "--run", "x", "a"], ["container", "prune"],
    ["--version", "ps"], ["inspect"], ["inspect", "-f"], ["inspect", "--type", "volume", "a"],
    ["inspect", "-f", "-x", "a"], ["inspect", "-f{{.Id}}", "a"], ["inspect", "a", "-s", "b"],
    ["inspect", "--form", "x", "a"], ["inspect", "--size=1", "a"],
    ["volume"], ["volume", "-h"], ["volume", "ls", "-f", "name=x"], ["volume", "ls", "--filter", "x=y"],
    ["volume", "ls", "x"], ["volume", "inspect"], ["volume", "rm", "x"], ["volume", "create", "x"],
    ["volume", "ls", "-qf", "x"], ["volume", "--root", "/r", "ls"],
]


def _argparse(argv):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return climain.build_parser(only=climain.command_word(argv)).parse_args(argv)


@pytest.mark.parametrize("argv", PARSED, ids=" ".join)
def test_quick_parse_agrees_with_argparse(argv):
    fast = quick.parse(argv)
    assert fast is not None
    full = vars(_argparse(argv))
    full.pop("_plugin_dests", None)
    assert vars(fast) == full


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a) or "(none)")
def test_quick_parse_leaves_the_rest_to_argparse(argv):
    assert quick.parse(argv) is None


@pytest.mark.parametrize("argv", [["--version"], ["-v"], ["--root", "/r", "--version"]])
def test_version_is_answered_without_a_parser(argv):
    assert quick.is_version(argv)
    with pytest.raises(SystemExit) as e, contextlib.redirect_stdout(io.StringIO()):
        _argparse(argv)
    assert e.value.code == 0


def test_pyrt_is_not_a_generated_wrapper():
    with open(PYRT) as f:
        text = f.read()
    assert "from pyrt_core.cli.main import main" in text
    assert "import re" not in text  # pip's console-script wrapper's first import


def _record(store: ContainerStore, cid: str, status: str) -> None:
    c = Container(id=cid, name=f"lean{cid[:4]}", image_id="sha256:" + "0" * 64, image_name="img",
                  created="2026-01-01T00:00:00Z", storage_driver="vfs",
                  config=ContainerConfig(image="img", command=["true"]),
                  state=ContainerState(status=status, exit_code=0, run=1,
                                       finished_at="2026-01-01T00:00:01Z"),
                  monitor="conmon")
    store.save(c)


def _imports(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYRT_FAULT",)}
    r = subprocess.run([sys.executable, "-X", "importtime", PYRT, *argv], capture_output=True,
                       text=True, env=env)
    mods = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            mods.add(line.rsplit("|", 1)[1].strip())
    return r, mods


def test_everyday_commands_import_nothing_heavy(tmp_path):
    root, run = str(tmp_path / "root"), str(tmp_path / "run")
    store = ContainerStore(root, run)
    ids = [c * 64 for c in "abcd"]
    for cid in ids:
        _record(store, cid, "exited")
    g = ["--root", root, "--runroot", run, "--storage-driver", "vfs"]
    # the first rm records the hook plans (through pluggy, once); the others read them
    r, _ = _imports(g + ["rm", ids[3]])
    assert r.returncode == 0, r.stderr[-2000:]
    r, _ = _imports(g + ["volume", "create", "vol1"])
    assert r.returncode == 0, r.stderr[-2000:]
    lines = {
        "--version": ["--version"],
        "ps": g + ["ps"],
        "ps -a": g + ["ps", "-a"],
        "ps -q": g + ["ps", "-aq"],
        "stop": g + ["stop", ids[0]],
        "container cleanup": g + ["container", "cleanup", "--run", "1", ids[0]],
        "rm": g + ["rm", ids[0]],
        "rm -f": g + ["rm", "-f", ids[1]],
        "inspect -f": g + ["inspect", "-f", "{{.State.Pid}} {{.Name}} {{.NetworkSettings.IPAddress}} "
                           "{{json .Config}} {{index .Config.Labels \"k\"}} {{json .HostConfig}} "
                           "{{range .Mounts}}{{.Source}}{{end}}",
                           ids[2]],
        "inspect": g + ["inspect", ids[2]],
        "inspect -f {{json .}}": g + ["inspect", "-f", "{{json .}}", ids[2]],
        "volume ls": g + ["volume", "ls"],
        "volume ls -q": g + ["volume", "ls", "-q"],
        "volume inspect": g + ["volume", "inspect", "vol1"],
        "volume inspect -f": g + ["volume", "inspect", "-f", "{{.Mountpoint}}", "vol1"],
    }
    heavy = {}
    for what, argv in lines.items():
        r, mods = _imports(argv)
        assert r.returncode == 0, (what, r.stderr[-2000:])
        assert mods, f"{what}: no import report (-X importtime)"
        bad = sorted(m for m in mods if m in DENIED)
        if bad:
            heavy[what] = bad
    assert heavy == {}, f"commands that import modules they do not need: {heavy}"
    assert not os.path.exists(store.path(ids[0])) and not os.path.exists(store.path(ids[1]))
