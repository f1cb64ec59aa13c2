"""Shell completion (bash, zsh, fish) and man pages, generated from the command-line
parser (``cli.main.build_parser``: the core's commands and those of the plugins
installed), never written by hand: a flag added to a parser is completed and documented
with no other change.

``pyrt completion bash|zsh|fish`` prints a script; ``pyrt completion man DIR`` writes
``pyrt.1`` and one page per command (``pyrt-volume-create.1``), as docker's and
podman's man pages are named.  Each script holds the tree of commands as data (each
command's subcommands, its options, which options take a value and their choices) and
a small walker that finds the command being typed, skipping options and their values.
"""
from __future__ import annotations

import sys


class Command:
    """One command of the tree: ``path`` (``("pyrt", "volume", "create")``), its help,
    subcommands, options (``(names, takes_value, choices, metavar, help)``) and
    positionals (``(metavar, help)``)."""

    def __init__(self, path: tuple[str, ...], help: str):
        self.path = path
        self.help = help
        #: subcommands by their names, aliases included (``volume list`` is ``volume ls``)
        self.subs: dict[str, Command] = {}
        #: the names that are no alias, in the parser's order
        self.primary: list[str] = []
        self.options: list[tuple[list[str], bool, list[str], str, str]] = []
        self.positionals: list[tuple[str, str]] = []
        #: the choices of the first positional that has some (``completion SHELL``)
        self.words: list[str] = []

    def walk(self):
        """Every command once (aliases skipped): the man pages'."""
        yield self
        for name in self.primary:
            yield from self.subs[name].walk()

    def paths(self, path: tuple[str, ...] | None = None):
        """(the words typed, the command) for every spelling, aliases included: the
        completion tables'."""
        path = path or self.path
        yield path, self
        for word, sub in self.subs.items():
            yield from sub.paths(path + (word,))


def tree(parser=None) -> Command:
    """The command tree of ``parser`` (default: pyrt's whole parser)."""
    import argparse

    if parser is None:
        from .main import build_parser

        parser = build_parser()

    def visit(p, path, help_text) -> Command:
        cmd = Command(path, help_text or p.description or "")
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                helps = {c.dest: c.help or "" for c in a._choices_actions}
                made: dict[int, Command] = {}
                for name, sp in a.choices.items():  # a primary name comes before its aliases
                    if id(sp) not in made:
                        made[id(sp)] = visit(sp, path + (name,), helps.get(name, ""))
                        cmd.primary.append(name)
                    cmd.subs[name] = made[id(sp)]
                continue
            if a.help == argparse.SUPPRESS:
                continue
            if a.option_strings:
                takes = a.nargs != 0
                choices = [str(c) for c in a.choices] if a.choices else []
                cmd.options.append((list(a.option_strings), takes, choices,
                                    a.metavar or (a.dest.upper() if takes else ""),
                                    _help(a.help)))
            else:
                cmd.positionals.append((a.metavar or a.dest.upper(), _help(a.help)))
                if a.choices and not cmd.words:
                    cmd.words = [str(c) for c in a.choices]
        return cmd

    return visit(parser, ("pyrt",), parser.description)


def _help(text) -> str:
    if not text:
        return ""
    return " ".join(str(text).replace("%%", "%").split())


