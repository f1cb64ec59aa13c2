"""Shell completion and man pages generated from the parser (cli.completion, cli.manpages):
the scripts run in the real shells (bash; zsh through its bashcompinit; fish's own
``complete -C``), and every flag of the parser is in them and in the pages."""
import os
import subprocess
import sys

import pytest

from pyrt_core.cli import completion, manpages
from pyrt_core.cli.cmdtree import tree
from pyrt_core.testing import machine

PYRT = [sys.executable, "-m", "pyrt_core.cli.main"]


def _script(shell):
    r = subprocess.run(PYRT + ["completion", shell], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory):
    p = tmp_path_factory.mktemp("c") / "pyrt.bash"
    p.write_text(_script("bash"))
    return p


def _bash(script, *lines):
    """COMPREPLY for each command line (the last word is the one being completed)."""
    body = [f"source {script}",
            't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _pyrt; '
            'echo "${COMPREPLY[*]}"; }']
    for words in lines:
        body.append("t " + " ".join(f"'{w}'" for w in words))
    r = subprocess.run(["/bin/bash", "-c", "\n".join(body)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": "/nonexistent"})  # no store lookups here
    assert r.returncode == 0 and not r.stderr, r.stderr
    return [line.split() for line in r.stdout.splitlines()]


def test_bash_completes_commands_subcommands_options_and_choices(bash_script):
    got = _bash(bash_script,
                ["pyrt", "vol"], ["pyrt", "volume", ""], ["pyrt", "volume", "ls", "--f"],
                ["pyrt", "run", "--pull", ""], ["pyrt", "--root", "/x", "ps", "--for"],
                ["pyrt", "completion", ""], ["pyrt", "container", "ls", "--la"],
                ["pyrt", "run", "-d", "--name", "x", "img", "--"], ["pyrt", "run", "--rm", "--na"])
    assert got[0] == ["volume"]
    assert {"create", "ls", "inspect", "rm", "prune"} <= set(got[1])
    assert got[2] == ["--filter", "--format"]
    assert got[3] == ["missing", "always", "never"]
    assert got[4] == ["--format"]            # a global option's value is skipped over
    assert got[5] == ["bash", "zsh", "fish", "man"]
    assert got[6] == ["--last", "--latest"]  # a management alias (container ls)
    assert got[7] == []                      # after the image: the container's command
    assert got[8] == ["--name"]


def test_every_flag_of_the_parser_is_completed(bash_script):
    cmds = {c.path: c for c in tree()}
    run = cmds[("run",)]
    flags = {f for o in run.options for f in o.flags}
    assert {"--detach", "--rm", "--name", "--volume", "--health-cmd", "--label"} <= flags
    got = set(_bash(bash_script, ["pyrt", "run", "-"])[0])
    long = {f for f in flags if f.startswith("--")}
    assert long <= got, long - got
    # and every command has an entry
    text = bash_script.read_text()
    for path in cmds:
        assert "['" + " ".join(("pyrt",) + path) + "']" in text


@machine.needs("program", "zsh")
def test_zsh_runs_the_same_function_through_bashcompinit(tmp_path):
    script = tmp_path / "_pyrt"
    script.write_text(_script("zsh"))
    body = (f"source {script}\n"
            't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _pyrt; '
            'print -r -- "${COMPREPLY[*]}"; }\n'
            "t pyrt volume ''\nt pyrt volume ls --f\nt pyrt run --pull ''\nt pyrt run img -\n")
    r = subprocess.run(["zsh", "-f", "-c", body], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    # zsh's compgen leaves the matching against the prefix to zsh itself: the candidates
    assert {"create", "ls", "rm"} <= set(lines[0])
    assert {"--filter", "--format"} <= set(lines[1]) and "--volume" not in lines[1]
    assert lines[2] == ["missing", "always", "never"]
    assert lines[3] == []


@machine.needs("program", "fish")
def test_fish_completes_with_its_own_function(tmp_path):
    script = tmp_path / "pyrt.fish"
    script.write_text(_script("fish"))

    def complete(line):
        r = subprocess.run(["fish", "-N", "-c", f"source {script}; complete -C'{line}'"],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert r.returncode == 0, r.stderr
        return [w.split("\t")[0] for w in r.stdout.splitlines()]

    assert complete("pyrt vol") == ["volume"]
    assert {"create", "ls", "rm"} <= set(complete("pyrt volume "))
    assert complete("pyrt volume ls --f") == ["--filter", "--format"]
    assert sorted(complete("pyrt run --pull ")) == ["always", "missing", "never"]
    assert sorted(complete("pyrt completion ")) == ["bash", "fish", "man", "zsh"]
    assert complete("pyrt run -d --na") == ["--name"]


def test_an_unknown_shell_is_one_line_and_exit_125():
    r = subprocess.run(PYRT + ["completion", "tcsh"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 125 and r.stdout == ""
    assert r.stderr.startswith("Error: ") and "tcsh" in r.stderr.splitlines()[0]
    with pytest.raises(Exception, match="unknown shell"):
        completion.script("tcsh")


def test_man_pages_one_per_command_every_flag_and_clean_roff(tmp_path):
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    r = subprocess.run([sys.executable, "-m", "pyrt_core.cli.manpages", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    cmds = tree()
    pages = sorted(os.listdir(tmp_path / "man1"))
    assert pages == sorted(manpages.page_name(c.path) + ".1" for c in cmds)
    run_page = (tmp_path / "man1" / "pyrt-run.1").read_text()
    assert run_page.startswith('.TH PYRT-RUN 1 "2023-11-14"')
    for o in next(c for c in cmds if c.path == ("run",)).options:
        for f in o.flags:
            assert "\\fB" + f.replace("-", "\\-") + "\\fR" in run_page, f
    assert "pyrt\\-volume\\-ls" in (tmp_path / "man1" / "pyrt-volume.1").read_text()
    if machine.has("program", "groff"):  # roff that groff reads without a warning
        for page in pages:
            g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(tmp_path / "man1" / page)],
                               capture_output=True, text=True, timeout=60)
            assert g.returncode == 0 and g.stderr == "", (page, g.stderr)


def test_roff_escapes_control_lines_and_backslashes():
    assert manpages._esc(".dot\n'quote\na\\b-c") == "\\&.dot\n\\&'quote\na\\eb\\-c"


def test_completion_man_writes_the_pages_in_the_directory(tmp_path):
    r = subprocess.run(PYRT + ["completion", "man", str(tmp_path / "man1")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "man1" / "pyrt-run.1").read_text().startswith(".TH PYRT-RUN 1 ")
    for argv in (["completion", "man"], ["completion", "bash", str(tmp_path)]):
        bad = subprocess.run(PYRT + argv, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 125 and bad.stdout == "" and bad.stderr.startswith("Error: ")
