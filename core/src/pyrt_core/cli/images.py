"""Image commands: load, images, tag, rmi, save, image prune.

``pull``, ``push``, ``login`` and ``logout`` are pyrt-image-registry's (cli/extensions.py).
"""
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


PARSERS = {"load": _p_load, "images": _p_images, "tag": _p_tag, "rmi": _p_rmi, "save": _p_save,
           "image": _p_image}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


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