def _q(s: str) -> str:
    """A single-quoted shell word (bash, zsh, fish alike)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "'\\''") + "'" if "'" in s or "\\" in s \
        else f"'{s}'"


def _fishq(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- bash and zsh ----------------------------------------------------------------------------

def _tables(root: Command) -> dict[str, dict[str, str]]:
    """Per command path (``"pyrt volume"``): subcommands, options, value-taking options;
    per ``"path option"``: its choices."""
    subs, opts, vals, choices, words = {}, {}, {}, {}, {}
    for path, c in root.paths():
        key = " ".join(path)
        subs[key] = " ".join(c.subs)
        if c.words:
            words[key] = " ".join(c.words)
        opts[key] = " ".join(n for names, *_ in c.options for n in names)
        vals[key] = " ".join(n for names, takes, *_ in c.options if takes for n in names)
        for names, takes, ch, *_ in c.options:
            if ch:
                for n in names:
                    choices[f"{key} {n}"] = " ".join(ch)
    return {"subs": subs, "opts": opts, "vals": vals, "choices": choices, "words": words}


def _assoc(name: str, table: dict[str, str]) -> str:
    body = "".join(f"  [{_q(k)}]={_q(v)}\n" for k, v in sorted(table.items()))
    return f"{name}=(\n{body})\n"


def _zassoc(name: str, table: dict[str, str]) -> str:
    """zsh's form (``name=(key value ...)``, which every zsh reads)."""
    body = "".join(f"  {_q(k)} {_q(v)}\n" for k, v in sorted(table.items()))
    return f"{name}=(\n{body})\n"


_WALK = """\
  local path=pyrt i=1 w skip=0
  while [ $i -lt $cword ]; do
    w=${words[$i]}
    if [ $skip = 1 ]; then skip=0
    elif [[ $w == -* ]]; then
      [[ $w != *=* && " ${_pyrt_vals[$path]} " == *" $w "* ]] && skip=1
    elif [[ " ${_pyrt_subs[$path]} " == *" $w "* ]]; then path="$path $w"
    fi
    i=$((i+1))
  done
"""


def bash(root: Command) -> str:
    t = _tables(root)
    return (
        "# bash completion for pyrt, generated from its parser (pyrt completion bash)\n"
        "declare -A _pyrt_subs _pyrt_opts _pyrt_vals _pyrt_choices _pyrt_words\n"
        + _assoc("_pyrt_subs", t["subs"]) + _assoc("_pyrt_opts", t["opts"])
        + _assoc("_pyrt_vals", t["vals"]) + _assoc("_pyrt_choices", t["choices"])
        + _assoc("_pyrt_words", t["words"])
        + "_pyrt() {\n"
        "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
        "  local words=(\"${COMP_WORDS[@]}\") cword=$COMP_CWORD\n"
        + _WALK
        + "  if [[ $prev == -* && \" ${_pyrt_vals[$path]} \" == *\" $prev \"* ]]; then\n"
          "    if [ -n \"${_pyrt_choices[$path $prev]}\" ]; then\n"
          "      COMPREPLY=($(compgen -W \"${_pyrt_choices[$path $prev]}\" -- \"$cur\"))\n"
          "    else\n"
          "      COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "    fi\n"
          "    return\n"
          "  fi\n"
          "  if [[ $cur == -* ]]; then\n"
          "    COMPREPLY=($(compgen -W \"${_pyrt_opts[$path]}\" -- \"$cur\"))\n"
          "  elif [ -n \"${_pyrt_subs[$path]}\" ]; then\n"
          "    COMPREPLY=($(compgen -W \"${_pyrt_subs[$path]}\" -- \"$cur\"))\n"
          "  elif [ -n \"${_pyrt_words[$path]}\" ]; then\n"
          "    COMPREPLY=($(compgen -W \"${_pyrt_words[$path]}\" -- \"$cur\"))\n"
          "  else\n"
          "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "  fi\n"
          "}\n"
          "complete -F _pyrt pyrt\n")


