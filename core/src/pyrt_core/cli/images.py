"""Image commands: load, images, tag, rmi, pull, push, login, logout, save, image prune."""
from __future__ import annotations

import json
import os
import sys

from ..errors import NotFoundError, UsageError
from .common import engine_from_args, ago, human_size, split_name, table


# Each command's parser is built by its own function (cli.main builds only the one it runs).


def _p_load(cmd) -> None:
    l = cmd("load", "Load an image from an archive (OCI layout dir/tar, docker-archive tar)", cmd_load)
    l.add_argument("--input", "-i", metavar="PATH", help="archive or OCI layout to read (default: stdin)")
    l.add_argument("--quiet", "-q", action="store_true", help="print only the image ids")


def _p_images(cmd) -> None:
    im = cmd("images", "List images", cmd_images)
    im.add_argument("--quiet", "-q", action="store_true", help="only show image ids")
    im.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    im.add_argument("--format", choices=("table", "json"), default="table")
    im.add_argument("--digests", action="store_true", help="show digests")
    im.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")


def _p_tag(cmd) -> None:
    t = cmd("tag", "Create a name TARGET that refers to SOURCE", cmd_tag)
    t.add_argument("source", metavar="SOURCE")
    t.add_argument("target", metavar="TARGET")


def _p_rmi(cmd) -> None:
    rmi = cmd("rmi", "Remove images", cmd_rmi)
    rmi.add_argument("--force", "-f", action="store_true", help="remove even if containers use it")
    rmi.add_argument("images", nargs="+", metavar="IMAGE")


def _p_pull(cmd) -> None:
    pl = cmd("pull", "Pull an image from a registry", cmd_pull)
    pl.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: the host's)")
    pl.add_argument("--quiet", "-q", action="store_true", help="print only the image id")
    pl.add_argument("--max-concurrent-downloads", type=int, metavar="N",
                    help="layers downloaded at once (default 3)")
    _registry_flags(pl)
    pl.add_argument("image", metavar="IMAGE", help="[REGISTRY/]REPOSITORY[:TAG|@DIGEST]")


def _p_push(cmd) -> None:
    ps = cmd("push", "Push an image to a registry", cmd_push)
    ps.add_argument("--quiet", "-q", action="store_true", help="print only the manifest digest")
    ps.add_argument("--chunk-size", type=int, metavar="BYTES",
                    help="send blobs larger than this in chunks (default 16 MiB)")
    ps.add_argument("--digestfile", metavar="FILE", help="write the pushed manifest's digest to FILE")
    _registry_flags(ps)
    ps.add_argument("image", metavar="IMAGE")
    ps.add_argument("destination", nargs="?", metavar="DEST", help="[REGISTRY/]REPOSITORY[:TAG] (default: IMAGE)")


def _p_login(cmd) -> None:
    li = cmd("login", "Log in to a registry", cmd_login)
    li.add_argument("--username", "-u", metavar="USER")
    li.add_argument("--password", "-p", metavar="PASSWORD")
    li.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _registry_flags(li, creds=False)
    li.add_argument("registry", metavar="REGISTRY")


def _p_logout(cmd) -> None:
    lo = cmd("logout", "Log out of a registry", cmd_logout)
    lo.add_argument("--authfile", metavar="FILE", help="auth file (default: $REGISTRY_AUTH_FILE or "
                                                      "$XDG_RUNTIME_DIR/containers/auth.json)")
    lo.add_argument("--all", "-a", action="store_true", help="forget every registry")
    lo.add_argument("registry", nargs="?", metavar="REGISTRY")


def _p_save(cmd) -> None:
    sv = cmd("save", "Save images to an archive (docker-archive or oci-archive)", cmd_save)
    sv.add_argument("--output", "-o", metavar="FILE", help="archive to write (default: stdout)")
    sv.add_argument("--format", choices=("docker-archive", "oci-archive"), default="docker-archive")
    sv.add_argument("images", nargs="+", metavar="IMAGE")


def _p_image(cmd) -> None:
    ig = cmd("image", "Manage images (image prune)", cmd_image)
    from .main import _global_options

    isub = ig.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(ig))
    pr = isub.add_parser("prune", help="Remove unused images", description="Remove unused images")
    _global_options(pr, suppress=True)
    pr.set_defaults(func=cmd_image_prune)
    pr.add_argument("--all", "-a", action="store_true", help="remove every image no container uses")
    pr.add_argument("--force", "-f", action="store_true", help="do not ask")


