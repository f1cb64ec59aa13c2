"""Data types the engine passes around: images, layers, containers, configs.

Style: attrs classes (``@define`` / ``@frozen``), the project's default for data
types: fields with defaults, validators and converters, ``==``, repr and
``attrs.evolve`` for free.  Only the engine's commands import them, and those import
attrs anyway; the OCI runtime's hot path never does (its types are plain classes on
:mod:`pyrt_core.records`, see :mod:`pyrt_core.runtime.config` and
docs/architecture.md, "The hot path"), and neither does ``pyrt run -d`` before it
starts the container's monitor (:class:`pyrt_core.config.Settings`).

``to_dict``/``from_dict`` give the JSON form stored on disk; the JSON form uses the
OCI/docker field names where one exists.
"""
from __future__ import annotations

import re

import attrs
from attrs import define, field, frozen

from .errors import UsageError

DEFAULT_TAG = "latest"
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_NAME_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@frozen
class ImageReference:
    """A parsed image name: ``[registry/]repository[:tag][@digest]``.

    ``transport`` is ``"registry"`` for plain names, or the prefix of a
    transport-qualified name (``oci:DIR``, ``oci-archive:FILE``,
    ``docker-archive:FILE``), in which case ``repository`` holds the path.
    """

    repository: str
    tag: str | None = None
    digest: str | None = None
    registry: str | None = None
    transport: str = "registry"

    TRANSPORTS = ("oci", "oci-archive", "docker-archive")

    @classmethod
    def parse(cls, text: str) -> "ImageReference":
        if not text or text != text.strip():
            raise UsageError(f"invalid reference format: {text!r}")
        head, sep, rest = text.partition(":")
        if sep and head in cls.TRANSPORTS:
            if not rest:
                raise UsageError(f"invalid reference format: {text!r}: missing path")
            return cls(repository=rest, transport=head)
        name, digest = text, None
        if "@" in name:
            name, digest = name.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise UsageError(f"invalid reference format: {text!r}: bad digest")
        tag = None
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = name.rsplit(":", 1)
            if not _TAG_RE.match(tag):
                raise UsageError(f"invalid reference format: {text!r}: bad tag")
        registry = None
        parts = name.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry, parts = parts[0], parts[1:]
        if not parts or not all(_NAME_COMPONENT.match(p) for p in parts):
            raise UsageError(
                f"invalid reference format: {text!r}: repository name must be lowercase"
            )
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(repository="/".join(parts), tag=tag, digest=digest, registry=registry)

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        if self.transport != "registry":
            return f"{self.transport}:{self.repository}"
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def _list(v):
    return list(v) if v is not None else None


def _str_slice(v):
    """docker's StrSlice: a plain string stands for a one-element list."""
    return [v] if isinstance(v, str) else v


@define
class ImageConfig:
    """The runtime-relevant part of an image's config (OCI ``config`` object)."""

    entrypoint: list[str] | None = field(default=None, converter=_list)
    cmd: list[str] | None = field(default=None, converter=_list)
    env: list[str] = field(factory=list)
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(factory=list)
    volumes: list[str] = field(factory=list)
    stop_signal: str | None = None
    labels: dict[str, str] = field(factory=dict)

    @classmethod
    def from_oci(cls, cfg: dict | None) -> "ImageConfig":
        cfg = cfg or {}
        return cls(
            entrypoint=_str_slice(cfg.get("Entrypoint")),
            cmd=_str_slice(cfg.get("Cmd")),
            env=list(cfg.get("Env") or []),
            working_dir=cfg.get("WorkingDir") or "",
            user=cfg.get("User") or "",
            exposed_ports=sorted((cfg.get("ExposedPorts") or {}).keys()),
            volumes=sorted((cfg.get("Volumes") or {}).keys()),
            stop_signal=cfg.get("StopSignal"),
            labels=dict(cfg.get("Labels") or {}),
        )

    def to_oci(self) -> dict:
        out: dict = {}
        if self.entrypoint is not None:
            out["Entrypoint"] = self.entrypoint
        if self.cmd is not None:
            out["Cmd"] = self.cmd
        if self.env:
            out["Env"] = self.env
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.labels:
            out["Labels"] = self.labels
        return out


