"""Image commands: load, images, tag, rmi, save, image prune.

``pull``, ``push``, ``login`` and ``logout`` are pyrt-image-registry's (cli/extensions.py).
"""
from __future__ import annotations

import os
import sys

from ..errors import NotFoundError, UsageError
from .common import engine_from_args, ago, human_size, split_name, table


# Each command's parser is built by its own function (cli.main builds only the one it runs).


def _p_load(cmd) -> None:
    l = cmd("load", "Load an image from an archive (OCI layout dir/tar, docker-archive tar)", cmd_load)
    l.add_argument("--input", "-i", metavar="PATH", help="archive or OCI layout to read (default: stdin)")
    l.add_argument("--quiet", "-q", action="store_true", help="print only the image ids")


def _p_images(cmd, name="images", aliases=()) -> None:
    from .formatting import add_format_flag

    im = cmd(name, "List images", cmd_images, aliases=aliases)
    im.add_argument("--all", "-a", action="store_true",
                    help="show all images (pyrt keeps no intermediate images: the same list)")
    im.add_argument("--quiet", "-q", action="store_true", help="only show image ids")
    im.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    im.add_argument("--filter", "-f", action="append", default=[], metavar="KEY=VALUE",
                    help="dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE, "
                         "reference=PATTERN")
    add_format_flag(im, "images (.ID, .Repository, .Tag, .Size...)")
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


PARSERS = {"load": _p_load, "images": _p_images, "tag": _p_tag, "rmi": _p_rmi, "save": _p_save}


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


#: the header of each images --format field in a table (docker's)
IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE"}


def _reference_matches(pattern: str, names: list[str]) -> bool:
    """docker's reference filter: a path.Match pattern (``*`` stops at ``/``) over the
    image's names, with or without their tag."""
    import re

    out = []
    for ch in pattern:
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    rx = re.compile("".join(out))
    for n in names:
        repo, tag = split_name(n)
        if rx.fullmatch(n) or rx.fullmatch(repo) or (repo.startswith("docker.io/library/") and
                                                      rx.fullmatch(repo[len("docker.io/library/"):])):
            return True
    return False


def select_images(engine, args) -> list:
    from .filters import labels_match, parse_filters

    f = parse_filters(args.filter, keys=("dangling", "label", "before", "since", "reference"))
    images = sorted(engine.images.list(), key=lambda i: i.created, reverse=True)
    if args.reference:
        want = args.reference
        images = [i for i in images if any(n == want or split_name(n)[0] == want or n == want + ":latest"
                                           for n in i.names)]
    for v in f.get("dangling", ()):
        if v.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter 'dangling={v}'")
        want_dangling = v.lower() in ("true", "1")
        images = [i for i in images if (not i.names) == want_dangling]
    if "label" in f:
        images = [i for i in images if labels_match(i.config.labels or {}, f["label"])]
    for key, newer in (("before", False), ("since", True)):
        for ref in f.get(key, ()):
            t = engine.images.get(ref).created
            images = [i for i in images if (i.created > t if newer else i.created < t)]
    if "reference" in f:
        images = [i for i in images if any(_reference_matches(p, i.names) for p in f["reference"])]
    return images


def image_rows(engine, images, trunc: bool, digests: bool, references=()) -> list[dict]:
    """docker's images fields, one row per name (``<none>`` for an image without); with
    ``reference=`` filters, only the names they match (docker filters names, not images)."""
    from .common import docker_time

    patterns = [r.partition("=")[2] for r in references]
    rows = []
    for i in images:
        rds = engine.images.repo_digests(i)
        names = i.names or ["<none>:<none>"]
        if patterns:
            names = [n for n in names if any(_reference_matches(p, [n]) for p in patterns)]
        for n in names:
            repo, tag = split_name(n) if n != "<none>:<none>" else ("<none>", "<none>")
            digest = next((rd.rpartition("@")[2] for rd in rds if rd.rpartition("@")[0] == repo),
                          rds[0].rpartition("@")[2] if rds and repo == "<none>" else (i.digest or "<none>"))
            rows.append({
                "Containers": "N/A", "CreatedAt": docker_time(i.created),
                "CreatedSince": ago(i.created), "Digest": digest,
                "ID": i.short_id if trunc else i.id, "Repository": repo, "SharedSize": "N/A",
                "Size": human_size(i.size), "Tag": tag, "UniqueSize": "N/A",
                "VirtualSize": human_size(i.size),
            })
    return rows


def cmd_images(args) -> int:
    from .formatting import check, is_default

    if not is_default(args.format):
        check(args.format)
    engine = engine_from_args(args)
    images = select_images(engine, args)
    trunc = not args.no_trunc
    if args.quiet:
        seen = []
        for i in images:
            iid = i.short_id if trunc else i.id
            if iid not in seen:
                seen.append(iid)
                print(iid)
        return 0
    rows = image_rows(engine, images, trunc, args.digests,
                      [v for v in args.filter if v.partition("=")[0].strip().lower() == "reference"])
    if not is_default(args.format):
        from .formatting import print_rows

        print_rows(args.format, rows, IMAGE_HEADERS)
        return 0
    if args.digests:
        out = [("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE")]
        out += [(r["Repository"], r["Tag"], r["Digest"], r["ID"], r["CreatedSince"], r["Size"])
                for r in rows]
    else:
        out = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
        out += [(r["Repository"], r["Tag"], r["ID"], r["CreatedSince"], r["Size"]) for r in rows]
    table(out)
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
    raise UsageError("image: name a subcommand (ls, rm, inspect, tag, pull, push, save, load, "
                     "prune)")


def cmd_image_prune(args) -> int:
    from .prune_filter import PruneFilter

    match = PruneFilter.parse(getattr(args, "filter", None))  # one line, before anything
    engine = engine_from_args(args)
    for line in engine.images.prune(all_images=args.all, match=match.matches if match else None):
        print(line)
    return 0


def image_inspect(engine, img) -> dict:
    """docker's ``ImageInspect`` for ``img``; pyrt's own facts under ``Pyrt``."""
    repo_digests = engine.images.repo_digests(img)
    icfg = img.config
    config = {
        "Hostname": "", "Domainname": "", "User": icfg.user, "AttachStdin": False,
        "AttachStdout": False, "AttachStderr": False,
    }
    if icfg.exposed_ports:
        config["ExposedPorts"] = {p: {} for p in icfg.exposed_ports}
    config.update({
        "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": list(icfg.env) or None,
        "Cmd": icfg.cmd, "Image": "",
        "Volumes": {v: {} for v in icfg.volumes} if icfg.volumes else None,
        "WorkingDir": icfg.working_dir, "Entrypoint": icfg.entrypoint, "OnBuild": None,
        "Labels": {k: icfg.labels[k] for k in sorted(icfg.labels)} if icfg.labels else None,
    })
    if icfg.stop_signal:
        config["StopSignal"] = icfg.stop_signal
    return {
        "Id": img.id, "RepoTags": list(img.names), "RepoDigests": repo_digests, "Parent": "",
        "Comment": "", "Created": img.created, "DockerVersion": "", "Author": "",
        "Config": config, "Architecture": img.architecture, "Os": img.os,
        "Size": img.size, "VirtualSize": img.size,
        "GraphDriver": {"Name": engine.driver_name, "Data": {"TopLayer": img.top_layer}},
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Pyrt": {"Digest": img.digest},
    }