PARSERS = {"load": _p_load, "images": _p_images, "tag": _p_tag, "rmi": _p_rmi, "pull": _p_pull,
           "push": _p_push, "login": _p_login, "logout": _p_logout, "save": _p_save,
           "image": _p_image}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


def _registry_flags(p, creds: bool = True) -> None:
    p.add_argument("--authfile", metavar="FILE", help="auth file (default: $REGISTRY_AUTH_FILE or "
                                                     "$XDG_RUNTIME_DIR/containers/auth.json)")
    p.add_argument("--cert-dir", metavar="DIR",
                   help="directory with HOST:PORT/ca.crt (default /etc/pyrt/certs.d, "
                        "/etc/containers/certs.d, /etc/docker/certs.d)")
    p.add_argument("--tls-verify", type=_bool, default=None, metavar="BOOL",
                   help="require HTTPS and verify certificates (default: true unless the registry "
                        "is listed as insecure); false allows plain HTTP")
    if creds:
        p.add_argument("--creds", metavar="USER:PASSWORD", help="credentials for this command")


def _bool(v: str) -> bool:
    v = v.lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise ValueError(v)


def _registry_settings(args, engine) -> dict:
    return {
        "config_file": engine.settings.config_file,
        "authfile": getattr(args, "authfile", None),
        "certs_dir": getattr(args, "cert_dir", None),
        "tls_verify": getattr(args, "tls_verify", None),
        "creds": getattr(args, "creds", None),
        "max_concurrent_downloads": getattr(args, "max_concurrent_downloads", None),
        "chunk_size": getattr(args, "chunk_size", None),
        "progress": "quiet" if getattr(args, "quiet", False) else "auto",
    }


def _registry_plugin_missing(what: str) -> NotFoundError:
    return NotFoundError(f"no plugin can {what} registry images: install pyrt-image-registry")


