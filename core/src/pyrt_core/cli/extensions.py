"""Commands and flags that plugins add to the ``pyrt`` command line.

Two entry-point groups, read through the checked, cached entry-point index
(:mod:`pyrt_core.entrypoints`), so that choosing a command costs no scan of
the installed distributions and imports only the plugin module that builds it:

``pyrt.commands``
    ``NAME = module:build``: the plugin's command ``pyrt NAME``.  ``build(cmd)``
    is called as the core's own command builders are (``cmd(name, help, func,
    aliases=(), add_help=True, storage_opt=True)`` returns the argparse parser;
    the plugin adds its flags and ``func(args)`` runs the command).  Two
    distributions declaring the same command, or one naming a core command,
    is an error naming them.

``pyrt.command_flags``
    ``COMMAND = module:add_flags``: flags the plugin adds to a core command that
    is open to them (:data:`EXTENSIBLE`).  ``add_flags(group)`` adds arguments to
    an argparse argument group titled after the distribution; after parsing,
    their values are in ``args.plugin_options`` (``{dest: value}``, values left
    at None omitted), which the core hands to the plugins, e.g. as
    ``FetchOptions.settings`` of the image fetch that ``run`` and ``create`` make.

Only the commands of :data:`EXTENSIBLE` look for plugin flags (the others never
read the index for them: ``pyrt ps`` stays as lean as before).
"""
from __future__ import annotations

from ..errors import UsageError

COMMANDS_GROUP = "pyrt.commands"
FLAGS_GROUP = "pyrt.command_flags"

#: core commands plugins may add flags to
EXTENSIBLE = frozenset({"run", "create"})

#: commands that come from a plugin of this project, and the distribution to install for
#: them: the one place the core names plugin distributions, for the hint a user gets
#: when the plugin is missing (never imported)
SUGGESTED = {
    "pull": "pyrt-image-registry", "push": "pyrt-image-registry",
    "login": "pyrt-image-registry", "logout": "pyrt-image-registry",
    "network": "pyrt-network",
}


def _entries(group: str):
    from ..entrypoints import entry_points

    return entry_points(group)


def plugin_commands(core: frozenset | set = frozenset()) -> dict:
    """``{name: EntryPoint}`` of the installed plugins' commands (UsageError when two
    distributions declare one name, or a plugin one of the ``core`` names)."""
    out: dict = {}
    for ep in _entries(COMMANDS_GROUP):
        if ep.name in core:
            raise UsageError(f"plugin {ep.distribution} declares the command {ep.name!r}, which "
                             "is pyrt's own: uninstall it or ask its authors to rename it")
        if ep.name in out:
            raise UsageError(f"the command {ep.name!r} is declared by both {out[ep.name].distribution} "
                             f"and {ep.distribution}: uninstall one of them")
        out[ep.name] = ep
    return out


def add_plugin_command(ep, cmd) -> None:
    """Build a plugin's command with the core's ``cmd`` callback."""
    try:
        build = ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plugin is reported, not a traceback
        raise UsageError(f"the command {ep.name!r} of {ep.distribution} cannot be loaded: "
                         f"{type(e).__name__}: {e}") from None

    def plugin_cmd(*args, **kwargs):
        parser = cmd(*args, **kwargs)
        parser.set_defaults(_plugin_distribution=ep.distribution)
        return parser

    build(plugin_cmd)


def check_enabled(args, settings) -> None:
    """Refuse a plugin's command when the configuration disabled that plugin (every
    ``pyrt.plugins`` entry of its distribution is in ``settings.disabled_plugins``)."""
    dist = getattr(args, "_plugin_distribution", None)
    if dist is None or not settings.disabled_plugins:
        return
    from ..entrypoints import PLUGIN_GROUP

    names = [ep.name for ep in _entries(PLUGIN_GROUP) if ep.distribution == dist]
    if names and all(n in settings.disabled_plugins for n in names):
        raise UsageError(f"pyrt {args.command} comes with the plugin {dist}, which is disabled "
                         "(PYRT_DISABLE_PLUGINS or [plugins] disabled in the config file)")


def add_plugin_flags(command: str, parser) -> None:
    """Let the installed plugins add their flags to the core command ``command``."""
    if command not in EXTENSIBLE:
        return
    dests: list[str] = []
    for ep in _entries(FLAGS_GROUP):
        if ep.name != command:
            continue
        try:
            add = ep.load()
        except Exception as e:  # noqa: BLE001
            raise UsageError(f"the flags {ep.distribution} adds to {command!r} cannot be loaded: "
                             f"{type(e).__name__}: {e}") from None
        group = _Recorder(parser.add_argument_group(f"options of {ep.distribution}"))
        add(group)
        dests += group.dests
    parser.set_defaults(_plugin_dests=tuple(dests))


class _Recorder:
    """An argument group that remembers the destinations of the arguments added to it."""

    def __init__(self, group):
        self._group = group
        self.dests: list[str] = []

    def add_argument(self, *args, **kwargs):
        action = self._group.add_argument(*args, **kwargs)
        self.dests.append(action.dest)
        return action

    def __getattr__(self, name):
        return getattr(self._group, name)


def collect_plugin_options(args) -> None:
    """Put the plugin flags' values into ``args.plugin_options``."""
    dests = getattr(args, "_plugin_dests", ())
    args.plugin_options = {d: getattr(args, d) for d in dests if getattr(args, d, None) is not None}


def missing_command(word: str) -> UsageError | None:
    """The error for a command only an uninstalled plugin provides, else None."""
    dist = SUGGESTED.get(word)
    if dist is None:
        return None
    return UsageError(f"pyrt {word} comes with the plugin {dist}, which is not installed: "
                      f"install {dist} (pip install {dist})")
