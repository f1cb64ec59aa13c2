"""``inspect``'s document of a container, built from its record's lean view, and for
``inspect -f TEMPLATE`` only as far as the template reads it.

docker's inspect document (docker_shape.container_inspect) over the models (the
record's ``Container``) cost ~40 ms of imports (attrs, typing, inspect, re, enum, when the
models were attrs classes) before the first field, more than the rest of the command
(issue 16's benchmark, 200 containers: ``inspect -f '{{.State.Pid}}' ONE`` took 1.8x
podman's time, ``inspect ONE`` 1.8x too); the lean view still builds only what is
read.  :class:`LazyInspect` stands for that document, for the template engine
(cli/gotemplate.py's ``template_field``/``template_value`` protocol) and for the JSON
output (``template_value``):

- each field of :data:`LEAN` (every field of the document) is computed from the record's
  lean view (containers/record.py) when first read, with the functions the full document
  uses (``state``, ``_config``, ``_host_config``, ``inspect_mounts``,
  ``network_settings``, ``_args``; the volumes as ``VolumeSpec`` attributes,
  :data:`VOLUME_DEFAULTS`; the image's config from the image index,
  images/configview.py; ``Pyrt.ContainerConfig`` as the model's ``asdict``,
  :func:`config_dict`);
- the document used whole (``{{json .}}``, ``{{.}}``, ``$``, the JSON output) is every
  field of LEAN, in container_inspect's order;
- a record the lean view cannot give (a field it does not know in a volume or an id map:
  AttributeError) builds the document from the model (``Container.from_dict``:
  what ``ContainerStore.load`` does), which answers from then on.

So ``inspect`` gives what container_inspect gives (tests/unit/test_inspect_view.py
compares the two for records of every kind, tests/privileged/test_inspect_lazy.py on
real containers).
"""
from __future__ import annotations

from ...containers.record import CONFIG_DEFAULTS, RecordSection
from .docker_shape import (_args, _config, _host_config, _image_config, _mounts, _with_network,
                           container_inspect, state)
from .network_settings import network_settings


def _path_args(d) -> list[str]:
    return _args(d.record.config, d.image_config())


#: what a field missing from a volume of the record reads as (``VolumeSpec``'s defaults;
#: the unit test compares them): ``source`` and ``destination`` have none
VOLUME_DEFAULTS: dict = {
    "readonly": False, "type": "bind", "propagation": "", "nocopy": False, "driver": "",
    "driver_opts": dict, "tmpfs_size": None, "tmpfs_mode": None, "tmpfs_options": list,
    "anonymous": False, "create_source": False, "tmpfs_flag": False,
}


class _Config:
    """The record's config with its volumes as ``VolumeSpec`` gives them (attributes)."""

    def __init__(self, config):
        self._config = config
        self.volumes = [RecordSection(v, VOLUME_DEFAULTS) for v in config.volumes or ()]

    def __getattr__(self, name: str):
        return getattr(self._config, name)


class _Container:
    """The lean record as ``HostConfig`` and ``Mounts`` read the model ``Container``."""

    def __init__(self, record):
        self._record = record
        self.config = _Config(record.config)

    def __getattr__(self, name: str):
        return getattr(self._record, name)


def _host_config_of(d) -> dict:
    c = d.with_volumes()
    return _with_network(_host_config(c, _mounts(c.config)[1]), c)


def _mounts_of(d) -> list:
    from ...engine.volumes import inspect_mounts

    return inspect_mounts(d.engine, d.with_volumes())


#: ``IdMap``'s fields (none has a default)
IDMAP_FIELDS = ("container_id", "host_id", "size")


def _plain(v, name: str, required: tuple, defaults: dict) -> dict:
    """``asdict`` of the model class ``name`` built from the record's dict ``v``: its
    required fields, then the others with their defaults, in the class's order; a dict the
    class would refuse (a field missing or unknown) raises AttributeError, so the full
    document (which raises the model's own error) answers instead."""
    if not isinstance(v, dict) or any(k not in v for k in required) or \
            any(k not in defaults and k not in required for k in v):
        raise AttributeError(f"a record's {name} the lean view cannot give: {v!r}")
    out = {k: v[k] for k in required}
    for k, default in defaults.items():
        out[k] = v[k] if k in v else (default() if default is list or default is dict else default)
    return out


