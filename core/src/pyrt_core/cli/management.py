"""docker's management commands: ``container ls|inspect|rm|start|...|prune`` and ``image
ls|rm|inspect|pull|...|prune``, each the same parser and function as the top-level command
it stands for (``container ls`` is ``ps``, ``image rm`` is ``rmi``), built with the command
table's own builders under the management command's subparsers.  The plugins' commands
(``image pull``/``push``) resolve as ``pyrt pull`` does (cli/extensions.py).

Its own area of the command table (cli.main.AREAS): it imports the container and image
command modules, which never import it back."""
from __future__ import annotations


def _p_container(cmd) -> None:
    from .containers.inventory import cmd_container_cleanup, cmd_container_prune

    ctr = cmd("container", "Manage containers (ls, inspect, rm, start, stop, ..., prune)", None)
    csub = ctr.add_subparsers(dest="container_command", metavar="COMMAND")
    add_container_commands(csub, type(ctr))
    pr = csub.add_parser("prune", help="Remove all stopped containers")
    pr.add_argument("--force", "-f", action="store_true", help="do not ask (pyrt never asks)")
    pr.add_argument("--filter", action="append", default=[], metavar="FILTER",
                    help="only what matches: until=TIMESTAMP (created before it), "
                         "label=KEY[=VALUE] or label!=KEY[=VALUE]")
    pr.set_defaults(func=cmd_container_prune)
    cu = csub.add_parser("cleanup", help="(internal) the monitor's exit command")
    cu.add_argument("--run", type=int, default=None)
    cu.add_argument("container")
    cu.set_defaults(func=cmd_container_cleanup)
    ctr.set_defaults(func=lambda a: (ctr.print_help(), 0)[1])


def _p_image(cmd) -> None:
    from .images import cmd_image, cmd_image_prune
    from .quick import add_global_options

    ig = cmd("image", "Manage images (ls, rm, inspect, tag, pull, push, save, load, prune)",
             cmd_image)
    isub = ig.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(ig))
    add_image_commands(isub, type(ig))
    pr = isub.add_parser("prune", help="Remove unused images", description="Remove unused images")
    add_global_options(pr, suppress=True)
    pr.set_defaults(func=cmd_image_prune)
    pr.add_argument("--all", "-a", action="store_true", help="remove every image no container uses")
    pr.add_argument("--force", "-f", action="store_true", help="do not ask")
    pr.add_argument("--filter", action="append", default=[], metavar="FILTER",
                    help="only what matches: until=TIMESTAMP (created before it), "
                         "label=KEY[=VALUE] or label!=KEY[=VALUE]")


PARSERS = {"container": _p_container, "image": _p_image}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)

#: container SUBCOMMAND -> (top-level command, its other names)
CONTAINER = {
    "ls": ("ps", ("list", "ps")), "inspect": ("inspect", ()), "rm": ("rm", ("remove",)),
    "create": ("create", ()), "run": ("run", ()), "start": ("start", ()), "stop": ("stop", ()),
    "restart": ("restart", ()), "kill": ("kill", ()), "wait": ("wait", ()),
    "logs": ("logs", ()), "exec": ("exec", ()), "attach": ("attach", ()), "top": ("top", ()),
    "pause": ("pause", ()), "unpause": ("unpause", ()), "stats": ("stats", ()),
    "update": ("update", ()), "rename": ("rename", ()),
}
#: image SUBCOMMAND -> (top-level command, its other names)
IMAGE = {
    "ls": ("images", ("list",)), "rm": ("rmi", ("remove",)), "inspect": ("inspect", ()),
    "tag": ("tag", ()), "save": ("save", ()), "load": ("load", ()),
    "pull": ("pull", ()), "push": ("push", ()),
}


def sub_cmd(subparsers, parser_class):
    """A ``cmd`` callback (the one cli.main gives the builders) making parsers under
    ``subparsers``; ``made`` records them by name."""
    from .quick import add_global_options

    made = {}

    def cmd(name, help, func, aliases=(), add_help=True, storage_opt=True):
        sp = subparsers.add_parser(name, help=help, description=help, aliases=list(aliases),
                                   add_help=add_help)
        add_global_options(sp, suppress=True, storage_opt=storage_opt)
        sp.set_defaults(func=func)
        made[name] = sp
        return sp

    cmd.made = made
    return cmd


def _renamed(cmd, name, aliases):
    """``cmd`` for a builder that names its command ``original``: build it as ``name``."""
    def build(_original, help, func, aliases=(), **kw):  # noqa: ARG001 - the alias's own
        return cmd(name, help, func, aliases=extra, **kw)
    extra = aliases
    return build


def add_container_commands(subparsers, parser_class) -> None:
    import importlib

    from . import extensions
    from .containers import MODULE_OF
    from .containers.inventory import _p_inspect

    cmd = sub_cmd(subparsers, parser_class)
    for name, (top, aliases) in CONTAINER.items():
        if top == "inspect":
            _p_inspect(cmd, "inspect", kind="container")
            continue
        module = importlib.import_module(f"{__package__}.containers.{MODULE_OF[top]}")
        module.PARSERS[top](_renamed(cmd, name, aliases))
        extensions.add_plugin_flags(top, cmd.made[name])


def add_image_commands(subparsers, parser_class) -> None:
    from . import extensions
    from .containers.inventory import _p_inspect
    from .images import PARSERS

    cmd = sub_cmd(subparsers, parser_class)
    plugins = None
    for name, (top, aliases) in IMAGE.items():
        if top == "inspect":
            _p_inspect(cmd, "inspect", kind="image")
        elif top in PARSERS:
            PARSERS[top](_renamed(cmd, name, aliases))
        else:  # a plugin's command (pull, push): whatever `pyrt TOP` is
            if plugins is None:
                plugins = extensions.plugin_commands()
            ep = plugins.get(top)
            if ep is not None:
                extensions.add_plugin_command(ep, _renamed(cmd, name, aliases))
            else:
                missing = extensions.missing_command(top)
                sp = cmd(name, f"(needs a plugin) {missing}", _refuse(missing))
                sp.add_argument("rest", nargs="*", help="(ignored)")


def _refuse(error):
    def func(args):
        raise error
    return func
