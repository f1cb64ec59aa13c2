"""The lifecycle commands start lean on a real container (issue 17): ``run --rm``,
``run -d``, ``stop`` and ``rm`` import none of the modules below, in the CLI or in the
container's process before it executes the command (an audit hook logs every module
imported for the first time, by the CLI and by the processes it forks).

tests/unit/test_cli_lean.py checks the same of commands that need no container; these
are the ones that only show their imports once a container runs: the models, the image
store, the bundle, the seccomp profile, the storage driver, a stop's signal."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: each ~1-30 ms of start-up: re, enum and json (with re); typing, contextlib, functools
#: and collections (with each other); attrs (typing, inspect); importlib (warnings);
#: signal (enum); platform; pluggy is for hooks a plugin implements
DENIED = {"re", "enum", "json", "typing", "attr", "attrs", "inspect", "pluggy", "argparse",
          "contextlib", "functools", "collections", "importlib", "warnings", "threading",
          "signal", "platform", "base64", "shutil", "subprocess", "gettext", "locale"}

#: runs the pyrt script (argv[1]) as its own process would, with an audit hook that logs
#: the name of each module imported for the first time
WRAPPER = r"""
import os, sys
log = os.open(os.environ["PYRT_IMPORT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
def hook(event, args):
    if event == "import" and args[0] not in sys.modules:
        os.write(log, f"{os.getpid()} {args[0]}\n".encode())
sys.addaudithook(hook)
prog = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(prog))
exec(compile(open(prog).read(), prog, "exec"), {"__name__": "__main__", "__file__": prog})
"""


@pytest.fixture
def traced(demo_cli, tmp_path):
    wrapper = tmp_path / "trace.py"
    wrapper.write_text(WRAPPER)

    def run(*args):
        log = tmp_path / f"imports-{args[0]}.log"
        log.write_text("")
        env = dict(os.environ, PYRT_IMPORT_LOG=str(log))
        r = subprocess.run([sys.executable, str(wrapper)] + demo_cli.argv(*args),
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        imported = {line.split()[1] for line in log.read_text().splitlines()}
        return r, imported

    run.cli = demo_cli
    return run


def test_run_rm_imports_nothing_heavy(traced):
    r, imported = traced("run", "--rm", "--network", "none", traced.cli.image, "echo", "ok")
    assert r.stdout == "ok\n"
    assert "pyrt_core.models" in imported  # the trace sees the engine's modules
    assert not imported & DENIED, sorted(imported & DENIED)


def test_detached_lifecycle_imports_nothing_heavy(traced):
    r, imported = traced("run", "-d", "--network", "none", traced.cli.image, "sleep", "100")
    cid = r.stdout.strip()
    assert not imported & DENIED, ("run -d", sorted(imported & DENIED))
    _, imported = traced("stop", "-t", "5", cid)
    assert not imported & DENIED, ("stop", sorted(imported & DENIED))
    _, imported = traced("rm", cid)
    assert not imported & DENIED, ("rm", sorted(imported & DENIED))
    assert traced.cli("ps", "-aq").stdout == ""