def zsh(root: Command) -> str:
    t = _tables(root)
    walk = _WALK.replace("local path=pyrt i=1", "local path=pyrt i=2").replace(
        "${words[$i]}", "${words[i]}")
    return (
        "#compdef pyrt\n"
        "# zsh completion for pyrt, generated from its parser (pyrt completion zsh)\n"
        "typeset -gA _pyrt_subs _pyrt_opts _pyrt_vals _pyrt_choices _pyrt_words\n"
        + _zassoc("_pyrt_subs", t["subs"]) + _zassoc("_pyrt_opts", t["opts"])
        + _zassoc("_pyrt_vals", t["vals"]) + _zassoc("_pyrt_choices", t["choices"])
        + _zassoc("_pyrt_words", t["words"])
        + "_pyrt() {\n"
          "  local cword=$CURRENT cur=${words[CURRENT]} prev=${words[CURRENT-1]}\n"
        + walk
        + "  if [[ $prev == -* && \" ${_pyrt_vals[$path]} \" == *\" $prev \"* ]]; then\n"
          "    if [[ -n ${_pyrt_choices[$path $prev]} ]]; then\n"
          "      compadd -- ${=_pyrt_choices[$path $prev]}\n"
          "    else\n"
          "      _files\n"
          "    fi\n"
          "    return\n"
          "  fi\n"
          "  if [[ $cur == -* ]]; then\n"
          "    compadd -- ${=_pyrt_opts[$path]}\n"
          "  elif [[ -n ${_pyrt_subs[$path]} ]]; then\n"
          "    compadd -- ${=_pyrt_subs[$path]}\n"
          "  elif [[ -n ${_pyrt_words[$path]} ]]; then\n"
          "    compadd -- ${=_pyrt_words[$path]}\n"
          "  else\n"
          "    _files\n"
          "  fi\n"
          "}\n"
          "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n"
          "  _pyrt \"$@\"\n"
          "else\n"
          "  compdef _pyrt pyrt\n"
          "fi\n")


# -- fish ------------------------------------------------------------------------------------

def fish(root: Command) -> str:
    t = _tables(root)
    out = ["# fish completion for pyrt, generated from its parser (pyrt completion fish)\n"]

    def switch(fn: str, table: dict[str, str]) -> None:
        out.append(f"function {fn}\n    switch $argv[1]\n")
        for k, v in sorted(table.items()):
            if v:
                out.append(f"        case {_fishq(k)}\n            echo {_fishq(v)}\n")
        out.append("    end\nend\n")

    switch("__pyrt_subs", t["subs"])
    switch("__pyrt_vals", t["vals"])
    out.append(
        "function __pyrt_path\n"
        "    set -l path pyrt\n"
        "    set -l skip 0\n"
        "    for w in (commandline -opc)[2..-1]\n"
        "        if test $skip = 1\n"
        "            set skip 0\n"
        "        else if string match -q -- '-*' $w\n"
        "            if not string match -q -- '*=*' $w\n"
        "                and contains -- $w (string split ' ' -- (__pyrt_vals \"$path\"))\n"
        "                set skip 1\n"
        "            end\n"
        "        else if contains -- $w (string split ' ' -- (__pyrt_subs \"$path\"))\n"
        "            set path \"$path $w\"\n"
        "        end\n"
        "    end\n"
        "    echo $path\n"
        "end\n"
        "function __pyrt_at\n"
        "    test (__pyrt_path) = $argv[1]\n"
        "end\n"
        "complete -c pyrt -e\n")
    for path, c in root.paths():
        key = _fishq(" ".join(path))
        cond = f"-n \"__pyrt_at {key}\""
        for name, sub in c.subs.items():
            out.append(f"complete -c pyrt -f {cond} -a {_fishq(name)} -d {_fishq(sub.help)}\n")
        if c.words:
            out.append(f"complete -c pyrt -f {cond} -a {_fishq(' '.join(c.words))}\n")
        for names, takes, choices, _metavar, help_text in c.options:
            flags = []
            for n in names:
                if n.startswith("--"):
                    flags.append(f"-l {_fishq(n[2:])}")
                elif len(n) == 2:
                    flags.append(f"-s {_fishq(n[1:])}")
                else:
                    flags.append(f"-o {_fishq(n[1:])}")
            extra = " -r" if takes else ""
            if choices:
                extra += f" -f -a {_fishq(' '.join(choices))}"
            out.append(f"complete -c pyrt {cond} {' '.join(flags)}{extra} "
                       f"-d {_fishq(help_text)}\n")
    return "".join(out)


