"""``pause``, ``resume``, ``update`` and ``events``: a running container's cgroup.

All go through the resource hooks with the record ``pyrt_resources_apply``
returned at create (``pyrt_resources_freeze``, ``pyrt_resources_update``,
``pyrt_resources_stats``); a container under the ``none`` manager (no
cgroups plugin) cannot be paused or updated, and says so.
"""
from __future__ import annotations

import json

from . import runlog
from .common import RuntimeFailure, load, plugin_manager, read_json_object
from .state import RuntimeState


def _record(data: dict) -> dict:
    return data.get("resources") or {"manager": "none"}


def _call(fn, what: str):
    from ..errors import PyrtError

    try:
        return fn()
    except PyrtError as e:
        raise RuntimeFailure(f"{what}: {e}") from None
    except OSError as e:
        raise RuntimeFailure(f"{what}: {e.strerror or e}") from None


def pause(root: str, cid: str, disabled: str | None = None, pm=None) -> None:
    st, data = load(root, cid)
    status = RuntimeState.status(data)
    if status == "paused":
        return
    if status != "running":
        raise RuntimeFailure(f"cannot pause container {cid}: container not running ({status})")
    _freeze(st, data, cid, True, disabled, pm)


def resume(root: str, cid: str, disabled: str | None = None, pm=None) -> None:
    st, data = load(root, cid)
    status = RuntimeState.status(data)
    if status != "paused":
        raise RuntimeFailure(f"cannot resume container {cid}: it is not paused ({status})")
    _freeze(st, data, cid, False, disabled, pm)


def _freeze(st, data: dict, cid: str, frozen: bool, disabled, pm) -> None:
    """Freeze or thaw the container's cgroup and record it as paused or not."""
    verb, doing, done_ = (("pause", "pausing", "paused") if frozen else
                          ("resume", "resuming", "resumed"))
    pm = pm or plugin_manager(disabled)
    record = _record(data)
    done = _call(lambda: pm.hook.pyrt_resources_freeze(container_id=cid, record=record,
                                                        frozen=frozen), f"{doing} container {cid}")
    if not done:
        raise RuntimeFailure(f"cannot {verb} container {cid}: it has no cgroup "
                             f"(manager {record.get('manager', 'none')})")
    data["paused"] = frozen
    st.save(data)
    runlog.debug(f"container {cid} {done_}")


# -- update -----------------------------------------------------------------------------

#: runc's update flags: flag -> (section, key, kind)
UPDATE_FLAGS = {
    "memory": ("memory", "limit", "size"),
    "memory_reservation": ("memory", "reservation", "size"),
    "memory_swap": ("memory", "swap", "size"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "blkio_weight": ("blockIO", "weight", "int"),
    "pids_limit": ("pids", "limit", "int"),
}


def _value(flag: str, text: str, kind: str):
    if kind == "str":
        return text
    t = str(text).strip()
    if t == "-1":
        return -1
    try:
        if kind == "size":
            from ..units import parse_size

            return parse_size(t)
        return int(t)
    except ValueError:
        raise RuntimeFailure(f"invalid --{flag.replace('_', '-')} {text!r}") from None


def read_resources_file(path: str) -> dict:
    return read_json_object(path, "--resources", "runtime-spec LinuxResources")


def resources_doc(base: dict | None, flags: dict) -> dict:
    """A LinuxResources object: ``base`` (from --resources) with the flags laid over it."""
    r = json.loads(json.dumps(base or {}))
    for flag, text in flags.items():
        if text is None:
            continue
        section, key, kind = UPDATE_FLAGS[flag]
        sect = r.get(section)
        if not isinstance(sect, dict):
            sect = r[section] = {}
        sect[key] = _value(flag, text, kind)
    return r


def update(root: str, cid: str, doc: dict, disabled: str | None = None, pm=None) -> None:
    from ..errors import PyrtError
    from .spec import resources_from_spec

    _, data = load(root, cid)
    status = RuntimeState.status(data)
    if status in ("stopped", "creating"):
        raise RuntimeFailure(f"cannot update container {cid}: container not running")
    doc = dict(doc)
    if doc.pop("devices", None):
        runlog.debug("update: device rules are not changed by update (as runc)")
    try:
        resources = resources_from_spec(doc)
    except (PyrtError, KeyError, TypeError, ValueError) as e:
        raise RuntimeFailure(f"invalid resources: {e}") from None
    if resources.is_empty():
        return
    pm = pm or plugin_manager(disabled)
    done = _call(lambda: pm.hook.pyrt_resources_update(container_id=cid, record=_record(data),
                                                        resources=resources),
                 f"updating container {cid}")
    if not done:
        raise RuntimeFailure(f"cannot update container {cid}: it has no cgroup "
                             f"(manager {_record(data).get('manager', 'none')})")
    runlog.debug(f"container {cid} updated: {doc}")


# -- events -----------------------------------------------------------------------------

def stats(root: str, cid: str, disabled: str | None = None, pm=None) -> dict:
    """One runc-style ``{"type": "stats", "id", "data"}`` event."""
    _, data = load(root, cid)
    if not RuntimeState.alive(data):
        raise RuntimeFailure(f"cannot get stats of container {cid}: container not running")
    pm = pm or plugin_manager(disabled)
    raw = _call(lambda: pm.hook.pyrt_resources_stats(container_id=cid, record=_record(data)),
                f"reading stats of container {cid}") or {}
    return {"type": "stats", "id": cid, "data": runc_stats(raw)}


def runc_stats(raw: dict) -> dict:
    """The cgroups plugin's figures in the shape of runc's ``events --stats``."""
    out: dict = {}
    cpu = raw.get("cpu") or {}
    if cpu:
        out["cpu"] = {"usage": {"total": cpu.get("usage_ns") or 0}}
    mem = raw.get("memory") or {}
    if mem:
        out["memory"] = {"usage": {k: v for k, v in (("usage", mem.get("usage")),
                                                     ("max", mem.get("max_usage")),
                                                     ("limit", mem.get("limit")),
                                                     ("failcnt", mem.get("failcnt")))
                                   if v is not None}}
    pids = raw.get("pids") or {}
    if pids:
        out["pids"] = {k: v for k, v in pids.items() if v is not None}
    blk = raw.get("blkio") or {}
    if blk:
        out["blkio"] = {"ioServiceBytesRecursive": [
            {"op": "Read", "value": blk.get("read_bytes") or 0},
            {"op": "Write", "value": blk.get("write_bytes") or 0}]}
    return out
