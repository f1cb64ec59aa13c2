"""The ``local`` volume driver (docker's): a directory, ``<root>/volumes/<name>/_data``,
or what its options mount there on first use:

* ``type=tmpfs`` (``device=tmpfs``, ``o=size=64m,uid=1000,mode=0750``): a tmpfs;
* ``type=none,o=bind,device=/host/path``: a bind mount of a host directory;
* any other ``type`` (``nfs``, ``ext4``...) with its ``device`` and ``o``: mount(2) as
  mount(8) would, ``o``'s flag words (``ro``, ``nosuid``...) as flags, the rest as the
  filesystem's data.

A volume with options is mounted when the first container's run mounts it and
unmounted when the last one's ends: the users are kept in ``local.json`` beside
``_data``, changed only under the volume store's lock (the engine holds it around these
calls); recovery calls ``unmount`` for the users that no longer run.  The functions are
called through the ``pyrt_volume_*`` hooks of :mod:`pyrt_core.builtin`.
"""
from __future__ import annotations

import os

from ..errors import NotFoundError, UsageError

DRIVER = "local"
STATE = "local.json"
KEYS = ("type", "device", "o")


def _dir(root: str, name: str) -> str:
    from .names import check_name

    return os.path.join(root, "volumes", check_name(name, "volume"))


def data_path(root: str, name: str) -> str:
    return os.path.join(_dir(root, name), "_data")


def _state(root: str, name: str) -> dict | None:
    from ..fsutil import read_json

    st = read_json(os.path.join(_dir(root, name), STATE))
    return st if isinstance(st, dict) else None


def _save(root: str, name: str, st: dict) -> None:
    from ..fsutil import atomic_write
    from ..jsonlean import dumps

    atomic_write(os.path.join(_dir(root, name), STATE), dumps(st), 0o600)


def check_options(options: dict[str, str]) -> None:
    """docker's checks, before anything exists: known keys, a device with a type, a bind
    of an existing absolute host directory."""
    for k in options:
        if k not in KEYS:
            raise UsageError(f"invalid option key: {k!r} (the local driver takes type, "
                             "device and o)")
    t, dev, o = options.get("type", ""), options.get("device", ""), options.get("o", "")
    if (dev or o) and not t:
        raise UsageError("missing required option: \"type\"")
    if t and not dev and t != "tmpfs":
        raise UsageError("missing required option: \"device\"")
    if "bind" in o.split(",") or "rbind" in o.split(","):
        if not dev.startswith("/"):
            raise UsageError(f"invalid device {dev!r}: a bind needs an absolute host path")
        if not os.path.isdir(dev):
            raise UsageError(f"invalid device {dev!r}: no such directory")
    elif t == "none":
        raise UsageError("type none needs o=bind (a bind mount of device)")


def create(root: str, name: str, options: dict[str, str]) -> dict:
    check_options(options)
    data = data_path(root, name)
    os.mkdir(data, 0o755)
    os.chmod(data, 0o755)
    _save(root, name, {"options": dict(options), "users": []})
    return {"Mountpoint": data}


def _needs_mount(st: dict) -> bool:
    return bool((st.get("options") or {}).get("type"))


def mount(root: str, name: str, container_id: str) -> str:
    st = _state(root, name)
    if st is None:
        raise NotFoundError(f"no such volume: {name}")
    data = data_path(root, name)
    users = list(st.get("users") or [])
    if _needs_mount(st) and not users:
        _mount(st["options"], data)
    if container_id not in users:
        users.append(container_id)
    st["users"] = users
    _save(root, name, st)
    return data


def _mount(options: dict, target: str) -> None:
    from . import sysmount

    t, dev, o = options.get("type", ""), options.get("device", ""), options.get("o", "")
    flags, data = sysmount.split_options(o)
    if sysmount.is_mount_point(target):  # left by a crash: used again as it is
        return
    if flags & sysmount.MS_BIND:
        sysmount.mount(dev, target, None, flags & (sysmount.MS_BIND | sysmount.MS_REC), None)
        rest = flags & ~(sysmount.MS_BIND | sysmount.MS_REC)
        if rest:
            try:
                sysmount.mount("none", target, None,
                               sysmount.MS_REMOUNT | sysmount.MS_BIND | rest, None)
            except OSError:
                sysmount.umount(target)
                raise
        return
    sysmount.mount(dev or t, target, t, flags, data or None)


def unmount(root: str, name: str, container_id: str) -> bool:
    st = _state(root, name)
    if st is None:
        return True
    users = [u for u in st.get("users") or [] if u != container_id]
    if not users and _needs_mount(st):
        from . import sysmount

        sysmount.umount(data_path(root, name))
    st["users"] = users
    _save(root, name, st)
    return True


def remove(root: str, name: str) -> bool:
    st = _state(root, name)
    data = data_path(root, name)
    if st is not None and _needs_mount(st):
        from . import sysmount

        if sysmount.is_mount_point(data):
            sysmount.umount(data)
    from ..fsutil import remove_tree

    remove_tree(data)
    try:
        os.unlink(os.path.join(_dir(root, name), STATE))
    except FileNotFoundError:
        pass
    return True


def get(root: str, name: str) -> dict | None:
    if _state(root, name) is None:
        return None
    return {"Name": name, "Mountpoint": data_path(root, name), "Status": {}}


def names(root: str) -> list[str]:
    from .names import valid

    d = os.path.join(root, "volumes")
    try:
        return sorted(n for n in os.listdir(d)
                      if valid(n) and os.path.exists(os.path.join(d, n, STATE)))
    except FileNotFoundError:
        return []
