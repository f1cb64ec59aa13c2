"""The CLI's parsing and error conventions (no container is run)."""
import subprocess
import sys

import pytest

from pyrt_core.cli.main import build_parser, main
from pyrt_core.cli.containers.run import container_config_from_args
from pyrt_core.errors import UsageError


def _run_args(*argv):
    return build_parser().parse_args(["run", *argv])


def test_run_flags_docker_style():
    a = _run_args("--rm", "--name", "x", "-e", "A=1", "-w", "/tmp", "-u", "1000:1000", "-h", "box",
                  "--network", "host", "-v", "/srv:/data:ro", "--read-only", "img", "sh", "-c", "echo -e")
    cfg = container_config_from_args(a)
    assert cfg.command == ["sh", "-c", "echo -e"] and cfg.hostname == "box" and cfg.auto_remove
    assert cfg.volumes[0].readonly and cfg.network == "host" and cfg.env == ["A=1"]


def test_flags_after_image_belong_to_the_command():
    cfg = container_config_from_args(_run_args("img", "ls", "--rm", "-h"))
    assert cfg.command == ["ls", "--rm", "-h"] and not cfg.auto_remove


@pytest.mark.parametrize("argv, msg", [
    (["--network", "none", "-p", "80", "img"], "conflicting options"),
    (["-v", "../rel:/x", "img"], "invalid characters for a local volume name"),
    (["-v", "a:b:c:d", "img"], "invalid volume specification"),
    (["--mount", "type=bind,src=/a", "img"], "target is required"),
    (["--tmpfs", "rel", "img"], "must be absolute"),
    (["--volumes-from", "x:rx", "img"], "CONTAINER"),
    (["--uidmap", "0:1", "img"], "CONTAINER:HOST:SIZE"),
    (["-e", "=x", "img"], "invalid environment"),
    (["--userns", "host", "--uidmap", "0:1000:1", "img"], "conflict"),
])
def test_bad_values_are_usage_errors(argv, msg):
    with pytest.raises(UsageError, match=msg):
        container_config_from_args(_run_args(*argv))


def test_unknown_flag_exits_125(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--no-such-flag", "img"])
    assert e.value.code == 125
    err = capsys.readouterr().err
    assert err.startswith("Error:") and "--no-such-flag" in err


def test_usage_error_is_one_line_125(capsys):
    assert main(["run", "--network", "none", "-p", "80", "img"]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: conflicting options")


def test_help_everywhere():
    for cmd in ("run", "load", "images", "inspect", "tag", "rmi", "ps", "rm", "info"):
        r = subprocess.run([sys.executable, "-m", "pyrt_core.cli.main", cmd, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "usage: pyrt " + cmd in r.stdout, cmd


def test_version():
    r = subprocess.run([sys.executable, "-m", "pyrt_core.cli.main", "--version"], capture_output=True, text=True)
    assert r.stdout.startswith("pyrt version ")


def test_command_table_matches_the_area_modules():
    import importlib

    from pyrt_core.cli import main as climain

    for area, names in climain.AREAS.items():
        mod = importlib.import_module(f"pyrt_core.cli.{area}")
        assert tuple(mod.PARSERS) == names, area
    from pyrt_core.cli.extensions import plugin_commands

    listed = build_parser()._subparsers._group_actions[0].choices
    assert list(listed) == [n for names in climain.AREAS.values() for n in names] + \
        list(plugin_commands())


def test_each_container_command_is_built_by_its_own_module():
    """The container commands' table names the module of each; that module, and no other,
    builds its parser (so a command imports only its own module)."""
    import importlib

    from pyrt_core.cli import containers

    modules = set(containers.MODULE_OF.values())
    for module in modules:
        mod = importlib.import_module(f"pyrt_core.cli.containers.{module}")
        assert sorted(mod.PARSERS) == sorted(n for n, m in containers.MODULE_OF.items()
                                             if m == module), module


def test_a_container_command_imports_its_module_alone():
    code = ("import sys; from pyrt_core.cli.main import build_parser; build_parser(only='ps'); "
            "print(sorted(m for m in sys.modules if m.startswith('pyrt_core.cli.containers')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "['pyrt_core.cli.containers', 'pyrt_core.cli.containers.inventory']", r.stderr


@pytest.mark.parametrize("argv, word", [
    (["rm", "x"], "rm"),
    (["--root", "/r", "--runroot=/rr", "-s", "vfs", "stop", "-t", "1", "x"], "stop"),
    (["--storage-opt", "overlay.a=b", "run", "--rm", "img"], "run"),
    (["--help"], None), ([], None), (["--roo", "/r", "ps"], None),
])
def test_only_the_named_command_is_built(argv, word):
    from pyrt_core.cli.main import command_word

    assert command_word(argv) == word
    if word:
        p = build_parser(only=word)
        assert list(p._subparsers._group_actions[0].choices) == [word]
        # and it parses like the whole parser
        a, b = p.parse_args(argv), build_parser().parse_args(argv)
        assert {k: v for k, v in vars(a).items() if k != "func"} == \
            {k: v for k, v in vars(b).items() if k != "func"}


def test_an_unknown_command_is_refused_by_the_whole_parser(capsys):
    from pyrt_core.cli.main import command_word

    assert command_word(["nosuch", "x"]) == "nosuch"  # maybe a plugin's: looked up
    with pytest.raises(SystemExit) as e:
        main(["nosuch", "x"])
    assert e.value.code == 125
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_abbreviated_global_option_is_refused(capsys):
    # not recognised by command_word: main falls back to the whole parser, which refuses it
    with pytest.raises(SystemExit) as e:
        main(["--roo", "/nonexistent-pyrt-root", "version"])
    assert e.value.code == 125
    assert capsys.readouterr().err.startswith("Error: pyrt: ")


def test_priv_is_not_privileged(capsys):
    """docker has no abbreviated options: `--priv` was silently taken as `--privileged`."""
    with pytest.raises(SystemExit) as e:
        main(["run", "--priv", "img"])
    assert e.value.code == 125
    err = capsys.readouterr().err
    assert err.startswith("Error:") and "unrecognized arguments: --priv" in err


def _parsers(parser, path=()):
    """(command words, parser) of every parser under ``parser``, subcommands included."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_no_parser_takes_an_abbreviated_long_option():
    """Walk every command's parser (subcommands and plugins' commands included): each long
    option cut short by one character, when that is no option of its own, is refused."""
    checked = 0
    for path, parser in _parsers(build_parser()):
        assert parser.allow_abbrev is False, path
        for opt in list(parser._option_string_actions):
            if not opt.startswith("--") or len(opt) < 5:
                continue
            short = opt[:-1]
            if short in parser._option_string_actions:
                continue
            found = parser._parse_optional(short)
            found = found if isinstance(found, list) else [found]
            assert all(f is None or f[0] is None for f in found), (path, short)
            checked += 1
    assert checked > 200


def test_pyrt_runtime_is_the_runtime_program(capsys):
    """`pyrt runtime ARGS` runs pyrt-runtime's command line, options and all."""
    from pyrt_core.cli.main import main

    assert main(["runtime", "--version"]) == 0
    assert capsys.readouterr().out.startswith("pyrt-runtime version ")
    assert main(["runtime", "--root", "/nonexistent-pyrt-test", "state", "nosuch"]) == 1
    assert "container nosuch does not exist" in capsys.readouterr().err
