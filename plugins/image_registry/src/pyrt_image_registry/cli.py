"""The registry commands and flags this plugin adds to ``pyrt``: pull, push, login, logout,
and the registry flags of ``run``/``create`` (podman's ``--authfile``, ``--cert-dir``,
``--creds``, ``--tls-verify``).

Declared as entry points (``pyrt.commands``, ``pyrt.command_flags``: see
``pyrt_core.cli.extensions``); each builder only uses argparse, the commands import
what they need when they run.
"""
from __future__ import annotations

import os
import sys

# the models (attrs) and the engine are the commands' to import: ``run``/``create`` import
# this module for their registry flags before they start the container's monitor, which
# must start as early as it can (docs/lifecycle.md, "Start-up overlap")
from pyrt_core.api import NotFoundError, UsageError

# -- the parsers ---------------------------------------------------------------------


def add_pull(cmd) -> None:
    pl = cmd("pull", "Pull an image from a registry", cmd_pull)
    pl.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: the host's)")
    pl.add_argument("--quiet", "-q", action="store_true", help="print only the image id")
    pl.add_argument("--max-concurrent-downloads", type=int, metavar="N",
                    help="layers downloaded at once (default 3)")
    registry_flags(pl)
    pl.add_argument("image", metavar="IMAGE", help="[REGISTRY/]REPOSITORY[:TAG|@DIGEST]")


def add_push(cmd) -> None:
    ps = cmd("push", "Push an image to a registry", cmd_push)
    ps.add_argument("--quiet", "-q", action="store_true", help="print only the manifest digest")
    ps.add_argument("--chunk-size", type=int, metavar="BYTES",
                    help="send blobs larger than this in chunks (default 16 MiB)")
    ps.add_argument("--digestfile", metavar="FILE", help="write the pushed manifest's digest to FILE")
    registry_flags(ps)
    ps.add_argument("image", metavar="IMAGE")
    ps.add_argument("destination", nargs="?", metavar="DEST", help="[REGISTRY/]REPOSITORY[:TAG] (default: IMAGE)")


def add_login(cmd) -> None:
    li = cmd("login", "Log in to a registry", cmd_login)
    li.add_argument("--username", "-u", metavar="USER")
    li.add_argument("--password", "-p", metavar="PASSWORD")
    li.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    registry_flags(li, creds=False)
    li.add_argument("registry", metavar="REGISTRY")


def add_logout(cmd) -> None:
    lo = cmd("logout", "Log out of a registry", cmd_logout)
    lo.add_argument("--authfile", metavar="FILE", help="auth file (default: $REGISTRY_AUTH_FILE or "
                                                      "$XDG_RUNTIME_DIR/containers/auth.json)")
    lo.add_argument("--all", "-a", action="store_true", help="forget every registry")
    lo.add_argument("registry", nargs="?", metavar="REGISTRY")


def registry_flags(p, creds: bool = True) -> None:
    """The flags every command that talks to a registry takes (podman's names)."""
    p.add_argument("--authfile", metavar="FILE", help="auth file (default: $REGISTRY_AUTH_FILE or "
                                                     "$XDG_RUNTIME_DIR/containers/auth.json)")
    p.add_argument("--cert-dir", dest="certs_dir", metavar="DIR",
                   help="directory with HOST:PORT/ca.crt (default /etc/pyrt/certs.d, "
                        "/etc/containers/certs.d, /etc/docker/certs.d)")
    p.add_argument("--tls-verify", type=_bool, default=None, metavar="BOOL",
                   help="require HTTPS and verify certificates (default: true unless the registry "
                        "is listed as insecure); false allows plain HTTP")
    if creds:
        p.add_argument("--creds", metavar="USER:PASSWORD", help="credentials for this command")


def add_fetch_flags(group) -> None:
    """The registry flags of ``run`` and ``create``: their values reach this plugin's
    image fetch (a missing image's pull) as ``FetchOptions.settings``."""
    registry_flags(group)