def config_dict(config: RecordSection) -> dict:
    """``ContainerConfig.to_dict()`` of the record's config (the model's ``asdict``:
    every field, in its order, volumes and id maps as dicts of all their fields); the unit
    test compares them."""
    data = config._data
    if "image" not in data:
        raise AttributeError("a record's config without an image")
    out = {"image": data["image"]}
    for k in CONFIG_DEFAULTS:
        out[k] = getattr(config, k)
    out["volumes"] = [_plain(v, "volume", ("source", "destination"), VOLUME_DEFAULTS)
                      for v in out["volumes"]]
    for k in ("uidmaps", "gidmaps"):
        out[k] = [_plain(m, "id map", IDMAP_FIELDS, {}) for m in out[k]]
    return out


def _pyrt(d) -> dict:
    r = d.record
    return {"ImageName": r.image_name, "CgroupManager": r.cgroup_manager,
            "DeviceCgroup": r.cgroup_manager != "none", "Monitor": r.monitor,
            "OCIRuntime": r.runtime, "ContainerConfig": config_dict(r.config)}


def _bundle_file(name: str):
    return lambda d: f"{d.engine.containers.bundle_dir(d.record.id)}/{name}"


#: the document's fields read from the record alone: name -> f(LazyInspect), the
#: expressions of docker_shape.container_inspect over the lean view (the unit test
#: compares every one with the full document's)
LEAN = {
    "Id": lambda d: d.record.id,
    "Created": lambda d: d.record.created,
    "Path": lambda d: (_path_args(d) or [""])[0],
    "Args": lambda d: _path_args(d)[1:],
    "State": lambda d: state(d.record, d.engine),
    "Image": lambda d: d.record.image_id,
    "ResolvConfPath": _bundle_file("resolv.conf"),
    "HostnamePath": _bundle_file("hostname"),
    "HostsPath": _bundle_file("hosts"),
    "LogPath": lambda d: d.engine.containers.log_path(d.record.id),
    "Name": lambda d: "/" + d.record.name,
    "RestartCount": lambda d: d.record.state.restart_count,
    "Driver": lambda d: d.record.storage_driver,
    "Platform": lambda d: "linux",
    "MountLabel": lambda d: "",
    "ProcessLabel": lambda d: "",
    "AppArmorProfile": lambda d: "",
    "ExecIDs": lambda d: None,
    "HostConfig": _host_config_of,
    "GraphDriver": lambda d: {"Name": d.record.storage_driver, "Data": None},
    "Mounts": _mounts_of,
    "Config": lambda d: _config(d.record, d.image_config()),
    "NetworkSettings": lambda d: network_settings(d.engine, d.record),
    "Pyrt": _pyrt,
}


class LazyInspect:
    """The inspect document of the container whose lean record is ``record``, for a
    template (see the module docstring); ``image_configs`` is container_inspect's cache of
    image configs, shared by the containers of one command."""

    __slots__ = ("engine", "record", "image_configs", "_fields", "_full")

    def __init__(self, engine, record, image_configs: dict | None = None):
        self.engine = engine
        self.record = record
        self.image_configs = image_configs if image_configs is not None else {}
        self._fields: dict = {}
        self._full: dict | None = None

    def _lean(self, name: str):
        """The field ``name`` of LEAN, computed once (AttributeError: the lean view
        cannot give it)."""
        fields = self._fields
        if name not in fields:
            fields[name] = LEAN[name](self)
        return fields[name]

    def template_field(self, name: str):
        if self._full is None and name in LEAN:
            try:
                return self._lean(name)
            except AttributeError:  # a field the lean view cannot give (a nested model
                pass                # of a newer record's): the full document answers
        from ..gotemplate import NOVALUE

        return self.template_value().get(name, NOVALUE)

    def with_volumes(self) -> _Container:
        return _Container(self.record)

    def image_config(self):
        """The image's config, from the image index (docker_shape._image_config)."""
        return _image_config(self.engine, self.record, self.image_configs)

    def template_value(self) -> dict:
        """The full document (docker_shape.container_inspect's), built once: from the lean
        view, or, when a field of the record is one it cannot give, from the model."""
        if self._full is None:
            try:
                self._full = {name: self._lean(name) for name in LEAN}
            except AttributeError:
                from ...models import Container

                c = Container.from_dict(self.record.to_dict())
                self._full = container_inspect(self.engine, c, self.image_configs)
        return self._full
