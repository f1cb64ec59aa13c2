"""What the store holds and what can go: ``pyrt system df`` and ``pyrt system prune``.

docker's accounting, from pyrt's own records:

* images: each stored layer counted once (images share layers); an image is *active*
  when a container (in any state) was made from it; what is *reclaimable* is what no
  active image uses;
* containers: each container's writable layer (docker's ``SizeRw``, the storage
  driver's ``diff_size``); *active* ones run or are paused, the others' layers are
  reclaimable;
* local volumes: the bytes under each volume's data directory (``local`` driver); a
  volume is *active* while a container (in any state) names it; the others' bytes are
  reclaimable.

``prune`` removes stopped containers, unused networks (through the network plugin's
hooks), unused volumes (``volumes``: the anonymous ones, as docker 23+) and dangling
images (every image no container uses with ``all_images``), and counts what it freed
from the same measures taken before and after.

The sizes of volumes and writable layers are read from directories a container may have
written: the walk opens each directory with ``O_NOFOLLOW`` relative to its parent's
descriptor and never crosses into another file system, so a symbolic link or a mount a
container made never leads it elsewhere on the host; it only ever reads sizes.
"""
from __future__ import annotations

import os
import stat

ACTIVE = ("running", "starting", "paused", "restarting", "stopping")


