"""Shell completion and man pages generated from pyrt's parser (cli/docgen.py), proven
by the real shells: bash's ``_pyrt`` with COMP_WORDS set, zsh's with ``words``/``CURRENT``
(compadd shown), fish's ``complete -C``; the man pages rendered by groff with warnings
on; and a flag added to a parser appearing with no other change."""
import argparse
import os
import shutil
import subprocess
import sys

import pytest

from pyrt_core.cli import docgen

PYRT = [os.path.join(os.path.dirname(sys.executable), "pyrt")]


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("completion")
    root = docgen.tree()
    for shell in ("bash", "zsh", "fish"):
        (d / f"pyrt.{shell}").write_text(getattr(docgen, shell)(root))
    return d


CASES = [  # (the words, the current one last; what must be offered; what must not)
    (["pyrt", "vol"], ["volume"], ["run"]),
    (["pyrt", "volume", "c"], ["create"], ["ls"]),
    (["pyrt", "volume", "list", "--f"], ["--filter", "--format"], ["--quiet"]),  # an alias
    (["pyrt", "--root", "/x", "volume", "create", "--dri"], ["--driver"], []),
    (["pyrt", "info", "--format", ""], ["text", "json"], []),  # an option's choices
    (["pyrt", "system", ""], ["recover", "boot", "df", "prune"], []),
    (["pyrt", "events", "--since", "10m", "--f"], ["--filter", "--format"], []),
    (["pyrt", "completion", ""], ["bash", "zsh", "fish", "man"], []),  # a positional's
    (["pyrt", "run", "--rm", "-e", "A=1", "--pul"], ["--pull"], []),
]


def _need(shell):
    if not shutil.which(shell):
        pytest.skip(f"machine fact '{shell}': needs the program {shell} (apt-get install "
                    f"{shell}), which this machine lacks")


@pytest.mark.parametrize("words, want, unwanted", CASES, ids=lambda x: " ".join(x)
                         if isinstance(x, list) else None)
def test_bash(scripts, words, want, unwanted):
    _need("bash")
    arr = " ".join(f"'{w}'" for w in words)
    code = (f"source {scripts}/pyrt.bash; COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; "
            "_pyrt; printf '%s\\n' \"${COMPREPLY[@]}\"")
    got = subprocess.run(["bash", "--norc", "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert set(want) <= set(got) and not set(unwanted) & set(got), got


@pytest.mark.parametrize("words, want, unwanted", CASES, ids=lambda x: " ".join(x)
                         if isinstance(x, list) else None)
def test_zsh(scripts, words, want, unwanted):
    _need("zsh")
    arr = " ".join(f"'{w}'" for w in words)
    # compadd filters by the prefix itself: here it prints what it was given
    code = (f"compdef() {{ :; }}; source {scripts}/pyrt.zsh; "
            "compadd() { shift; print -l -- $@; }; _files() { print _files; }; "
            f"words=({arr}); CURRENT={len(words)}; _pyrt")
    got = [w for w in subprocess.run(["zsh", "-f", "-c", code], capture_output=True,
                                     text=True, check=True).stdout.split()
           if w.startswith(words[-1])]
    assert set(want) <= set(got) and not set(unwanted) & set(got), got


@pytest.mark.parametrize("words, want, unwanted", CASES, ids=lambda x: " ".join(x)
                         if isinstance(x, list) else None)
def test_fish(scripts, words, want, unwanted):
    _need("fish")
    line = " ".join(w for w in words if w) + (" " if not words[-1] else "")
    r = subprocess.run(["fish", "--no-config", "-c",
                        f"source {scripts}/pyrt.fish; complete -C '{line}'"],
                       capture_output=True, text=True, check=True)
    got = [ln.split("\t")[0] for ln in r.stdout.splitlines()]
    assert set(want) <= set(got) and not set(unwanted) & set(got), got


def test_man_pages_render_cleanly_and_cover_every_command(tmp_path):
    _need("groff")
    root = docgen.tree()
    written = docgen.write_man(str(tmp_path), root)
    names = {os.path.basename(p) for p in written}
    assert {"pyrt.1", "pyrt-volume-create.1", "pyrt-system-df.1", "pyrt-events.1",
            "pyrt-system-prune.1", "pyrt-completion.1"} <= names
    assert "pyrt-volume-list.1" not in names  # an alias: no page of its own
    assert len(names) == len(list(root.walk()))
    for p in written:
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", p], capture_output=True,
                           text=True)
        assert r.returncode == 0 and r.stderr == "", (p, r.stderr)
    text = subprocess.run(["groff", "-man", "-Tascii", str(tmp_path / "pyrt-events.1")],
                          capture_output=True, text=True, check=True).stdout
    import re

    text = re.sub(".\b", "", text)  # (the terminal's bold and underline by overstrike)
    assert "pyrt events [OPTIONS]" in text and "--since TIME" in text


def test_a_flag_added_to_a_parser_is_completed_and_documented():
    p = argparse.ArgumentParser(prog="pyrt", description="top")
    sub = p.add_subparsers()
    w = sub.add_parser("widget", help="Make widgets", aliases=["wd"])
    w.add_argument("--colour", choices=["red", "blue"], help="its colour")
    w.add_argument("--shiny", action="store_true", help="polished")
    root = docgen.tree(p)
    assert set(root.subs) == {"widget", "wd"} and root.primary == ["widget"]
    assert "['pyrt wd --colour']='red blue'" in docgen.bash(root)
    assert "complete -c pyrt -n \"__pyrt_at 'pyrt widget'\" -l 'shiny'" in docgen.fish(root)
    page = docgen.man_pages(root, "1.0", "2026-12-07")["pyrt-widget.1"]
    assert "\\fB\\-\\-colour\\fR \\fICOLOUR\\fR" in page and "(one of: red, blue)" in page


@pytest.mark.parametrize("argv, message", [
    (["completion", "tcsh"], "invalid choice: 'tcsh'"),
    (["completion", "man"], "completion man needs the directory"),
    (["completion", "bash", "/tmp/x"], "completion bash takes no directory"),
])
def test_bad_values(argv, message, tmp_path):
    r = subprocess.run(PYRT + ["--root", str(tmp_path / "r"), "--runroot", str(tmp_path / "rr")]
                       + argv, capture_output=True, text=True)
    assert r.returncode == 125 and r.stdout == "" and message in r.stderr.splitlines()[0], r
