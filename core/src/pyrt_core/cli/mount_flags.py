"""The mount flags of ``run``/``create`` (docker's): ``-v/--volume``, ``--mount``,
``--tmpfs``, ``--volumes-from``, and the :class:`~pyrt_core.models.VolumeSpec` list they
make (checked before anything exists: one line, exit 125)."""
from __future__ import annotations


def add_mount_flags(p) -> None:
    p.add_argument("--volume", "-v", action="append", default=[],
                   metavar="[SRC:]DST[:OPTS]",
                   help="bind-mount a host path (/src:/dst), mount a named volume (NAME:/dst, "
                        "created on first use) or an anonymous one (/dst); OPTS: ro, rw, "
                        "nocopy, a propagation")
    p.add_argument("--mount", action="append", default=[], metavar="type=...,target=...",
                   help="a mount, docker's keys: type=bind|volume|tmpfs, source/src, "
                        "target/dst/destination, readonly/ro, bind-propagation, "
                        "volume-nocopy, volume-driver, volume-opt, tmpfs-size, tmpfs-mode")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]",
                   help="mount a tmpfs (OPTS as mount(8): size=64m,mode=1777,...)")
    p.add_argument("--volumes-from", action="append", default=[],
                   metavar="CONTAINER[:ro|rw]", help="mount the volumes of another container")


def volumes_from_args(args) -> list:
    from ..models import VolumeSpec

    out = [VolumeSpec.parse(v) for v in getattr(args, "volume", []) or []]
    out += [VolumeSpec.parse_mount(m) for m in getattr(args, "mount", []) or []]
    out += [VolumeSpec.parse_tmpfs(t) for t in getattr(args, "tmpfs", []) or []]
    for ref in getattr(args, "volumes_from", []) or []:
        name, _, mode = ref.partition(":")
        if not name or mode not in ("", "ro", "rw"):
            from ..errors import UsageError

            raise UsageError(f"invalid --volumes-from {ref!r}: expected CONTAINER[:ro|rw]")
    return out
