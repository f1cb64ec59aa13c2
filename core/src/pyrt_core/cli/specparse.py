"""``run`` and ``create`` command lines, parsed without argparse.

argparse costs ``run`` ~10 ms before any work: its import (``gettext``, ``locale``,
``shutil``) and the ~100 ``add_argument`` calls of run's flags, each of which makes a
help formatter.  The commands' builders (``cli.containers.run``'s ``PARSERS`` and the
plugins' ``pyrt.command_flags``) are called here with :class:`SpecParser`, which records
what they declare, and :func:`parse` reads the plain forms of the command line with
those declarations into the namespace argparse would give:

* ``--flag``, ``--flag VALUE``, ``--flag=VALUE``, ``-f``, ``-f VALUE``, ``-fVALUE``,
  ``-f=VALUE`` and
  clusters of one-letter flags (``-dit``, ``-itp 80``), as argparse reads them;
* the actions ``store`` (with ``type`` and ``choices``), ``store_true``,
  ``store_false``, ``store_const``, ``append`` and ``count``; ``nargs`` ``?``; the
  positionals ``IMAGE`` and ``COMMAND...`` (everything after the image is the
  command's, as argparse's ``REMAINDER``);
* the global options before the command (:func:`pyrt_core.cli.quick` reads them) and
  after it.

Anything else gives None and ``cli.main`` builds the argparse parser, which accepts or
refuses the line as always: ``--help``, an unknown or abbreviated flag, ``--``, a
value that starts with ``-`` (but a negative number), ``=`` after a flag that takes
no value, a bad
``type`` or ``choices`` value (argparse's error message), an action or ``nargs`` not
listed above (a plugin's custom ``Action``).  ``tests/unit/test_specparse.py`` checks,
line by line, that the result is argparse's.

Keep this module free of imports: it runs before every ``run``.
"""
from __future__ import annotations

#: argparse's constants (``argparse.SUPPRESS``, ``argparse.REMAINDER``), without argparse
SUPPRESS = "==SUPPRESS=="
REMAINDER = "..."
OPTIONAL = "?"

#: the commands read here
COMMANDS = ("run", "create")

_ACTIONS = ("store", "store_true", "store_false", "store_const", "append", "count")


class Spec:
    """One ``add_argument`` call, as argparse's Action would hold it (``dest`` is read by
    the plugins' flag recorder, cli.extensions)."""

    def __init__(self, flags: tuple, kw: dict) -> None:
        self.flags = flags
        self.action = kw.get("action", "store")
        self.nargs = kw.get("nargs")
        self.type = kw.get("type")
        self.choices = kw.get("choices")
        self.const = kw.get("const")
        positional = not flags[0].startswith("-")
        if "dest" in kw:
            dest = kw["dest"]
        elif positional:
            dest = flags[0]
        else:
            longs = [f for f in flags if f.startswith("--")]
            dest = (longs or list(flags))[0].lstrip("-").replace("-", "_")
        self.dest = dest
        self.positional = positional
        if self.action == "store_true":
            default = kw.get("default", False)
        elif self.action == "store_false":
            default = kw.get("default", True)
        else:
            default = kw.get("default")
        self.default = default
        # only what parse() can read exactly as argparse does
        self.supported = (isinstance(self.action, str) and self.action in _ACTIONS
                          and (self.nargs is None or (self.nargs == OPTIONAL and not positional)
                               or (self.nargs == REMAINDER and positional))
                          and (not positional or len(flags) == 1) and not kw.get("required"))

    def takes_value(self) -> bool:
        return self.action in ("store", "append")


class _Group:
    """``add_argument_group``/``add_mutually_exclusive_group``: the same parser's
    arguments (a mutually exclusive group is checked by argparse only)."""

    def __init__(self, parser: SpecParser, exclusive: bool) -> None:
        self._parser = parser
        if exclusive:
            parser.supported = False

    def add_argument(self, *flags, **kw):
        return self._parser.add_argument(*flags, **kw)


