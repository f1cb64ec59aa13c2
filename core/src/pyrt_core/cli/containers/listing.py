"""``ps``: which containers (docker's ``--filter``, ``-a``, ``-n``, ``-l``) and what is said
of each (the STATUS text, the ``--format`` fields).

Filters follow docker's rules: one key given several times matches any of its values,
different keys must all match; ``name`` and ``id`` are regular expressions searched in the
name (with its leading ``/``) and the id, ``label`` is ``KEY`` or ``KEY=VALUE``, ``status``
lists stopped containers too (``docker ps -q -f status=exited``), ``ancestor`` is an image
by name, id or id prefix, ``before``/``since`` a container, ``exited`` an exit code.
"""
from __future__ import annotations

from ...errors import UsageError
from ..common import ago, docker_time, human_duration, human_size, seconds_since
from ..filters import labels_match, parse_filters

#: the header of each --format field in a table (docker's)
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
           "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
           "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
           "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS",
           "LocalVolumes": "LOCAL VOLUMES"}


def _regex_any(patterns: list[str], text: str) -> bool:
    import re

    for p in patterns:
        try:
            if re.search(p, text):
                return True
        except re.error:
            if p in text:
                return True
    return False


def docker_state(c) -> str:
    from .docker_shape import docker_status

    return docker_status(c)


def status_text(c, root: str | None = None) -> str:
    """docker's STATUS column: "Up 5 seconds", "Up 2 hours (Paused)", "Up 3 seconds
    (health: starting)", "Up 1 minute (healthy)", "Exited (0) 3 minutes ago", "Created"
    (the health read from ``root``'s health.json, for a container with a check)."""
    s = c.state
    if s.status in ("running", "starting"):
        secs = seconds_since(s.started_at)
        up = "Up " + human_duration(max(secs, 0)) if secs is not None else "Up"
        if s.paused:
            return up + " (Paused)"
        health = health_status(root, c) if root else None
        if health and health != "none":
            return up + (" (health: starting)" if health == "starting" else f" ({health})")
        return up
    if s.status in ("created", "creating"):
        return "Created"
    if s.status == "removing":
        return "Removal In Progress"
    return f"Exited ({s.exit_code}) {ago(s.finished_at)}"


def health_status(root: str, c) -> str:
    """docker's health of ``c``: starting, healthy, unhealthy, or none (no check)."""
    from ...health import config as hconf

    if not hconf.enabled(c.config.healthcheck):
        return "none"
    from ...health import state as hstate

    data = hstate.read(root, c.id)
    if data and data.get("Status"):
        return data["Status"]
    return "starting" if c.state.status in ("running", "starting") else "unhealthy"


def select(engine, args, lean: bool = False) -> list:
    """The containers ``ps`` shows, newest first: the model ``Container``s, or with
    ``lean`` (the plain table and ``-q``: no filter, template or size) the lean views of
    the records (containers.record), which build no model."""
    filters = parse_filters(getattr(args, "filter", None))
    listed = engine.containers.records() if lean else engine.containers.list()
    cs = sorted(listed, key=lambda c: c.created, reverse=True)
    every = args.all or bool(getattr(args, "last", None)) or getattr(args, "latest", False) \
        or "status" in filters
    if filters:
        cs = [c for c in cs if _matches(engine, c, filters, cs)]
    if not every:
        cs = [c for c in cs if c.state.status in ("running", "starting")]
    if getattr(args, "latest", False):
        cs = cs[:1]
    elif getattr(args, "last", None) is not None and args.last > 0:
        cs = cs[:args.last]
    return cs


def _ref_created(engine, ref: str, key: str) -> str:
    from ...errors import NotFoundError

    try:
        return engine.containers.get(ref).created
    except NotFoundError:
        raise UsageError(f"no such container: {ref} (filter {key})") from None


