"""``inspect -f TEMPLATE``'s document, built as far as the template reads it.

docker's inspect document (docker_shape.container_inspect) needs the attrs models (the
record's ``Container``, for ``Config``, ``HostConfig``, ``Mounts`` and pyrt's own
section), the image store and with it the plugin manager: ~100 ms of imports and entry
point scans before the first field, ten times the work of ``{{.State.Pid}}`` (issue 16's
benchmark: ``inspect -f '{{.State.Pid}}' ONE`` among 200 containers took 1.8x podman's
time).  :class:`LazyInspect` stands for that document in the template engine
(cli/gotemplate.py's ``template_field``/``template_value`` protocol):

- the fields in :data:`LEAN` are computed from the record's lean view
  (containers/record.py) when the template first reads them, with the functions the full
  document uses (``state``, ``network_settings``, ``_args`` over the image index's
  config view, images/configview.py);
- any other field, or the document used whole (``{{json .}}``, ``{{.}}``, ``$``), builds
  the full document from the same record (``Container.from_dict``: what
  ``ContainerStore.load`` does) and answers from it from then on.

So a template gives what it gives over the full document (tests/unit/test_inspect_view.py
checks the two side by side for the templates scripts use).
"""
from __future__ import annotations

from .docker_shape import _args, container_inspect, state
from .network_settings import network_settings


def _path_args(engine, c) -> list[str]:
    from ...images.configview import image_config

    return _args(c.config, image_config(engine.settings.root, c.image_id))


def _bundle_file(name: str):
    return lambda engine, c: f"{engine.containers.bundle_dir(c.id)}/{name}"


#: the document's fields read from the record alone: name -> f(engine, lean record), the
#: expressions of docker_shape.container_inspect (the unit test compares every one)
LEAN = {
    "Id": lambda engine, c: c.id,
    "Created": lambda engine, c: c.created,
    "Path": lambda engine, c: (_path_args(engine, c) or [""])[0],
    "Args": lambda engine, c: _path_args(engine, c)[1:],
    "State": lambda engine, c: state(c),
    "Image": lambda engine, c: c.image_id,
    "ResolvConfPath": _bundle_file("resolv.conf"),
    "HostnamePath": _bundle_file("hostname"),
    "HostsPath": _bundle_file("hosts"),
    "LogPath": lambda engine, c: engine.containers.log_path(c.id),
    "Name": lambda engine, c: "/" + c.name,
    "RestartCount": lambda engine, c: c.state.restart_count,
    "Driver": lambda engine, c: c.storage_driver,
    "Platform": lambda engine, c: "linux",
    "MountLabel": lambda engine, c: "",
    "ProcessLabel": lambda engine, c: "",
    "AppArmorProfile": lambda engine, c: "",
    "ExecIDs": lambda engine, c: None,
    "GraphDriver": lambda engine, c: {"Name": c.storage_driver, "Data": None},
    "NetworkSettings": network_settings,
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
                value = self._fields[name] = lean(self.engine, self.record)
                return value
        from ..gotemplate import NOVALUE

        return self.template_value().get(name, NOVALUE)

    def template_value(self) -> dict:
        """The full document (docker_shape.container_inspect), built once."""
        if self._full is None:
            from ...models import Container

            c = Container.from_dict(self.record.to_dict())
            self._full = container_inspect(self.engine, c, self.image_configs)
        return self._full
