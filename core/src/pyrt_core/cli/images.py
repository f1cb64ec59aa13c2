"""Image commands: load, images, tag, rmi."""
from __future__ import annotations

import json
import os
import sys

from ..errors import NotFoundError, UsageError
from .common import engine_from_args, ago, human_size, split_name, table


def add_parsers(cmd) -> None:
    l = cmd("load", "Load an image from an archive (OCI layout dir/tar, docker-archive tar)", cmd_load)
    l.add_argument("--input", "-i", metavar="PATH", help="archive or OCI layout to read (default: stdin)")
    l.add_argument("--quiet", "-q", action="store_true", help="print only the image ids")

    im = cmd("images", "List images", cmd_images)
    im.add_argument("--quiet", "-q", action="store_true", help="only show image ids")
    im.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    im.add_argument("--format", choices=("table", "json"), default="table")
    im.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")

    t = cmd("tag", "Create a name TARGET that refers to SOURCE", cmd_tag)
    t.add_argument("source", metavar="SOURCE")
    t.add_argument("target", metavar="TARGET")

    rmi = cmd("rmi", "Remove images", cmd_rmi)
    rmi.add_argument("--force", "-f", action="store_true", help="remove even if containers use it")
    rmi.add_argument("images", nargs="+", metavar="IMAGE")


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
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for i in images:
        iid = i.id if args.no_trunc else i.short_id
        for n in i.names or ["<none>:<none>"]:
            repo, tag = split_name(n) if n != "<none>:<none>" else ("<none>", "<none>")
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


def image_inspect(engine, img) -> dict:
    repo_digests = [f"{split_name(n)[0]}@{img.digest}" for n in img.names] if img.digest else []
    return {
        "Id": img.id, "Digest": img.digest, "RepoTags": img.names, "RepoDigests": repo_digests,
        "Created": img.created, "Architecture": img.architecture, "Os": img.os,
        "Size": img.size, "Config": img.config.to_oci(),
        "RootFS": {"Type": "layers", "Layers": img.diff_ids},
        "GraphDriver": {"Name": engine.driver_name, "Data": {"TopLayer": img.top_layer}},
    }