def tree_size(path: str) -> int:
    """The apparent size of the files under ``path`` (hard links counted once), without
    following symbolic links or leaving its file system; 0 when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    dev = os.fstat(fd).st_dev
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [fd]
    try:
        while stack:
            dfd = stack.pop()
            try:
                with os.scandir(dfd) as it:
                    entries = list(it)
            except OSError:
                entries = []
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_dev != dev:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    try:
                        sub = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                      | os.O_CLOEXEC, dir_fd=dfd)
                    except OSError:
                        continue
                    if os.fstat(sub).st_dev != dev:  # a mount point (raced in): not ours
                        os.close(sub)
                        continue
                    stack.append(sub)
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += st.st_size
            os.close(dfd)
    finally:
        for dfd in stack:
            os.close(dfd)
    return total


# -- the three measures --------------------------------------------------------------------

def _layer_sizes(engine) -> dict[str, int]:
    return {layer.chain_id: int(layer.size or 0) for layer in engine.images.layers()
            if not layer.incomplete}


def container_size(engine, c, images: dict) -> int:
    """docker's ``SizeRw``: the bytes of ``c``'s writable layer."""
    from ..errors import PyrtError

    img = images.get(c.image_id)
    # the driver knows the image's top layer by the hex of its chain id (engine.create)
    parent = img.top_layer.split(":", 1)[-1] if img and img.top_layer else None
    try:
        return int(engine.driver.diff_size(c.layer_id, parent))
    except (PyrtError, OSError):
        return 0


def _volumes_used(containers) -> set[str]:
    """The volumes named by ``containers`` (lean records: their mounts are dicts)."""
    out = set()
    for c in containers:
        for v in c.config.volumes or []:
            get = v.get if isinstance(v, dict) else lambda k, v=v: getattr(v, k, "")
            if get("type") == "volume" and get("source"):
                out.add(get("source"))
    return out


def volume_size(engine, rec: dict) -> int | None:
    """The bytes of a ``local`` volume's data; None for another driver's (unknown)."""
    if rec.get("Driver", "local") != "local":
        return None
    return tree_size(os.path.join(engine.settings.root, "volumes", rec["Name"], "_data"))


def _total(rows: list) -> tuple[int, int, int]:
    """(how many are active, their size, the others' size) of (active, size) pairs."""
    return (sum(1 for active, _ in rows if active), sum(s for _, s in rows),
            sum(s for active, s in rows if not active))


def disk_usage(engine) -> list[dict]:
    """docker's ``system df`` rows: Type, TotalCount, Active, Size, Reclaimable (bytes),
    summed from :func:`disk_usage_items` (an image's layers counted once)."""
    items = disk_usage_items(engine)
    layers = items["layers"]
    images = items["images"]
    all_layers = {lid for it in images for lid in it["image"].layers}
    kept_layers = {lid for it in images if it["containers"] for lid in it["image"].layers}
    isize = sum(layers.get(lid, 0) for lid in all_layers)
    rows = [{"Type": "Images", "TotalCount": len(images),
             "Active": sum(1 for it in images if it["containers"]), "Size": isize,
             "Reclaimable": isize - sum(layers.get(lid, 0) for lid in kept_layers)}]
    for kind, key, active in (("Containers", "containers",
                               lambda it: it["container"].state.status in ACTIVE),
                              ("Local Volumes", "volumes", lambda it: it["links"] > 0)):
        n, size, reclaimable = _total([(active(it), it["size"] or 0) for it in items[key]])
        rows.append({"Type": kind, "TotalCount": len(items[key]), "Active": n, "Size": size,
                     "Reclaimable": reclaimable})
    rows.append({"Type": "Build Cache", "TotalCount": 0, "Active": 0, "Size": 0,
                 "Reclaimable": 0})
    return rows


def disk_usage_items(engine) -> dict:
    """What ``system df`` (its rows) and ``system df -v`` show, in bytes and counts.

    ``images``: each image with ``size``, ``shared`` (the bytes of its layers another image
    uses too, docker's SharedSize) and ``containers`` (how many were made from it);
    ``containers``: each container (the record) with ``size`` (its writable layer) and
    ``local_volumes`` (its mounts of ``local`` volumes); ``volumes``: each volume's record
    with ``links`` (the containers naming it) and ``size`` (None: not a ``local`` one);
    ``layers``: each stored layer's size by chain id."""
    from ..volumes.store import VolumeStore

    containers = engine.containers.records()
    images = {img.id: img for img in engine.images.list()}
    layers = _layer_sizes(engine)
    users: dict[str, int] = {}
    for img in images.values():
        for lid in set(img.layers):
            users[lid] = users.get(lid, 0) + 1
    made: dict[str, int] = {}
    for c in containers:
        made[c.image_id] = made.get(c.image_id, 0) + 1
    out_images = []
    for img in images.values():
        own = set(img.layers)
        out_images.append({
            "image": img, "size": sum(layers.get(lid, 0) for lid in own),
            "shared": sum(layers.get(lid, 0) for lid in own if users.get(lid, 0) > 1),
            "containers": made.get(img.id, 0)})
    vols = VolumeStore(engine.settings.root).list()
    local = {rec["Name"] for rec in vols if rec.get("Driver", "local") == "local"}
    links: dict[str, int] = {}
    out_containers = []
    for c in containers:
        named = _volumes_used([c])
        for n in named:
            links[n] = links.get(n, 0) + 1
        out_containers.append({"container": c, "size": container_size(engine, c, images),
                               "local_volumes": len(named & local)})
    out_volumes = [{"volume": rec, "links": links.get(rec["Name"], 0),
                    "size": volume_size(engine, rec)} for rec in vols]
    return {"images": out_images, "containers": out_containers, "volumes": out_volumes,
            "layers": layers}


# -- prune ---------------------------------------------------------------------------------

def networks_supported(engine) -> bool:
    from ..hookcall import implemented

    return implemented(engine.pm, "pyrt_network_list")


def prune(engine, all_images: bool = False, volumes: bool = False, match=None) -> dict:
    """Remove what ``system prune`` removes; returns the names removed by kind
    (``containers``, ``networks``, ``volumes``, ``images``: the image store's
    Untagged/Deleted lines), ``errors`` (one line each) and ``reclaimed`` (bytes).
    ``match(created, labels)``: only the objects it accepts (docker's ``--filter``)."""
    from ..errors import PyrtError

    out: dict = {"networks": [], "volumes": [], "images": []}
    out["containers"], out["errors"], out["reclaimed"] = prune_containers(engine, match,
                                                                          measure=True)
    if networks_supported(engine):
        out["networks"] = _prune_networks(engine, out["errors"], match)
    if volumes:
        from ..volumes.store import VolumeStore
        from .volumes import prune as prune_volumes

        before = {rec["Name"]: volume_size(engine, rec) or 0
                  for rec in VolumeStore(engine.settings.root).list()}
        try:
            out["volumes"] = prune_volumes(engine, match=match)
        except PyrtError as e:
            out["errors"].append(f"volumes: {str(e).splitlines()[0]}")
        out["reclaimed"] += sum(before.get(n, 0) for n in out["volumes"])
    layers = _layer_sizes(engine)
    try:
        out["images"] = engine.images.prune(all_images=all_images, match=match)
    except PyrtError as e:
        out["errors"].append(f"images: {str(e).splitlines()[0]}")
    left = _layer_sizes(engine)
    out["reclaimed"] += sum(size for lid, size in layers.items() if lid not in left)
    return out


def container_labels(c, images: dict) -> dict:
    """docker's labels of a container: its image's, then its own (``--label``)."""
    img = images.get(c.image_id)
    labels = dict(img.config.labels or {}) if img is not None else {}
    labels.update(c.config.labels or {})
    return labels


def prune_containers(engine, match=None,
                     measure: bool = False) -> tuple[list[str], list[str], int]:
    """``container prune``: the stopped containers (created, exited, dead) ``match``
    accepts, removed; returns (their ids, one error line per failure, the bytes of their
    writable layers when ``measure``, else 0)."""
    from ..errors import PyrtError

    images = {img.id: img for img in engine.images.list()} if match or measure else {}
    # (an image's labels for match, its top layer for the measure)
    gone: list[str] = []
    errors: list[str] = []
    reclaimed = 0
    for c in engine.containers.records():
        if c.state.status not in ("created", "exited", "dead"):
            continue
        if match is not None and not match(c.created, container_labels(c, images)):
            continue
        size = container_size(engine, c, images) if measure else 0
        try:
            engine.remove(c.id)
        except PyrtError as e:
            errors.append(f"container {c.id[:12]}: {str(e).splitlines()[0]}")
            continue
        gone.append(c.id)
        reclaimed += size
    return gone, errors, reclaimed


def _prune_networks(engine, errors: list[str], match=None) -> list[str]:
    """The networks no container is attached to, removed (the predefined ones stay), as
    the network plugins' own ``network prune`` does."""
    from ..errors import ConflictError, PyrtError

    root, runroot = engine.settings.root, engine.settings.runroot
    gone = []
    try:
        nets = engine.pm.hook.pyrt_network_list(root=root, runroot=runroot) or []
    except PyrtError as e:
        errors.append(f"networks: {str(e).splitlines()[0]}")
        return gone
    for n in nets:
        name = n.get("Name", "")
        if not name or name in ("bridge", "none", "host") or n.get("Containers"):
            continue
        if match is not None and not match(n.get("Created"), n.get("Labels")):
            continue
        try:
            if engine.pm.hook.pyrt_network_remove(name=name, root=root, runroot=runroot):
                gone.append(name)
        except ConflictError:
            pass  # in use after all: kept
        except PyrtError as e:
            errors.append(f"network {name}: {str(e).splitlines()[0]}")
    return gone
