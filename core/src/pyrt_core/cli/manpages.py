"""Man pages generated from the parser (:mod:`.cmdtree`): ``pyrt(1)`` and one page per
command and subcommand (``pyrt-run(1)``, ``pyrt-volume-ls(1)``), plugins' commands and
flags included, so the pages say what the installed ``pyrt`` accepts.

    python3 -m pyrt_core.cli.manpages DIR      # writes DIR/man1/pyrt*.1
    pyrt completion man DIR/man1               # the same pages, in DIR/man1 itself

Distributions run it at build time (``SOURCE_DATE_EPOCH`` fixes the date, for
reproducible packages); ``man -l DIR/man1/pyrt-run.1`` reads one.
"""
from __future__ import annotations

import os
import sys
import time


def _esc(text: str) -> str:
    """Text for roff: backslashes escaped, and no line may start with a control
    character (. or ')."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.splitlines())


def page_name(path: tuple) -> str:
    return "-".join(("pyrt",) + tuple(path))


def render(cmd, by_path: dict, version: str, date: str) -> str:
    name = page_name(cmd.path)
    title = f".TH {name.upper()} 1 \"{date}\" \"pyrt {version}\" \"pyrt Manual\""
    out = [title, ".SH NAME", f"{_esc(name)} \\- {_esc(cmd.help or 'pyrt, a pluggable container engine')}",
           ".SH SYNOPSIS", ".nf", _esc(cmd.usage), ".fi"]
    if cmd.help:
        out += [".SH DESCRIPTION", _esc(cmd.help)]
    if cmd.aliases:
        aliases = ", ".join(" ".join(("pyrt",) + cmd.path[:-1] + (a,)) for a in cmd.aliases)
        out.append(f"Also: \\fB{_esc(aliases)}\\fR.")
    if cmd.positionals:
        out.append(".SH ARGUMENTS")
        for p in cmd.positionals:
            what = ("the container's command and its arguments" if p.rest else
                    f"one or more ({p.kind} names)" if p.repeats and p.kind else
                    f"a {p.kind} name or id" if p.kind else "")
            if p.choices:
                what = "one of " + ", ".join(p.choices)
            out += [".TP", f"\\fI{_esc(p.name)}\\fR" + (" (optional)" if p.optional else ""), _esc(what)]
    if cmd.options:
        out.append(".SH OPTIONS")
        for o in cmd.options:
            flags = ", ".join(f"\\fB{_esc(f)}\\fR" for f in o.flags)
            if o.takes_value:
                flags += f" \\fI{_esc(o.metavar)}\\fR"
            text = o.help or ""
            if o.choices:
                text = (text + " " if text else "") + "(one of: " + ", ".join(o.choices) + ")"
            out += [".TP", flags, _esc(text) if text else "\\&"]
    subs = [by_path[cmd.path + (s,)] for s in cmd.subcommands if cmd.path + (s,) in by_path]
    if subs:
        out += [".SH COMMANDS"]
        for s in subs:
            out += [".TP", f"\\fB{_esc(page_name(s.path))}\\fR(1)", _esc(s.help) if s.help else "\\&"]
    see = [page_name(cmd.path[:-1])] if cmd.path else []
    if see:
        out += [".SH SEE ALSO", ", ".join(f"\\fB{_esc(s)}\\fR(1)" for s in see)]
    return "\n".join(out) + "\n"


def write(outdir: str, subdir: bool = True) -> list:
    """Write every page under ``outdir/man1`` (``subdir`` False: in ``outdir`` itself, as
    ``pyrt completion man DIR`` does); the paths written."""
    from .. import __version__
    from .cmdtree import tree

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    date = time.strftime("%Y-%m-%d", time.gmtime(epoch))
    cmds = tree()
    by_path = {c.path: c for c in cmds}
    d = os.path.join(outdir, "man1") if subdir else outdir
    os.makedirs(d, exist_ok=True)
    written = []
    for c in cmds:
        path = os.path.join(d, page_name(c.path) + ".1")
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(c, by_path, __version__, date))
        written.append(path)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: python3 -m pyrt_core.cli.manpages DIR\n")
        return 2
    n = len(write(argv[0]))
    print(f"{n} man pages in {os.path.join(argv[0], 'man1')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
