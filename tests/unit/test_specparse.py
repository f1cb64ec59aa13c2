"""``run`` and ``create`` lines parsed without argparse (issue 17, cli.specparse): each
result is exactly argparse's namespace, or None (the line is argparse's to read or to
refuse); the lean parse imports no argparse."""
from __future__ import annotations

import contextlib
import io
import os
import random
import subprocess
import sys

import pytest

from pyrt_core.cli import main as climain
from pyrt_core.cli import specparse


def _argparse(argv):
    """argparse's namespace as a dict, or None when argparse refuses the line."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            ns = climain.build_parser(only=climain.command_word(argv)).parse_args(argv)
    except SystemExit:
        return None
    return vars(ns)


def _lean(argv):
    args = specparse.parse(argv)
    return None if args is None else vars(args)


PARSED = [
    ["run", "img"], ["run", "--rm", "img", "true"], ["run", "--rm", "--network", "none", "img", "true"],
    ["run", "-d", "img", "sleep", "1"], ["run", "-dit", "img"], ["run", "-it", "--rm", "img", "sh"],
    ["run", "-e", "A=1", "-e", "B=2", "--env=C=3", "img"], ["run", "-eA=1", "img"], ["run", "-e=A", "img"],
    ["run", "-ie=x", "img"],
    ["run", "--name", "x", "-p", "8080:80", "-p8081:81", "img"], ["run", "-itp", "80", "img"],
    ["run", "--name=web", "--restart=always", "-d", "img", "httpd", "-f", "-p", "80"],
    ["run", "img", "--rm", "-d"], ["run", "img", "sh", "-c", "echo -- x"],
    ["run", "img", "ls", "--", "x"],
    ["run", "--cpu-quota", "-1", "--memory-swap", "-1", "img"], ["run", "--oom-score-adj", "-500", "img"],
    ["run", "--stop-timeout", "5", "img"], ["run", "--stop-timeout=-3", "img"],
    ["run", "--pull", "never", "img"], ["run", "--pull=always", "img"], ["run", "--userns", "private", "img"],
    ["run", "--sig-proxy", "img", "true"], ["run", "--sig-proxy=false", "img"],
    ["run", "--sig-proxy", "--rm", "img"], ["run", "-h", "myhost", "img"], ["run", "--hostname=h", "img"],
    ["run", "-v", "/a:/b:ro", "--mount", "type=tmpfs,target=/t", "--tmpfs", "/x", "img"],
    ["run", "--net", "none", "--network", "bridge", "img"], ["run", "-a", "stdout", "-a", "stderr", "img"],
    ["run", "-m", "512m", "-c", "512", "--cpus", "1.5", "--pids-limit", "100", "img"],
    ["run", "--health-cmd", "true", "--health-interval", "1s", "--no-healthcheck", "img"],
    ["run", "--label", "a=b", "-l", "c", "--label-file", "/f", "img"],
    ["run", "--cap-add", "NET_ADMIN", "--cap-drop=ALL", "--privileged", "--read-only", "img"],
    ["run", "-u", "1000:1000", "-w", "/tmp", "--entrypoint", "", "img"],
    ["run", "--storage-opt", "size=1G", "img"], ["run", "--init", "--ulimit", "nofile=10:20", "img"],
    ["run", "--root", "/r", "--runroot", "/rr", "img"], ["--root", "/r", "run", "--root", "/s", "img"],
    ["--root=/r", "-s", "vfs", "--storage-opt", "a=b", "run", "-s", "overlay", "img"],
    ["run", "--config", "/c", "img"], ["create", "img"], ["create", "--name", "c", "-t", "img", "sh"],
    ["create", "-i", "--rm", "img", "x"], ["run", "", "x"], ["run", "-e", "", "img"],
    ["run", "--detach-keys", "ctrl-a,ctrl-b", "-d", "img"], ["run", "--platform", "linux/amd64", "img"],
    ["run", "--runtime", "runc", "--log-driver", "none", "--log-opt", "max-size=1m", "img"],
    ["run", "--ipc", "host", "--pid=host", "--uts", "host", "--cgroupns", "private", "img"],
    ["run", "--cidfile", "/tmp/x", "--group-add", "10", "--annotation", "a=b", "img"],
    ["run", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "1g", "img"],
    ["run", "--dns", "1.1.1.1", "--add-host", "a:1.2.3.4", "--mac-address", "02:00:00:00:00:01", "img"],
    ["run", "--memory", "1g", "--memory=2g", "img"],
]

REFUSED_OR_ARGPARSE = [  # argparse's to read or to refuse
    ["run"], ["run", "--rm"], ["run", "--help"], ["run", "--bogus", "img"], ["run", "--privi", "img"],
    ["run", "--", "img"], ["run", "img", "--", "ls"], ["run", "-e", "-x", "img"],
    ["run", "--stop-timeout", "x", "img"], ["run", "--pull", "sometimes", "img"],
    ["run", "--rm=1", "img"], ["run", "-i=t", "img"], ["run", "-iz", "img"], ["run", "--name"],
    ["run", "--sig-proxy", "-", "img"], ["run", "-", "img"], ["run", "-1", "img"],
    ["run", "--userns", "x", "img"], ["run", "--name", "-x", "img"], ["run", "-i-t", "img"],
    ["create", "--help"], ["create"], ["run", "--entrypoint", "-c x", "img"],
]


@pytest.mark.parametrize("argv", PARSED, ids=" ".join)
def test_lean_parse_is_argparse(argv):
    lean = _lean(argv)
    assert lean is not None, "a plain form must be read without argparse"
    assert lean == _argparse(argv)


@pytest.mark.parametrize("argv", REFUSED_OR_ARGPARSE, ids=lambda a: " ".join(a) or "(none)")
def test_other_lines_are_left_to_argparse_or_agree(argv):
    lean = _lean(argv)
    assert lean is None or lean == _argparse(argv)


def test_random_lines_agree_with_argparse():
    """Lines made of run's own flags and awkward words: never a result argparse would
    not give."""
    sp = specparse.build("run")
    flags = sorted(sp.options)
    words = ["img", "x", "-1", "-", "--", "", "a=b", "-x", "1.5", "true", "none", "host", "-.5",
             "private", "always", "5"]
    rng = random.Random(17)
    agreed = 0
    for _ in range(3000):
        argv = ["run"]
        for _ in range(rng.randint(0, 6)):
            f = rng.choice(flags)
            r = rng.random()
            if r < 0.2 and f.startswith("--"):
                argv.append(f"{f}={rng.choice(words)}")
            elif r < 0.3 and not f.startswith("--"):
                argv.append(f + rng.choice(words))
            else:
                argv.append(f)
                if rng.random() < 0.7:
                    argv.append(rng.choice(words))
        argv += rng.choice([[], ["img"], ["img", "sh", "-c", "x"], ["img", "--rm"], ["img", "--"]])
        lean = _lean(argv)
        if lean is None:
            continue
        assert lean == _argparse(argv), argv
        agreed += 1
    assert agreed > 500  # most plain lines are read here


def test_a_plugin_flag_the_recorder_cannot_read_leaves_the_line_to_argparse(monkeypatch):
    from pyrt_core.cli import extensions

    def add(parser):
        group = parser.add_argument_group("x")
        group.add_argument("--weird", nargs=2)
        parser.set_defaults(_plugin_dests=("weird",))

    monkeypatch.setattr(extensions, "add_plugin_flags", lambda word, parser: add(parser))
    assert specparse.build("run") is None
    assert specparse.parse(["run", "img"]) is None


def test_plugin_flags_are_read_and_collected(monkeypatch):
    from pyrt_core.cli import extensions

    real = extensions.add_plugin_flags

    def add(word, parser):
        class Ep:
            name, distribution = word, "pyrt-example"

            @staticmethod
            def load():
                def add_flags(group):
                    group.add_argument("--example-mode", choices=("a", "b"), default=None)
                    group.add_argument("--example-n", type=int, default=None)
                    group.add_argument("--example-tag", action="append", default=["base"])
                    group.add_argument("--example-v", action="count", default=None)
                return add_flags

        monkeypatch.setattr(extensions, "_entries", lambda group: [Ep] if group == extensions.FLAGS_GROUP else [])
        real(word, parser)

    monkeypatch.setattr(extensions, "add_plugin_flags", add)
    for argv in (["run", "--example-mode", "b", "--example-n=3", "img"], ["run", "img"],
                 ["run", "--example-tag", "x", "--example-tag=y", "--example-v", "--example-v", "img"]):
        lean = _lean(argv)
        assert lean is not None and lean == _argparse(argv)
    assert _lean(["run", "--example-mode", "c", "img"]) is None  # argparse's error
    assert _lean(["run", "--example-n", "x", "img"]) is None
    args = specparse.parse(["run", "--example-mode", "b", "img"])
    extensions.collect_plugin_options(args)
    assert args.plugin_options == {"example_mode": "b", "example_tag": ["base"]}


def test_run_is_parsed_without_importing_argparse(tmp_path):
    code = ("import sys\nfrom pyrt_core.cli import specparse\n"
            "a = specparse.parse(['run', '--rm', '-e', 'A=1', '--network', 'none', 'img', 'true'])\n"
            "assert a is not None and a.image == 'img' and a.cmd == ['true']\n"
            "print(sorted(m for m in ('argparse', 'gettext') if m in sys.modules))\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # the plugin index's cache
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