def _matches(engine, c, f: dict, _all) -> bool:
    if "id" in f and not _regex_any(f["id"], c.id):
        return False
    if "name" in f and not _regex_any(f["name"], "/" + c.name):
        return False
    if "label" in f and not labels_match(_labels(engine, c), f["label"]):
        return False
    if "status" in f and docker_state(c) not in f["status"]:
        return False
    if "exited" in f and not (c.state.status == "exited" and
                              str(c.state.exit_code) in f["exited"]):
        return False
    if "ancestor" in f and not any(_is_ancestor(engine, c, a) for a in f["ancestor"]):
        return False
    if "before" in f and not all(c.created < _ref_created(engine, r, "before") for r in f["before"]):
        return False
    if "since" in f and not all(c.created > _ref_created(engine, r, "since") for r in f["since"]):
        return False
    if "health" in f and health_status(engine.settings.root, c) not in f["health"]:
        return False
    if "network" in f and c.config.network not in f["network"]:
        return False
    if "volume" in f:
        vols = {getattr(v, "source", "") for v in c.config.volumes or []} | \
            {getattr(v, "destination", "") for v in c.config.volumes or []}
        if not vols & set(f["volume"]):
            return False
    return True


def _is_ancestor(engine, c, ref: str) -> bool:
    from ...errors import PyrtError

    bare = ref.split(":", 1)[-1] if ref.startswith("sha256:") else ref
    if len(bare) >= 4 and all(ch in "0123456789abcdef" for ch in bare) and \
            c.image_id.split(":", 1)[-1].startswith(bare):
        return True
    try:
        return engine.images.get(ref).id == c.image_id
    except PyrtError:
        return c.image_name in (ref, ref + ":latest")


_IMAGE_CONFIGS: dict = {}


def _image_config(engine, c):
    """The image's entrypoint, cmd and labels: read from the image index alone
    (images.configview: no image store, no attrs); an image that is gone reads as empty."""
    from ...images.configview import image_config

    if c.image_id not in _IMAGE_CONFIGS:
        _IMAGE_CONFIGS[c.image_id] = image_config(engine.settings.root, c.image_id)
    return _IMAGE_CONFIGS[c.image_id]


def _labels(engine, c) -> dict:
    labels = dict(_image_config(engine, c).labels or {})
    labels.update(getattr(c.config, "labels", None) or {})
    return labels


def command_text(engine, c) -> str:
    """docker's COMMAND: the container's entrypoint and command, the image's where the
    container has none (the image's from :func:`_image_config`: no image store, so
    `pyrt ps` imports neither json nor typing, tests/unit/test_cli_lean.py)."""
    from .docker_shape import _args

    return " ".join(_args(c.config, _image_config(engine, c)))


def _ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def sizes(engine, c) -> tuple[int, int]:
    """(the writable layer's size, with the image's): docker's SizeRw and SizeRootFs."""
    from ...errors import PyrtError

    try:
        img = engine.images.get(c.image_id)
    except PyrtError:
        return 0, 0
    try:
        # (the driver's id of the image's top layer: its chain id's hex, as engine.create)
        top = img.top_layer.split(":", 1)[-1] if img.top_layer else None
        rw = engine.driver.diff_size(c.layer_id, top)
    except (PyrtError, OSError):
        rw = 0
    return rw, rw + img.size


def size_text(engine, c) -> str:
    """docker's SIZE: the writable layer's size, and with the image's ("virtual")."""
    rw, total = sizes(engine, c)
    return f"{human_size(rw)} (virtual {human_size(total)})"


def row(engine, c, trunc: bool = True, size: bool = False) -> dict:
    """docker's ps fields for ``c`` (what ``--format`` templates and ``json`` see)."""
    labels = _labels(engine, c)
    command = command_text(engine, c)
    mounts = [getattr(v, "source", "") for v in c.config.volumes or []]
    return {
        "Command": '"' + (_ellipsis(command, 20) if trunc else command).replace('"', '\\"') + '"',
        "CreatedAt": docker_time(c.created),
        "ID": c.short_id if trunc else c.id,
        "Image": c.image_name,
        "Labels": ",".join(f"{k}={labels[k]}" for k in sorted(labels)),
        "Label": lambda key: labels.get(key, ""),
        "LocalVolumes": "0",
        "Mounts": ",".join(_ellipsis(m, 15) if trunc else m for m in mounts),
        "Names": c.name,
        "Networks": c.config.network,
        "Ports": _ports(c),
        "RunningFor": ago(c.created),
        "Size": size_text(engine, c) if size else "0B",
        "State": docker_state(c),
        "Status": status_text(c, engine.settings.root),
    }


def _ports(c) -> str:
    from .ports import ports_column

    return ports_column(c)