class SpecParser:
    """What the builders declare, recorded (the subset of ArgumentParser they call)."""

    def __init__(self, add_help: bool = True) -> None:
        self.options: dict[str, Spec] = {}
        self.specs: list[Spec] = []
        self.positionals: list[Spec] = []
        self.defaults: dict = {}
        self.supported = True
        if add_help:
            self.add_argument("-h", "--help", action="help", default=SUPPRESS)

    def add_argument(self, *flags, **kw):
        spec = Spec(flags, kw)
        if spec.action == "help":
            spec.supported = True  # parse() leaves --help to argparse
        if not spec.supported:
            self.supported = False
        self.specs.append(spec)
        if spec.positional:
            self.positionals.append(spec)
        else:
            for f in flags:
                if f.startswith("-") and not f.startswith("--") and len(f) != 2:
                    self.supported = False  # -long options: argparse's prefix rules
                self.options[f] = spec
        return spec

    def add_argument_group(self, *args, **kw):
        return _Group(self, exclusive=False)

    def add_mutually_exclusive_group(self, *args, **kw):
        return _Group(self, exclusive=True)

    def set_defaults(self, **kw) -> None:
        self.defaults.update(kw)
        for spec in self.specs:
            if spec.dest in kw:
                spec.default = kw[spec.dest]

    def __getattr__(self, name):  # anything else a builder calls: argparse's to do
        if name.startswith("__"):
            raise AttributeError(name)
        self.supported = False
        return lambda *a, **k: None


def build(word: str) -> SpecParser | None:
    """The command's declarations (its builder's, the global options', the plugins'),
    or None when something in them is not read here."""
    from .containers import run
    from .extensions import add_plugin_flags
    from .quick import add_global_options

    made: list[SpecParser] = []

    def cmd(name, help, func, aliases=(), add_help=True, storage_opt=True):
        sp = SpecParser(add_help=add_help)
        add_global_options(sp, suppress=True, storage_opt=storage_opt)
        sp.set_defaults(func=func)
        made.append(sp)
        return sp

    run.PARSERS[word](cmd)
    if len(made) != 1:
        return None
    add_plugin_flags(word, made[0])
    sp = made[0]
    names = [p.dest for p in sp.positionals]
    if not sp.supported or names != ["image", "cmd"] or sp.positionals[1].nargs != REMAINDER:
        return None
    return sp


def _negative_number(text: str) -> bool:
    """argparse's ``^-\\d+$|^-\\d*\\.\\d+$``: such a word is a value, not a flag."""
    body = text[1:]
    if body.isdigit() and body.isascii():
        return True
    whole, dot, frac = body.partition(".")
    return bool(dot) and (whole == "" or (whole.isdigit() and whole.isascii())) and \
        frac.isdigit() and frac.isascii()


def _is_value(text: str) -> bool:
    """Whether argparse takes ``text`` as an argument, not a flag (for the words this
    parser reads; ``--`` and other dash words are left to argparse)."""
    return not text.startswith("-") or text == "-" or _negative_number(text)


class _Refused(Exception):
    """The line is argparse's to read."""


def _convert(spec: Spec, text: str):
    if spec.type is not None:
        try:
            value = spec.type(text)
        except Exception:  # noqa: BLE001 - argparse's error message
            raise _Refused from None
    else:
        value = text
    if spec.choices is not None and value not in spec.choices:
        raise _Refused
    return value


def _apply(spec: Spec, out: dict, value) -> None:
    """Store one occurrence of the flag ``spec`` (``value``: its text, or None)."""
    a = spec.action
    if value == "--":
        raise _Refused  # argparse drops it from the flag's words
    if a == "store":
        if spec.nargs == OPTIONAL and value is None:
            # argparse: a str const goes through type and choices
            out[spec.dest] = _convert(spec, spec.const) if isinstance(spec.const, str) else spec.const
        else:
            out[spec.dest] = _convert(spec, value)
    elif a == "append":
        # argparse appends to a copy of what is there: the default list at first
        start = out[spec.dest] if spec.dest in out else spec.default
        items = list(start) if start and start != SUPPRESS else []
        items.append(_convert(spec, value))
        out[spec.dest] = items
    elif a == "store_true":
        out[spec.dest] = True
    elif a == "store_false":
        out[spec.dest] = False
    elif a == "store_const":
        out[spec.dest] = spec.const
    elif a == "count":
        start = out[spec.dest] if spec.dest in out else spec.default
        out[spec.dest] = (start if isinstance(start, int) else 0) + 1
    else:
        raise _Refused  # help


