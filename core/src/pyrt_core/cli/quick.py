"""The command lines of the everyday commands, parsed without argparse.

argparse imports ``re`` and ``gettext`` (and with them ``enum``, ``locale``...),
~10-15 ms before any work, on commands whose whole work is a few milliseconds:
``ps``, ``rm``, ``stop``, ``kill``, ``wait``, ``start``, ``inspect``, ``volume ls``,
``volume inspect`` and conmon's exit command
``container cleanup`` (run after every detached container's exit), and
``pyrt --version``.  :func:`parse` reads the plain forms of those command lines
into the namespace argparse would give (the unit test checks that, line by line,
against the real parser); anything else, from ``--help`` to an unknown or
abbreviated flag, a global option after the command or a bad value, gives None and
``cli.main`` builds the argparse parser, which accepts or refuses it as always.

Keep this module free of imports beyond the command modules it names.
"""
from __future__ import annotations

#: the global options (:func:`add_global_options`): flag -> destination; storage_opt appends
GLOBAL = {"--root": "root", "--runroot": "runroot", "--storage-driver": "storage_driver",
          "-s": "storage_driver", "--storage-opt": "storage_opt", "--config": "config"}


def add_global_options(p, suppress: bool, storage_opt: bool = True) -> None:
    """The global options on parser ``p``: argparse's (the whole command line's, and each
    command's with ``suppress``: given after the command they override), or
    :mod:`pyrt_core.cli.specparse`'s recorder."""
    # argparse compares its SUPPRESS by identity: its own object for an argparse parser,
    # the same text for the recorder (which does not import argparse)
    import sys

    argparse = sys.modules.get("argparse")
    d = (argparse.SUPPRESS if argparse is not None else "==SUPPRESS==") if suppress else None
    p.add_argument("--root", default=d, help="store root (default /var/lib/pyrt)")
    p.add_argument("--runroot", default=d, help="run-state root (default /run/pyrt)")
    p.add_argument("--storage-driver", "-s", default=d, metavar="NAME",
                   help="storage driver (overlay, btrfs, devicemapper, vfs, ...)")
    if storage_opt:
        p.add_argument("--storage-opt", action="append", default=d, metavar="OPT",
                       help="storage driver option DRIVER.KEY=VALUE (repeatable)")
    p.add_argument("--config", default=d, metavar="FILE", help="TOML config file (default /etc/pyrt/pyrt.toml)")


# per command: (module, function, {flag: (dest, kind)}, positional dest, minimum count)
# kind: True (store_true), "int", "str" (any value), or a tuple of the accepted choices
_TRUE = True
_STR = "str"
COMMANDS: dict = {
    "ps": ("inventory", "cmd_ps",
           {"--all": ("all", _TRUE), "-a": ("all", _TRUE), "--quiet": ("quiet", _TRUE),
            "-q": ("quiet", _TRUE), "--no-trunc": ("no_trunc", _TRUE)},
           None, 0),
    "rm": ("inventory", "cmd_rm",
           {"--force": ("force", _TRUE), "-f": ("force", _TRUE), "--volumes": ("volumes", _TRUE),
            "-v": ("volumes", _TRUE)},
           "containers", 1),
    "stop": ("lifecycle", "cmd_stop",
             {"--time": ("time", "int"), "-t": ("time", "int"), "--all": ("all", _TRUE),
              "-a": ("all", _TRUE)},
             "containers", 0),
    "wait": ("lifecycle", "cmd_wait", {}, "containers", 1),
    "start": ("lifecycle", "cmd_start",
              {"--attach": ("attach", _TRUE), "-a": ("attach", _TRUE),
               "--interactive": ("interactive", _TRUE), "-i": ("interactive", _TRUE),
               "--all": ("all", _TRUE)},
              "containers", 0),
    "inspect": ("inventory", "cmd_inspect",
                {"--format": ("format", _STR), "-f": ("format", _STR),
                 "--type": ("type", ("image", "container")), "--size": ("size", _TRUE),
                 "-s": ("size", _TRUE)},
                "names", 1),
    # volume ls and inspect (the benchmark's commands, docs/volumes.md): "volume WORD"
    "volume ls": (".volumes", "cmd_ls",
                  {"--quiet": ("quiet", _TRUE), "-q": ("quiet", _TRUE), "--format": ("format", _STR)},
                  None, 0),
    "volume inspect": (".volumes", "cmd_inspect",
                       {"--format": ("format", _STR), "-f": ("format", _STR)}, "names", 1),
}
COMMANDS["volume list"] = COMMANDS["volume ls"]
#: the defaults argparse gives each command's flags
_DEFAULTS: dict = {"ps": {"all": False, "quiet": False, "no_trunc": False, "format": None,
                    "filter": [], "last": None, "latest": False, "size": False},
             "rm": {"force": False, "volumes": False},
             "stop": {"time": None, "all": False},
             "wait": {},
             "start": {"attach": False, "interactive": False, "all": False, "detach_keys": None},
             "inspect": {"type": None, "format": None, "size": False},
             "volume ls": {"command": "volume", "volume_command": "ls", "quiet": False,
                           "filter": [], "format": None},
             "volume list": {"command": "volume", "volume_command": "list", "quiet": False,
                             "filter": [], "format": None},
             "volume inspect": {"command": "volume", "volume_command": "inspect", "format": None}}