# -- man pages -------------------------------------------------------------------------------

def _roff(text: str) -> str:
    text = text.replace("\\", "\\e")
    lines = []
    for line in text.splitlines() or [""]:
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line.replace("-", "\\-"))
    return "\n".join(lines)


def man_pages(root: Command, version: str, date: str) -> dict[str, str]:
    """File name -> roff source: ``pyrt.1`` and ``pyrt-CMD[-SUB].1`` per command."""
    pages = {}
    for c in root.walk():
        name = "-".join(c.path)
        title = name.upper()
        usage = " ".join(c.path) + (" [OPTIONS]" if c.options else "") + \
            (" COMMAND" if c.subs else "") + "".join(f" {m}" for m, _ in c.positionals)
        out = [f'.TH "{title}" "1" "{date}" "pyrt {version}" "pyrt Manual"',
               ".SH NAME", f"{_roff(name)} \\- {_roff(c.help or ' '.join(c.path))}",
               ".SH SYNOPSIS", f".B {_roff(usage)}"]
        if c.help:
            out += [".SH DESCRIPTION", _roff(c.help)]
        if c.positionals:
            out.append(".SH ARGUMENTS")
            for m, h in c.positionals:
                out += [".TP", f".I {_roff(m)}", _roff(h or "")]
        if c.options:
            out.append(".SH OPTIONS")
            for names, takes, choices, metavar, h in c.options:
                head = ", ".join(f"\\fB{_roff(n)}\\fR" for n in names)
                if takes:
                    head += f" \\fI{_roff(metavar)}\\fR"
                body = h or ""
                if choices:
                    body += (" " if body else "") + "(one of: " + ", ".join(choices) + ")"
                out += [".TP", head, _roff(body)]
        if c.subs:
            out.append(".SH COMMANDS")
            for sub_name in c.primary:
                sub = c.subs[sub_name]
                out += [".TP", f"\\fB{_roff('-'.join(sub.path))}(1)\\fR", _roff(sub.help)]
        parent = "-".join(c.path[:-1])
        out += [".SH SEE ALSO", f"\\fB{_roff(parent)}(1)\\fR" if parent else
                "https://github.com/ (pyrt's docs/ directory)"]
        pages[f"{name}.1"] = "\n".join(out) + "\n"
    return pages


def write_man(directory: str, root: Command | None = None) -> list[str]:
    import datetime
    import os

    from .. import __version__

    root = root or tree()
    os.makedirs(directory, exist_ok=True)
    date = datetime.date.today().isoformat()
    written = []
    for fname, text in sorted(man_pages(root, __version__, date).items()):
        path = os.path.join(directory, fname)
        with open(path, "w") as f:
            f.write(text)
        written.append(path)
    return written


# -- the command -----------------------------------------------------------------------------

def _p_completion(cmd) -> None:
    c = cmd("completion", "Generate the shell completion script (bash, zsh, fish) or the man "
            "pages (man DIR), from pyrt's parser", cmd_completion)
    c.add_argument("shell", choices=("bash", "zsh", "fish", "man"), metavar="SHELL",
                   help="bash, zsh, fish, or man (then the directory to write the pages to)")
    c.add_argument("directory", nargs="?", metavar="DIR", help="where man pages are written")


PARSERS = {"completion": _p_completion}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


def cmd_completion(args) -> int:
    from ..errors import UsageError

    if args.shell == "man":
        if not args.directory:
            raise UsageError("completion man needs the directory to write the pages to")
        for path in write_man(args.directory):
            print(path)
        return 0
    if args.directory:
        raise UsageError(f"completion {args.shell} takes no directory")
    sys.stdout.write({"bash": bash, "zsh": zsh, "fish": fish}[args.shell](tree()))
    return 0
