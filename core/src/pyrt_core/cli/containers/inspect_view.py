"""``inspect -f TEMPLATE``'s document, built as far as the template reads it.

docker's inspect document (docker_shape.container_inspect) needs the attrs models (the
record's ``Container``, for ``Config``, ``HostConfig``, ``Mounts`` and pyrt's own
section), the image store and with it the plugin manager: ~100 ms of imports and entry
point scans before the first field, ten times the work of ``{{.State.Pid}}`` (issue 16's
benchmark: ``inspect -f '{{.State.Pid}}' ONE`` among 200 containers took 1.8x podman's
time).  :class:`LazyInspect` stands for that document in the template engine
(cli/gotemplate.py's ``template_field``/``template_value`` protocol):

- the fields in :data:`LEAN` (all but ``Pyrt``, which holds the attrs model's own
  ``to_dict``) are computed from the record's lean view (containers/record.py) when the
  template first reads them, with the functions the full document uses (``state``,
  ``_config``, ``_host_config``, ``inspect_mounts``, ``network_settings``, ``_args``;
  the volumes as ``VolumeSpec`` attributes, :data:`VOLUME_DEFAULTS`; the image's config
  from the image index, images/configview.py);
- any other field, or the document used whole (``{{json .}}``, ``{{.}}``, ``$``), builds
  the full document from the same record (``Container.from_dict``: what
  ``ContainerStore.load`` does) and answers from it from then on.

So a template gives what it gives over the full document (tests/unit/test_inspect_view.py
checks the two side by side for the templates scripts use).
"""
from __future__ import annotations

from ...containers.record import RecordSection
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
    """The lean record as ``HostConfig`` and ``Mounts`` read the attrs ``Container``."""

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

    def template_field(self, name: str):
        if self._full is None:
            if name in self._fields:
                return self._fields[name]
            lean = LEAN.get(name)
            if lean is not None:
                try:
                    value = self._fields[name] = lean(self)
                    return value
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
        """The full document (docker_shape.container_inspect), built once."""
        if self._full is None:
            from ...models import Container

            c = Container.from_dict(self.record.to_dict())
            self._full = container_inspect(self.engine, c, self.image_configs)
        return self._full