@define
class Layer:
    """One image layer in the layer store, keyed by its chain id.

    ``driver_id`` is the id the storage driver knows the layer by (the hex of
    the chain id); ``incomplete`` is set before driver work starts and
    cleared once the diff is applied, so a crash leaves a visible mark.
    """

    chain_id: str
    diff_id: str
    parent: str | None = None
    size: int = 0
    incomplete: bool = False

    @property
    def driver_id(self) -> str:
        return self.chain_id.split(":", 1)[-1]


@define
class Image:
    """An image in the local store.

    ``id`` is the config blob's digest (as docker does); ``layers`` lists
    chain ids from the base up; ``diff_ids`` the uncompressed layer digests
    in the same order; ``names`` the ``repository:tag`` names pointing at it.
    """

    id: str
    names: list[str] = field(factory=list)
    digest: str | None = None
    layers: list[str] = field(factory=list)
    diff_ids: list[str] = field(factory=list)
    config: ImageConfig = field(factory=ImageConfig)
    architecture: str = ""
    os: str = "linux"
    created: str = ""
    size: int = 0

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]

    @property
    def top_layer(self) -> str | None:
        return self.layers[-1] if self.layers else None

    def to_dict(self) -> dict:
        d = attrs.asdict(self, recurse=False)
        d["config"] = self.config.to_oci()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Image":
        d = dict(d)
        d["config"] = ImageConfig.from_oci(d.get("config"))
        return cls(**d)


@define
class FetchOptions:
    """Options for :func:`pyrt_core.hookspecs.pyrt_image_fetch`."""

    platform: str | None = None
    quiet: bool = False
    pull: str = "missing"
    settings: dict = field(factory=dict)


@frozen
class VolumeSpec:
    """A ``-v SRC:DST[:ro]`` bind mount."""

    source: str
    destination: str
    readonly: bool = False

    @classmethod
    def parse(cls, text: str) -> "VolumeSpec":
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise UsageError(f"invalid volume specification {text!r}: expected SRC:DST[:ro|rw]")
        src, dst = parts[0], parts[1]
        opts = parts[2].split(",") if len(parts) == 3 else []
        for o in opts:
            if o not in ("ro", "rw", "z", "Z"):
                raise UsageError(f"invalid volume specification {text!r}: unknown option {o!r}")
        if not src.startswith("/"):
            raise UsageError(
                f"invalid volume specification {text!r}: source must be an absolute host path"
            )
        if not dst.startswith("/"):
            raise UsageError(
                f"invalid volume specification {text!r}: destination must be an absolute path"
            )
        return cls(source=src, destination=dst, readonly="ro" in opts)


@frozen
class IdMap:
    """One line of a user namespace uid or gid map."""

    container_id: int
    host_id: int
    size: int

    @classmethod
    def parse(cls, text: str) -> "IdMap":
        try:
            c, h, s = (int(x) for x in text.split(":"))
        except ValueError:
            raise UsageError(f"invalid id mapping {text!r}: expected CONTAINER:HOST:SIZE") from None
        if c < 0 or h < 0 or s <= 0:
            raise UsageError(f"invalid id mapping {text!r}: ids must be >= 0 and size > 0")
        return cls(c, h, s)