def _read(sp: SpecParser, words: list, out: dict) -> None:
    """The command's words after its name into ``out``."""
    j = 0
    while j < len(words):
        w = words[j]
        j += 1
        if not w.startswith("-"):
            # the image; the rest is the command's (argparse's REMAINDER; a "--" right
            # after the image argparse gives to the image's pattern, and drops)
            if j < len(words) and words[j] == "--":
                raise _Refused
            out["image"] = w
            out["cmd"] = list(words[j:])
            return
        if w.startswith("--"):
            if w == "--":
                raise _Refused
            flag, eq, value = w.partition("=")
            spec = sp.options.get(flag)
            if spec is None or (eq and not (spec.takes_value() or spec.nargs == OPTIONAL)):
                raise _Refused
            if eq:
                _apply(spec, out, value)
                continue
            j = _value_from_next(spec, words, j, out)
            continue
        if len(w) < 2:
            raise _Refused
        left, eq, value = w.partition("=")
        if eq and left in sp.options:  # -e=VALUE (argparse splits at "=" first)
            spec = sp.options[left]
            if not spec.takes_value():
                raise _Refused  # argparse reads what follows "=" as more flags
            _apply(spec, out, value)
            continue
        # -x, -xVALUE, -abc: one-letter flags, the first that takes a value ends the word
        k = 1
        while k < len(w):
            spec = sp.options.get("-" + w[k])
            if spec is None:
                raise _Refused
            rest = w[k + 1:]
            if spec.takes_value() or spec.nargs == OPTIONAL:
                if rest:
                    _apply(spec, out, rest)
                else:
                    j = _value_from_next(spec, words, j, out)
                break
            _apply(spec, out, None)
            k += 1
    raise _Refused  # no image: argparse's error


def _value_from_next(spec: Spec, words: list, j: int, out: dict) -> int:
    """A flag written alone: its value is the next word (``nargs`` ``?``: if that word is
    a value); returns the index after what it took."""
    if spec.nargs == OPTIONAL:
        if j < len(words) and _is_value(words[j]) and words[j] != "-":
            _apply(spec, out, words[j])
            return j + 1
        _apply(spec, out, None)
        return j
    if not spec.takes_value():
        _apply(spec, out, None)
        return j
    if j >= len(words) or not _is_value(words[j]):
        raise _Refused
    _apply(spec, out, words[j])
    return j + 1


def parse(argv):
    """The namespace argparse would give for the ``run``/``create`` line ``argv``, or None
    (see the module docstring)."""
    from .quick import Args, _globals

    out: dict = {"root": None, "runroot": None, "storage_driver": None, "storage_opt": None,
                 "config": None}
    i = _globals(argv, out)
    if i is None or argv[i] not in COMMANDS:
        return None
    word = argv[i]
    sp = build(word)
    if sp is None:
        return None
    out["command"] = word
    mine = dict(sp.defaults)
    for spec in sp.specs:
        if spec.positional or spec.action == "help" or spec.default == SUPPRESS:
            continue
        if spec.dest not in mine:
            mine[spec.dest] = spec.default
    given: dict = {}
    try:
        _read(sp, argv[i + 1:], given)
    except _Refused:
        return None
    # argparse converts a string default of a flag with a type that was not given
    for spec in sp.specs:
        if (not spec.positional and spec.dest not in given and isinstance(spec.default, str)
                and spec.type is not None and spec.default != SUPPRESS):
            try:
                mine[spec.dest] = _convert(spec, spec.default)
            except _Refused:
                return None
    mine.update(given)
    out.update(mine)
    return Args(**out)