def _bool(v: str) -> bool:
    v = v.lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise ValueError(v)


# -- the commands --------------------------------------------------------------------

def settings(args, engine) -> dict:
    """What a pull or push takes from the command line (``FetchOptions.settings``)."""
    return {
        "config_file": engine.settings.config_file,
        "authfile": getattr(args, "authfile", None),
        "certs_dir": getattr(args, "certs_dir", None),
        "tls_verify": getattr(args, "tls_verify", None),
        "creds": getattr(args, "creds", None),
        "max_concurrent_downloads": getattr(args, "max_concurrent_downloads", None),
        "chunk_size": getattr(args, "chunk_size", None),
        "progress": "quiet" if getattr(args, "quiet", False) else "auto",
    }


def cmd_pull(args) -> int:
    from pyrt_core.api import FetchOptions, ImageReference, engine_from_args

    ref = ImageReference.parse(args.image)
    engine = engine_from_args(args)
    opts = FetchOptions(platform=args.platform, quiet=args.quiet, pull="always",
                        settings=settings(args, engine))
    img = engine.pm.hook.pyrt_image_fetch(reference=ref, store=engine.images, options=opts)
    if img is None:
        raise NotFoundError(f"no plugin can pull {ref.transport} references")
    print(img.id)
    return 0


def cmd_push(args) -> int:
    from pyrt_core.api import FetchOptions, ImageReference, engine_from_args

    engine = engine_from_args(args)
    img = engine.images.get(args.image)
    dest_text = args.destination or args.image
    if dest_text.startswith("docker://"):
        dest_text = dest_text[len("docker://"):]
    ref = ImageReference.parse(dest_text)
    if ref.transport == "registry" and not args.destination and ref.digest:
        raise UsageError(f"cannot push to {dest_text!r}: name a tag")
    opts = FetchOptions(quiet=args.quiet, settings=settings(args, engine))
    digest = engine.pm.hook.pyrt_image_push(image=img, reference=ref, store=engine.images, options=opts)
    if digest is None:
        raise UsageError(f"cannot push to {ref.transport}: references")
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(digest)
    print(digest)
    return 0


def registry_host(text: str) -> str:
    """``HOST[:PORT]`` of what ``login``/``logout`` name (a URL or a docker.io alias)."""
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.rstrip("/")
    if text.endswith("/v1") or text.endswith("/v2"):
        text = text[:-3]
    host = text.split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    if not host:
        raise UsageError("name a registry (HOST[:PORT])")
    return host


def cmd_login(args) -> int:
    from pyrt_core.api import engine_from_args

    from . import authfile
    from .client import Client
    from .options import from_settings

    engine = engine_from_args(args)
    host = registry_host(args.registry)
    user = args.username
    password = args.password
    if args.password_stdin:
        if password:
            raise UsageError("--password and --password-stdin cannot be used together")
        password = sys.stdin.readline().rstrip("\n")
    if not user:
        if not sys.stdin.isatty():
            raise UsageError("name the user with --username (stdin is not a terminal)")
        user = input("Username: ").strip()
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("give the password with --password or --password-stdin")
        import getpass

        password = getpass.getpass("Password: ")
    s = settings(args, engine)
    s["creds"] = f"{user}:{password}"
    opts = from_settings(s)
    client = Client(host, opts)
    try:
        client.login_check()
    finally:
        client.close()
    authfile.store(host, user, password, opts.authfile)
    print("Login Succeeded!")
    return 0


def cmd_logout(args) -> int:
    from . import authfile

    authfile_path = args.authfile or os.environ.get("REGISTRY_AUTH_FILE")
    if args.all:
        authfile.remove(None, authfile_path)
        print("Removed login credentials for all registries")
        return 0
    if not args.registry:
        raise UsageError("name a registry, or use --all")
    host = registry_host(args.registry)
    if not authfile.remove(host, authfile_path):
        raise NotFoundError(f"not logged into {host}")
    print(f"Removed login credentials for {host}")
    return 0
