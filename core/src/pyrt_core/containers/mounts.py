"""A container's mounts (``-v``, ``--mount``, ``--tmpfs``, volumes) as runtime-spec
``mounts`` entries.  The destination is a container path: the runtime resolves it
inside the rootfs (never on the host).  A volume's source is the host directory its
driver's ``mount`` returned (engine.volumes), never a path inside the container."""
from __future__ import annotations

import os

from ..errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..models import VolumeSpec

#: docker's defaults for --tmpfs and --mount type=tmpfs
TMPFS_DEFAULTS = ["nosuid", "nodev", "noexec"]


def bind_entry(src: str, dst: str, readonly: bool = False, propagation: str = "") -> dict:
    # read-only means the mounts below the source too (docker 25's "rro")
    opts = ["rbind", propagation or "rprivate"] + (["ro", "rro"] if readonly else ["rw"])
    return {"destination": dst, "type": "bind", "source": src, "options": opts}


def tmpfs_entry(v: VolumeSpec) -> dict:
    opts = list(TMPFS_DEFAULTS)
    for o in v.tmpfs_options:
        key = o.partition("=")[0]
        opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}.get(o)
        if opposite in opts:
            opts.remove(opposite)
        opts = [x for x in opts if x.partition("=")[0] != key] + [o]
    if v.tmpfs_size is not None:
        opts = [x for x in opts if not x.startswith("size=")] + [f"size={v.tmpfs_size}"]
    if v.tmpfs_mode is not None:
        opts = [x for x in opts if not x.startswith("mode=")] + [f"mode={v.tmpfs_mode:o}"]
    if v.readonly and "ro" not in opts:
        opts.append("ro")
    return {"destination": v.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}


def container_mounts(volumes: list[VolumeSpec], sources: dict[int, str] | None) -> list[dict]:
    """The entries of ``volumes``; ``sources`` maps the index of each volume mount to its
    host path (engine.volumes.mount_volumes)."""
    out = []
    for i, v in enumerate(volumes):
        if v.type == "tmpfs":
            out.append(tmpfs_entry(v))
        elif v.type == "volume":
            src = (sources or {}).get(i)
            if not src:
                raise UsageError(f"volume {v.source or '(anonymous)'} for {v.destination} "
                                 "is not mounted")
            out.append(bind_entry(src, v.destination, v.readonly))
        else:
            if not os.path.exists(v.source):
                raise UsageError(f"invalid volume {v.source}:{v.destination}: host path "
                                 f"{v.source} does not exist")
            out.append(bind_entry(v.source, v.destination, v.readonly, v.propagation))
    return out