@define
class ContainerConfig:
    """Everything a user asked for when creating a container (resolved flags)."""

    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    network: str = "none"  # docker's NetworkMode: none, host, bridge, a network, container:ID
    # the resolved networking (pyrt_core.netmodel.ContainerNetworking.to_dict()), kept as
    # its JSON form so that reading records (ps, rm) never imports netmodel; None in
    # records of an earlier pyrt: derived from ``network`` (none or host)
    networking: dict | None = None
    expose: list[str] = field(factory=list)  # --expose (and -p) ports, "80/tcp"
    publish_all: bool = False  # -P: the image's and --expose's ports on random host ports
    volumes: list[VolumeSpec] = field(factory=list)
    read_only: bool = False
    userns: bool = False
    uidmaps: list[IdMap] = field(factory=list)
    gidmaps: list[IdMap] = field(factory=list)
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    resources: dict = field(factory=dict)  # OCI linux.resources from the resource flags
    devices: list[dict] = field(factory=list)  # OCI linux.devices from --device
    cgroup_parent: str | None = None
    storage_opts: dict[str, str] = field(factory=dict)
    restart_policy: str = "no"  # no | on-failure | always | unless-stopped
    restart_max: int = 0  # on-failure:N (0: no limit)
    stop_signal: str | None = None  # --stop-signal, else the image's StopSignal, else SIGTERM
    stop_timeout: int | None = None  # --stop-timeout (seconds), else 10
    log_size_max: int | None = None  # --log-opt max-size (bytes), else the engine's default
    security_opt: list[str] = field(factory=list)  # --security-opt, as given
    seccomp: str | None = None  # None: pyrt's default profile; "unconfined"; else a profile's JSON
    detach: bool = False
    cap_add: list[str] = field(factory=list)  # --cap-add, normalized (CAP_X or ALL)
    cap_drop: list[str] = field(factory=list)  # --cap-drop, normalized
    privileged: bool = False  # --privileged
    no_new_privileges: bool = True  # --security-opt no-new-privileges=false turns it off

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ContainerConfig":
        d = dict(d)
        known = {a.name for a in attrs.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["volumes"] = [VolumeSpec(**v) for v in d.get("volumes", [])]
        d["uidmaps"] = [IdMap(**m) for m in d.get("uidmaps", [])]
        d["gidmaps"] = [IdMap(**m) for m in d.get("gidmaps", [])]
        return cls(**d)


@define
class ContainerState:
    """What happened to a container; stored with it."""

    status: str = "created"  # creating | created | starting | running | exited | removing
    pid: int = 0
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    oom_killed: bool = False
    resources: dict = field(factory=dict)  # record from pyrt_resources_apply
    pid_start: int | None = None  # /proc/PID/stat start time of the init (pid reuse guard)
    boot_id: str = ""  # the boot the pids belong to
    monitor_pid: int = 0  # the process that reaps the container and records its exit
    monitor_start: int | None = None
    run: int = 0  # incremented at every start; the monitor's exit command names it
    restart_count: int = 0
    stop_requested: bool = False  # stopped by a user: no restart (docker's "manually stopped")
    paused: bool = False  # frozen by `pyrt pause`
    error: str = ""
    # the network record pyrt_network_setup returned for this run (hookspecs,
    # "Networking"); {} when the container has no network of a plugin or does not run
    network: dict = field(factory=dict)


@define
class Container:
    """A container: its config, the image it came from, and where it lives.

    ``storage_driver`` and ``cgroup_manager`` record the mechanisms used so
    later commands (stop, rm, recovery) use the same ones.
    """

    id: str
    name: str
    image_id: str
    image_name: str
    created: str
    storage_driver: str
    config: ContainerConfig
    state: ContainerState = field(factory=ContainerState)
    cgroup_manager: str = "none"
    monitor: str = ""  # "conmon" (detached) or "pyrt" (a foreground CLI reaps it)
    runtime: str = ""  # the OCI runtime the monitor drives (path of pyrt-runtime)

    @property
    def layer_id(self) -> str:
        """The storage driver's id for this container's writable layer."""
        return self.id

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Container":
        d = dict(d)
        d["config"] = ContainerConfig.from_dict(d["config"])
        st = d.get("state", {})
        known = {a.name for a in attrs.fields(ContainerState)}
        d["state"] = ContainerState(**{k: v for k, v in st.items() if k in known})
        return cls(**d)