class Args:
    """What argparse's Namespace holds, without argparse."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return f"Args({self.__dict__!r})"


def is_version(argv) -> bool:
    """``pyrt [GLOBAL OPTIONS] --version`` (or ``-v``)."""
    if not argv or argv[-1] not in ("--version", "-v"):
        return False
    return argv[:-1] == [] or _globals(argv[:-1] + ["word"], {}) == len(argv) - 1


def _globals(argv, out: dict) -> int | None:
    """Read the global options at the start of ``argv`` into ``out``; the index of the
    command word, or None for a form left to argparse."""
    i = 0
    while i < len(argv):
        a = argv[i]
        flag, eq, value = a.partition("=")
        if not a.startswith("-"):
            return i
        if flag not in GLOBAL or (eq and flag == "-s"):
            return None
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None  # argparse's error
            value = argv[i + 1]
            i += 1
        i += 1
        dest = GLOBAL[flag]
        if dest == "storage_opt":
            out[dest] = (out.get(dest) or []) + [value]
        else:
            out[dest] = value
    return None


def _int(text: str):
    """argparse's ``type=int``: int() of the text, None when it fails."""
    try:
        return int(text)
    except ValueError:
        return None


def parse(argv):
    """The namespace argparse would give for ``argv``, or None (see the module docstring)."""
    out: dict = {"root": None, "runroot": None, "storage_driver": None, "storage_opt": None,
                 "config": None}
    i = _globals(argv, out)
    if i is None:
        return None
    word, rest = argv[i], argv[i + 1:]
    if word == "container":
        return _cleanup(rest, out)
    if word == "volume" and rest:
        word, rest = f"volume {rest[0]}", rest[1:]
    spec = COMMANDS.get(word)
    if spec is None:
        return None
    module, func, flags, pos_dest, pos_min = spec
    out["command"] = word
    out.update(_DEFAULTS[word])
    positional: list = []
    flag_after = False  # a flag after the positionals: argparse refuses more positionals
    j = 0
    while j < len(rest):
        a = rest[j]
        j += 1
        if a == "-" or not a.startswith("-"):
            if flag_after:
                return None
            positional.append(a)
            continue
        flag_after = bool(positional)
        if a.startswith("--"):
            flag, eq, value = a.partition("=")
            got = flags.get(flag)
            if got is None:
                return None
            dest, kind = got
            if kind is _TRUE:
                if eq:
                    return None
                out[dest] = True
                continue
            if not eq:
                if j >= len(rest) or rest[j].startswith("-"):
                    return None
                value = rest[j]
                j += 1
        else:  # short flags: -a, -aq; a value only as a separate word (-t 5)
            if len(a) > 2:
                if not all(flags.get("-" + ch, (None, None))[1] is _TRUE for ch in a[1:]):
                    return None
                for ch in a[1:]:
                    out[flags["-" + ch][0]] = True
                continue
            got = flags.get(a)
            if got is None:
                return None
            dest, kind = got
            if kind is _TRUE:
                out[dest] = True
                continue
            if j >= len(rest) or rest[j].startswith("-"):
                return None
            value = rest[j]
            j += 1
        if kind == "int":
            value = _int(value)
            if value is None:
                return None
        elif kind == _STR:
            pass
        elif value not in kind:
            return None
        out[dest] = value
    if pos_dest is None:
        if positional:
            return None
    else:
        if len(positional) < pos_min:
            return None
        out[pos_dest] = positional
    out["func"] = _command(module, func)
    return Args(**out)


def _cleanup(rest, out: dict):
    """``container cleanup --run N ID``: conmon's exit command."""
    if len(rest) != 4 or rest[0] != "cleanup" or rest[1] != "--run" or rest[3].startswith("-"):
        return None
    run = _int(rest[2])
    if run is None:
        return None
    out.update(command="container", container_command="cleanup", run=run, container=rest[3],
               func=_command("inventory", "cmd_container_cleanup"))
    return Args(**out)


def _command(module: str, name: str):
    """``module``: a module of cli.containers, or with a leading "." of cli."""
    import sys

    path = module if module.startswith(".") else f".containers.{module}"
    full = f"{__package__}{path}"
    __import__(full)  # not importlib.import_module: importlib imports warnings (~1 ms)
    return getattr(sys.modules[full], name)
