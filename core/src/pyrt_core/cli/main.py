"""``pyrt`` command line: parsing and dispatch.

Only argparse and the standard library are imported before a command is
chosen; each command's module is imported when it runs.  Errors print one
line, ``Error: <message>``, and exit with docker's codes (125 for pyrt's
own errors, 126/127 when the container's command cannot run / is not
found).
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 125 like docker's."""

    def error(self, message):  # noqa: D401
        sys.stderr.write(f"Error: {self.prog}: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(125)


def _global_options(p: argparse.ArgumentParser, suppress: bool, storage_opt: bool = True) -> None:
    d = argparse.SUPPRESS if suppress else None
    p.add_argument("--root", default=d, help="store root (default /var/lib/pyrt)")
    p.add_argument("--runroot", default=d, help="run-state root (default /run/pyrt)")
    p.add_argument("--storage-driver", "-s", default=d, metavar="NAME",
                   help="storage driver (overlay, btrfs, devicemapper, vfs, ...)")
    if storage_opt:
        p.add_argument("--storage-opt", action="append", default=d, metavar="OPT",
                       help="storage driver option DRIVER.KEY=VALUE (repeatable)")
    p.add_argument("--config", default=d, metavar="FILE", help="TOML config file (default /etc/pyrt/pyrt.toml)")


def build_parser() -> Parser:
    p = Parser(prog="pyrt", description="pyrt: a pluggable container engine.")
    p.add_argument("--version", "-v", action="version", version=f"pyrt version {__version__}")
    _global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def cmd(name, help, aliases=(), add_help=True, storage_opt=True):
        sp = sub.add_parser(name, help=help, description=help, aliases=list(aliases),
                            add_help=add_help)
        _global_options(sp, suppress=True, storage_opt=storage_opt)
        return sp

    # `run -h` means --hostname, as in docker: run's help is --help only
    # and, as in docker and podman, `run --storage-opt` is per container (size=...);
    # driver options go before the command: `pyrt --storage-opt overlay.x=y run ...`
    r = cmd("run", "Run a command in a new container", add_help=False, storage_opt=False)
    add_container_flags(r)
    from .resource_flags import add_resource_flags

    add_resource_flags(r)
    r.add_argument("--rm", action="store_true", help="remove the container when it exits")
    r.add_argument("image", metavar="IMAGE")
    r.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")

    l = cmd("load", "Load an image from an archive (OCI layout dir/tar, docker-archive tar)")
    l.add_argument("--input", "-i", metavar="PATH", help="archive or OCI layout to read (default: stdin)")
    l.add_argument("--quiet", "-q", action="store_true", help="print only the image ids")

    im = cmd("images", "List images")
    im.add_argument("--quiet", "-q", action="store_true", help="only show image ids")
    im.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    im.add_argument("--format", choices=("table", "json"), default="table")
    im.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")

    ins = cmd("inspect", "Show low-level information on images or containers")
    ins.add_argument("--type", choices=("image", "container"), default=None)
    ins.add_argument("names", nargs="+", metavar="NAME")

    t = cmd("tag", "Create a name TARGET that refers to SOURCE")
    t.add_argument("source", metavar="SOURCE")
    t.add_argument("target", metavar="TARGET")

    rmi = cmd("rmi", "Remove images")
    rmi.add_argument("--force", "-f", action="store_true", help="remove even if containers use it")
    rmi.add_argument("images", nargs="+", metavar="IMAGE")

    ps = cmd("ps", "List containers")
    ps.add_argument("--all", "-a", action="store_true", help="show all containers (default: running)")
    ps.add_argument("--quiet", "-q", action="store_true", help="only show ids")
    ps.add_argument("--no-trunc", action="store_true")
    ps.add_argument("--format", choices=("table", "json"), default="table")

    rm = cmd("rm", "Remove containers")
    rm.add_argument("--force", "-f", action="store_true", help="(running containers need `pyrt stop` first)")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")

    info = cmd("info", "Show the engine's plugins, storage drivers and kernel features")
    info.add_argument("--format", choices=("text", "json"), default="text")

    cmd("version", "Show the pyrt version")
    return p


def add_container_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE",
                   help="set an environment variable (KEY alone passes the host's value)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE", help="read variables from a file")
    p.add_argument("--workdir", "-w", metavar="DIR", help="working directory inside the container")
    p.add_argument("--user", "-u", metavar="USER[:GROUP]", help="user name or uid, and group")
    p.add_argument("--hostname", "-h", metavar="NAME", help="container host name")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's entrypoint")
    p.add_argument("--network", "--net", default="none", metavar="MODE",
                   help="network mode: none (loopback only, default) or host")
    p.add_argument("--volume", "-v", action="append", default=[], metavar="SRC:DST[:ro]",
                   help="bind-mount a host path")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--userns", metavar="MODE", choices=("host", "private"), default=None,
                   help="user namespace: host (default) or private (maps root to 100000:65536 unless --uidmap)")
    p.add_argument("--uidmap", action="append", default=[], metavar="CTR:HOST:SIZE", help="uid mapping (implies a user namespace)")
    p.add_argument("--gidmap", action="append", default=[], metavar="CTR:HOST:SIZE", help="gid mapping (implies a user namespace)")
    p.add_argument("--interactive", "-i", action="store_true", help="keep stdin open")
    p.add_argument("--tty", "-t", action="store_true", help="allocate a pseudo-terminal (set TERM)")
    p.add_argument("--storage-opt", action="append", default=[], dest="container_storage_opt",
                   metavar="KEY=VALUE", help="storage option for this container's layer (e.g. size=1G)")
    p.add_argument("--pull", choices=("missing", "always", "never"), default="missing",
                   help="pull the image: missing (default), always, never")
    p.add_argument("--help", action="help", help="show this help message and exit")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from ..errors import PyrtError

    try:
        return _dispatch(args) or 0
    except PyrtError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(f"Error: {msg}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _dispatch(args) -> int:
    cmd = args.command
    if cmd == "version":
        print(f"pyrt version {__version__}")
        return 0
    from . import commands

    return commands.COMMANDS[cmd](args)


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
