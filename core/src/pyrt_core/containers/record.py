"""The lean view of a container record, for the engine's hot commands.

The engine's data types (:mod:`pyrt_core.models`: ``Container``, ``ContainerConfig``,
``ContainerState``) were attrs classes, and building them imported attrs (with typing,
inspect, re and enum: ~30-40 ms), most of the cost of the commands that only look at a
record's state and change a few fields of it; they are plain classes now, and the view
still spares those commands parsing the whole record into them and keeps the keys they
do not know: ``pyrt ps`` (plain, ``-a``,
``-q``), ``rm``, ``stop``, ``kill``, ``wait``, conmon's exit command ``container
cleanup`` and the recovery pass every container command starts with.  Those read and
write ``container.json`` through :class:`ContainerRecord`, a plain class over the JSON
dict, the way the OCI runtime's hot path uses plain classes (docs/architecture.md, "The
hot path"); every other command (``run``, ``create``, ``start``, ``inspect``, ``exec``...)
builds the model ``Container`` (``ContainerStore.load``/``get``/``list``).

The view keeps the dict it was read from and changes it in place: a write through it
(``ContainerStore.save``) keeps every key it did not touch, including fields this
version of pyrt does not know (a newer release's, a plugin's), so a ``stop`` never drops
what ``create`` recorded.  A field missing from an older record reads as the model's
default (``STATE_DEFAULTS``, ``CONFIG_DEFAULTS``, ``TOP_DEFAULTS``:
tests/unit/test_container_record.py checks them against the models).

Keep this module free of imports.
"""
from __future__ import annotations

#: what a field missing from the record reads as (the models' defaults); a list
#: or dict default is made when read and stored in the record, so a change sticks
STATE_DEFAULTS: dict = {
    "status": "created", "pid": 0, "exit_code": 0, "started_at": "", "finished_at": "",
    "oom_killed": False, "resources": dict, "pid_start": None, "boot_id": "",
    "monitor_pid": 0, "monitor_start": None, "run": 0, "restart_count": 0,
    "stop_requested": False, "paused": False, "error": "", "network": dict,
}
CONFIG_DEFAULTS: dict = {
    "command": None, "entrypoint": None, "env": list, "workdir": None, "user": None,
    "hostname": None, "network": "none", "networking": None, "expose": list,
    "publish_all": False, "volumes": list, "volumes_from": list, "read_only": False,
    "userns": False, "uidmaps": list, "gidmaps": list, "tty": False, "interactive": False,
    "auto_remove": False, "resources": dict, "devices": list, "cgroup_parent": None,
    "storage_opts": dict, "restart_policy": "no", "restart_max": 0, "stop_signal": None,
    "stop_timeout": None, "log_size_max": None, "security_opt": list, "seccomp": None,
    "detach": False, "cap_add": list, "cap_drop": list, "privileged": False,
    "no_new_privileges": True, "labels": dict, "healthcheck": None,
    "init": False, "init_path": None, "ulimits": list, "sysctls": dict, "shm_size": None,
    "oom_score_adj": None, "group_add": list, "cidfile": None, "annotations": dict,
    "ipc_mode": None, "pid_mode": None, "uts_mode": None, "cgroupns_mode": None,
    "runtime": "",
    "log_driver": "", "log_opts": dict, "log_tag": None, "platform": None,
}
TOP_DEFAULTS: dict = {"cgroup_manager": "none", "monitor": "", "runtime": ""}
#: the fields a record must have (``Container``'s fields without a default)
REQUIRED = ("id", "name", "image_id", "image_name", "created", "storage_driver", "config")


class RecordSection:
    """Attributes over one dict of a record (``state``, ``config``): a field the dict
    lacks reads as its default; setting a field writes the dict."""

    __slots__ = ("_data", "_defaults")

    def __init__(self, data: dict, defaults: dict):
        if not isinstance(data, dict):
            raise TypeError(f"a container record's section is not an object: {data!r}")
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_defaults", defaults)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # (copy, pickle: before __init__)
            raise AttributeError(name)
        data = self._data
        if name in data:
            return data[name]
        defaults = self._defaults
        if name not in defaults:
            raise AttributeError(name)
        default = defaults[name]
        if default is list or default is dict:
            default = data[name] = default()
        return default

    def __setattr__(self, name: str, value) -> None:
        if name not in self._defaults and name not in self._data:
            raise AttributeError(f"a container record has no field {name!r}")
        self._data[name] = value

    def __repr__(self) -> str:
        return f"RecordSection({self._data!r})"


class ContainerRecord:
    """A container's record (``container.json``) read without the models: the
    attributes the hot commands use (``id``, ``name``, ``state.*``, ``config.*``...), the
    same as :class:`pyrt_core.models.Container`'s, over the dict as it was read.
    :meth:`to_dict` gives that dict back, changed only where the command changed it."""

    __slots__ = ("data", "state", "config")

    def __init__(self, data: dict):
        if not isinstance(data, dict):
            raise TypeError("a container record is not an object")
        for key in REQUIRED:
            if key not in data:
                raise KeyError(f"the record has no {key!r}")
        if not isinstance(data["id"], str) or not isinstance(data["name"], str):
            raise TypeError("a container record's id and name are strings")
        self.data = data
        self.config = RecordSection(data["config"], CONFIG_DEFAULTS)
        self.state = RecordSection(data.setdefault("state", {}), STATE_DEFAULTS)

    def __getattr__(self, name: str):
        if name.startswith("_") or name == "data":  # (copy, pickle: before __init__)
            raise AttributeError(name)
        data = self.data
        if name in data:
            return data[name]
        if name in TOP_DEFAULTS:
            return TOP_DEFAULTS[name]
        raise AttributeError(name)

    @property
    def layer_id(self) -> str:
        """The storage driver's id for the writable layer (as ``Container.layer_id``)."""
        return self.data["id"]

    @property
    def short_id(self) -> str:
        return self.data["id"][:12]

    def to_dict(self) -> dict:
        """The record to write: the dict read, with this command's changes."""
        return self.data

    def __repr__(self) -> str:
        return f"ContainerRecord(id={self.data['id'][:12]!r}, name={self.data['name']!r})"
