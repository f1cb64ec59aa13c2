"""Plugins add commands and flags to ``pyrt`` (pyrt_core.cli.extensions): entry points of
hand-made distributions (tests/unit/fakedist.py), no pip."""
from __future__ import annotations

import pytest

from .fakedist import make_dist, on_path

PLUGIN_CLI = """
    calls = []

    def add_hello(cmd):
        p = cmd("hello", "Say hello", run_hello)
        p.add_argument("--to", default="world")

    def run_hello(args):
        calls.append(("hello", args.to, args.root))
        return 7

    def add_run_flags(group):
        group.add_argument("--colour", metavar="C")
        group.add_argument("--loud", action="store_true", default=None)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "site"


def _plugin(site, name="pyrt-hello", commands=None, flags=None, module="hello_cli"):
    site.mkdir(exist_ok=True)
    make_dist(site, name, "1.0", {
        "pyrt.commands": commands if commands is not None else {"hello": f"{module}:add_hello"},
        "pyrt.command_flags": flags if flags is not None else {"run": f"{module}:add_run_flags"},
    }, {f"{module}.py": PLUGIN_CLI})


def test_a_plugin_command_runs(site):
    from pyrt_core.cli.main import build_parser, main

    _plugin(site)
    with on_path(site):
        import hello_cli

        assert main(["--root", "/nonexistent-r", "hello", "--to", "you"]) == 7
        assert hello_cli.calls == [("hello", "you", "/nonexistent-r")]
        # built alone when named, and listed by the whole parser (pyrt --help)
        only = build_parser(only="hello")._subparsers._group_actions[0].choices
        assert list(only) == ["hello"]
        assert "hello" in build_parser()._subparsers._group_actions[0].choices


def test_plugin_flags_of_run_reach_the_plugins(site):
    from pyrt_core.cli.extensions import collect_plugin_options
    from pyrt_core.cli.main import build_parser

    _plugin(site)
    with on_path(site):
        p = build_parser(only="run")
        args = p.parse_args(["run", "--colour", "red", "img"])
        collect_plugin_options(args)
        assert args.plugin_options == {"colour": "red"}  # --loud left unset: omitted
        help_text = p._subparsers._group_actions[0].choices["run"].format_help()
        assert "options of pyrt-hello" in help_text and "--colour C" in help_text
        # a command that is not open to plugin flags never gets them
        with pytest.raises(SystemExit):
            build_parser(only="ps").parse_args(["ps", "--colour", "red"])


def test_two_plugins_with_one_command_is_an_error_naming_both(site):
    from pyrt_core.cli.main import main

    _plugin(site, "pyrt-hello")
    _plugin(site, "pyrt-hello-too", module="hello_cli2")
    with on_path(site):
        assert main(["hello"]) == 125


def test_a_plugin_cannot_take_a_core_command(site, capsys):
    from pyrt_core.cli.main import main

    _plugin(site, commands={"ps": "hello_cli:add_hello"}, flags={})
    with on_path(site):
        assert main(["--help"]) == 125
    assert "declares the command 'ps'" in capsys.readouterr().err


def test_a_broken_plugin_command_is_one_line(site, capsys):
    from pyrt_core.cli.main import main

    _plugin(site, commands={"hello": "no_such_module:add"}, flags={})
    with on_path(site):
        assert main(["hello"]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pyrt-hello" in err and "cannot be loaded" in err
