"""The command line as data: every command and subcommand with its options and
positional arguments, read from the argparse parsers themselves (the core's and
the installed plugins').  Shell completion (:mod:`.completion`) and the man pages
(:mod:`.manpages`) are generated from it, so neither can drift from the parser.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: what a positional argument names, by its metavar: the shells complete these from
#: the store (``pyrt ps -a``, ``pyrt images``, ``pyrt volume ls``, ``pyrt network ls``)
KINDS = (("CONTAINER", "container"), ("IMAGE", "image"), ("VOLUME", "volume"),
         ("NETWORK", "network"))


@dataclass
class Option:
    flags: list            # ["-d", "--detach"]
    help: str
    takes_value: bool
    metavar: str = ""
    choices: list = field(default_factory=list)


@dataclass
class Positional:
    name: str              # the metavar as usage shows it
    kind: str              # container, image, volume, network, or "" (anything)
    repeats: bool          # nargs + or * (or REMAINDER: the rest of the line)
    optional: bool
    rest: bool = False     # REMAINDER: everything after it is the container's command
    choices: list = field(default_factory=list)


@dataclass
class Command:
    path: tuple            # ("volume", "ls")
    help: str
    usage: str
    aliases: list = field(default_factory=list)
    options: list = field(default_factory=list)
    positionals: list = field(default_factory=list)
    subcommands: list = field(default_factory=list)   # names, aliases included


def _kind(metavar: str) -> str:
    upper = metavar.upper()
    for word, kind in KINDS:
        if word in upper:
            return kind
    return ""


def _metavar(action) -> str:
    m = action.metavar
    if isinstance(m, tuple):
        m = " ".join(m)
    return m or action.dest.upper()


def _is_subparsers(action) -> bool:
    return action.__class__.__name__ == "_SubParsersAction"


def walk(parser, path: tuple = (), help: str = "", aliases=()) -> list:
    """Every command under ``parser`` (itself first), depth first, in the parser's order;
    hidden options (help=SUPPRESS) are left out."""
    import argparse

    cmd = Command(path=path, help=help or (parser.description or ""), aliases=list(aliases),
                  usage=parser.format_usage().strip().removeprefix("usage: "))
    children = []
    for action in parser._actions:
        if _is_subparsers(action):
            helps = {a.dest: (a.help or "") for a in action._choices_actions}
            seen: dict = {}
            for name, sub in action.choices.items():
                seen.setdefault(id(sub), (name, sub, []))[2].append(name)
            for name, sub, names in seen.values():
                cmd.subcommands.extend(names)
                children.append((name, sub, names[1:], helps.get(name, "")))
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            takes = action.nargs != 0
            cmd.options.append(Option(flags=list(action.option_strings), help=action.help or "",
                                      takes_value=takes, metavar=_metavar(action) if takes else "",
                                      choices=[str(c) for c in (action.choices or ())]))
        else:
            mv = _metavar(action)
            rest = action.nargs == argparse.REMAINDER
            cmd.positionals.append(Positional(
                name=mv, kind=_kind(mv), rest=rest,
                repeats=action.nargs in ("+", "*") or rest,
                optional=action.nargs in ("?", "*") or rest,
                choices=[str(c) for c in (action.choices or ())]))
    out = [cmd]
    for name, sub, alias_names, sub_help in children:
        out.extend(walk(sub, path + (name,), sub_help, alias_names))
    return out


def tree() -> list:
    """The whole command line: ``pyrt`` itself, then every command (plugins' included)."""
    from .main import build_parser

    return walk(build_parser(), ())