def cmd_load(args) -> int:
    from ..images.load import load_archive

    engine = engine_from_args(args)
    path = args.input
    tmp = None
    try:
        if path is None:
            if sys.stdin.isatty():
                raise UsageError("no input: use --input FILE or pipe an archive into stdin")
            import tempfile

            os.makedirs(engine.settings.root, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-load-", dir=engine.settings.root)
            with os.fdopen(fd, "wb") as f:
                import shutil

                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
            path = tmp
        elif not os.path.exists(path):
            raise NotFoundError(f"cannot load {path}: no such file or directory")
        images = load_archive(path, engine.images)
    finally:
        if tmp:
            os.unlink(tmp)
    for img in images:
        if args.quiet:
            print(img.id)
        elif img.names:
            for n in img.names:
                print(f"Loaded image: {n}")
        else:
            print(f"Loaded image ID: {img.id}")
    return 0


def cmd_images(args) -> int:
    engine = engine_from_args(args)
    images = engine.images.list()
    if args.reference:
        want = args.reference
        images = [i for i in images if any(n == want or split_name(n)[0] == want or n == want + ":latest"
                                           for n in i.names)]
    if args.format == "json":
        print(json.dumps([i.to_dict() for i in images], indent=2))
        return 0
    if args.quiet:
        seen = []
        for i in images:
            iid = i.id if args.no_trunc else i.short_id
            if iid not in seen:
                seen.append(iid)
                print(iid)
        return 0
    if args.digests:
        rows = [("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE")]
    else:
        rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for i in images:
        iid = i.id if args.no_trunc else i.short_id
        rds = engine.images.repo_digests(i) if args.digests else []
        for n in i.names or ["<none>:<none>"]:
            repo, tag = split_name(n) if n != "<none>:<none>" else ("<none>", "<none>")
            if args.digests:
                digest = next((rd.rpartition("@")[2] for rd in rds if rd.rpartition("@")[0] == repo),
                              rds[0].rpartition("@")[2] if rds and repo == "<none>" else (i.digest or "<none>"))
                rows.append((repo, tag, digest, iid, ago(i.created), human_size(i.size)))
            else:
                rows.append((repo, tag, iid, ago(i.created), human_size(i.size)))
    table(rows)
    return 0


def cmd_tag(args) -> int:
    from ..models import ImageReference

    engine = engine_from_args(args)
    img = engine.images.get(args.source)
    ref = ImageReference.parse(args.target)
    if ref.transport != "registry" or ref.digest:
        raise UsageError(f"invalid tag {args.target!r}")
    engine.images.tag(img, f"{ref.name}:{ref.tag}")
    return 0


def cmd_rmi(args) -> int:
    engine = engine_from_args(args)
    code = 0
    for ref in args.images:
        try:
            for line in engine.images.remove(ref, force=args.force) or []:
                print(line)
        except (NotFoundError, UsageError) as e:
            sys.stderr.write(f"Error: {e}\n")
            code = 1
    return code


def cmd_pull(args) -> int:
    from ..models import FetchOptions, ImageReference

    ref = ImageReference.parse(args.image)
    engine = engine_from_args(args)
    settings = _registry_settings(args, engine)
    opts = FetchOptions(platform=args.platform, quiet=args.quiet, pull="always", settings=settings)
    img = engine.pm.hook.pyrt_image_fetch(reference=ref, store=engine.images, options=opts)
    if img is None:
        raise _registry_plugin_missing("pull")
    print(img.id)
    return 0


def cmd_push(args) -> int:
    from ..models import FetchOptions, ImageReference

    engine = engine_from_args(args)
    img = engine.images.get(args.image)
    dest_text = args.destination or args.image
    if dest_text.startswith("docker://"):
        dest_text = dest_text[len("docker://"):]
    ref = ImageReference.parse(dest_text)
    if ref.transport == "registry" and not args.destination and ref.digest:
        raise UsageError(f"cannot push to {dest_text!r}: name a tag")
    settings = _registry_settings(args, engine)
    opts = FetchOptions(quiet=args.quiet, settings=settings)
    digest = engine.pm.hook.pyrt_image_push(image=img, reference=ref, store=engine.images, options=opts)
    if digest is None:
        raise _registry_plugin_missing("push") if ref.transport == "registry" else \
            UsageError(f"cannot push to {ref.transport}: references")
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(digest)
    print(digest)
    return 0


def _registry_host(text: str) -> str:
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
    try:
        from pyrt_image_registry import authfile
        from pyrt_image_registry.client import Client
        from pyrt_image_registry.options import from_settings
    except ImportError:
        raise _registry_plugin_missing("log in to") from None
    engine = engine_from_args(args)
    host = _registry_host(args.registry)
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
    settings = _registry_settings(args, engine)
    settings["creds"] = f"{user}:{password}"
    opts = from_settings(settings)
    client = Client(host, opts)
    try:
        client.login_check()
    finally:
        client.close()
    path = authfile.store(host, user, password, opts.authfile)
    print("Login Succeeded!")
    return 0


def cmd_logout(args) -> int:
    try:
        from pyrt_image_registry import authfile
    except ImportError:
        raise _registry_plugin_missing("log out of") from None
    authfile_path = args.authfile or os.environ.get("REGISTRY_AUTH_FILE")
    if args.all:
        authfile.remove(None, authfile_path)
        print("Removed login credentials for all registries")
        return 0
    if not args.registry:
        raise UsageError("name a registry, or use --all")
    host = _registry_host(args.registry)
    if not authfile.remove(host, authfile_path):
        raise NotFoundError(f"not logged into {host}")
    print(f"Removed login credentials for {host}")
    return 0


def cmd_save(args) -> int:
    from ..images.save import save_images

    engine = engine_from_args(args)
    images = [(engine.images.get(r), r) for r in args.images]
    out = args.output
    if out is None:
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: use --output FILE")
        save_images(engine.images, images, sys.stdout.buffer, args.format)
    else:
        save_images(engine.images, images, out, args.format)
    return 0


def cmd_image(args) -> int:
    raise UsageError("image: name a subcommand (prune)")


def cmd_image_prune(args) -> int:
    engine = engine_from_args(args)
    for line in engine.images.prune(all_images=args.all):
        print(line)
    return 0


def image_inspect(engine, img) -> dict:
    repo_digests = engine.images.repo_digests(img)
    return {
        "Id": img.id, "Digest": img.digest, "RepoTags": img.names, "RepoDigests": repo_digests,
        "Created": img.created, "Architecture": img.architecture, "Os": img.os,
        "Size": img.size, "Config": img.config.to_oci(),
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "GraphDriver": {"Name": engine.driver_name, "Data": {"TopLayer": img.top_layer}},
    }
