"""Data types the engine passes around: images, layers, containers, configs.

Style: classes on :class:`pyrt_core.records.Model`, declared as attrs classes are (fields
as annotations with defaults, factories and converters; ``frozen=True`` for the
immutable ones) and with what attrs gave them: ``==``, repr, ``__slots__``, hashing for
the frozen ones, :func:`~pyrt_core.records.asdict`, :func:`~pyrt_core.records.evolve`
and :func:`~pyrt_core.records.fields`.  They were attrs classes until issue 17: every
``run``, ``create`` and ``start`` builds them, and importing attrs (with typing,
inspect, re and enum) and building its classes cost those commands ~20-25 ms, the
largest piece of ``run --rm`` after the interpreter; these classes cost ~1 ms
(docs/architecture.md, "The hot path").  The hot commands that only look at a record
(``ps``, ``rm``, ``stop``, ``kill``, ``wait``, conmon's exit command) still read it
through the lean view :class:`pyrt_core.containers.record.ContainerRecord`, which
keeps every key it does not touch.  A field added to ``ContainerState``, or one of
``ContainerConfig`` that a hot command reads, gets its default in ``containers.record``
too (tests/unit/test_container_record.py compares them).

``to_dict``/``from_dict`` give the JSON form stored on disk; the JSON form uses the
OCI/docker field names where one exists.
"""
from __future__ import annotations

from .records import Model, asdict, field, fields

from .errors import UsageError

DEFAULT_TAG = "latest"
_PATTERNS = {
    "digest": r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$",
    "name": r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$",
    "tag": r"^[\w][\w.-]{0,127}$",
}
_COMPILED: dict = {}


_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TAG_REST = _WORD | frozenset(".-")


def _name_component(text: str) -> bool:
    """``_PATTERNS["name"]`` without re: lowercase letters and digits, separated by one
    ``.``, one ``_``, ``__`` or any number of ``-``, neither first nor last."""
    if not text or text[0] not in _LOWER_ALNUM or text[-1] not in _LOWER_ALNUM:
        return False
    i, n = 0, len(text)
    while i < n:
        if text[i] in _LOWER_ALNUM:
            i += 1
            continue
        j = i
        while text[j] not in _LOWER_ALNUM:  # ends before the last character, a letter
            j += 1
        sep = text[i:j]
        if sep not in (".", "_", "__") and sep != "-" * len(sep):
            return False
        i = j
    return True


def _match(kind: str, text: str):
    """Whether ``text`` matches the pattern ``kind`` whole (``re.fullmatch``).  A name component,
    and the common form of a tag (ASCII word characters, dots and dashes), are answered
    without ``re``, which costs ~5-10 ms with enum: every ``run`` parses its image's name
    (tests/unit/test_reference.py checks both against the patterns); anything else goes
    to the pattern."""
    if kind == "name":
        return _name_component(text)
    if kind == "tag" and 0 < len(text) <= 128 and text[0] in _WORD \
            and _TAG_REST.issuperset(text):
        return True
    pattern = _COMPILED.get(kind)
    if pattern is None:
        import re

        pattern = _COMPILED[kind] = re.compile(_PATTERNS[kind])
    return pattern.fullmatch(text)  # not match: its $ also takes a trailing newline


class ImageReference(Model, frozen=True):
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
            if not _match("digest", digest):
                raise UsageError(f"invalid reference format: {text!r}: bad digest")
        tag = None
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = name.rsplit(":", 1)
            if not _match("tag", tag):
                raise UsageError(f"invalid reference format: {text!r}: bad tag")
        registry = None
        parts = name.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry, parts = parts[0], parts[1:]
        if not parts or not all(_match("name", p) for p in parts):
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


class ImageConfig(Model):
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


class Layer(Model):
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


class Image(Model):
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
        d = asdict(self, recurse=False)
        d["config"] = self.config.to_oci()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Image":
        d = dict(d)
        d["config"] = ImageConfig.from_oci(d.get("config"))
        return cls(**d)


class FetchOptions(Model):
    """Options for :func:`pyrt_core.hookspecs.pyrt_image_fetch`."""

    platform: str | None = None
    quiet: bool = False
    pull: str = "missing"
    settings: dict = field(factory=dict)


class VolumeSpec(Model, frozen=True):
    """One mount of a container, as the user asked for it: ``-v``, ``--mount``,
    ``--tmpfs``, ``--volumes-from`` or the image's ``VOLUME``.

    ``type`` is docker's: ``bind`` (``source`` a host path), ``volume`` (``source`` a
    volume's name, filled in for an anonymous one at create) or ``tmpfs`` (no source).
    The fields beyond the first three default to the old ``-v SRC:DST[:ro]`` bind, so
    records written before volumes existed load unchanged."""

    source: str
    destination: str
    readonly: bool = False
    type: str = "bind"
    propagation: str = ""  # bind-propagation: shared, rshared, slave, rslave, private, rprivate
    nocopy: bool = False  # volume-nocopy: no copy-up of the image's content
    driver: str = ""  # volume-driver ("" = local, or the existing volume's)
    driver_opts: dict = field(factory=dict)  # volume-opt KEY=VALUE
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None
    tmpfs_options: list = field(factory=list)  # --tmpfs PATH:OPTS, as given (size=64m, ...)
    anonymous: bool = False  # an anonymous volume: `rm -v` and `run --rm` remove it
    create_source: bool = False  # -v: a missing host path is made (docker); --mount refuses
    tmpfs_flag: bool = False  # --tmpfs (docker: in HostConfig.Tmpfs, not in Mounts)

    @classmethod
    def parse(cls, text: str) -> "VolumeSpec":
        """``-v``: ``/host:/ctr[:opts]`` (a bind), ``NAME:/ctr[:opts]`` (a named volume,
        created on first use), ``/ctr`` (an anonymous volume); opts ``ro``, ``rw``,
        ``nocopy``, a propagation, ``z``/``Z`` (accepted, no SELinux here)."""
        parts = text.split(":")
        if not text or len(parts) > 3 or not all(parts):
            raise UsageError(f"invalid volume specification: {text!r}")
        if len(parts) == 1:
            dst = parts[0]
            if not dst.startswith("/"):
                raise UsageError(f"invalid volume specification: {text!r}: the destination "
                                 "must be an absolute path")
            return cls(source="", destination=dst, type="volume", anonymous=True)
        if len(parts) == 2 and not parts[1].startswith("/") and parts[0].startswith("/"):
            # /ctr:ro  (an anonymous volume with options)
            src, dst, opts = "", parts[0], parts[1].split(",")
        else:
            src, dst = parts[0], parts[1]
            opts = parts[2].split(",") if len(parts) == 3 else []
        if not dst.startswith("/"):
            raise UsageError(f"invalid volume specification: {text!r}: the destination "
                             "must be an absolute path")
        readonly, nocopy, propagation = False, False, ""
        for o in opts:
            if o in ("ro", "rw"):
                readonly = o == "ro"
            elif o == "nocopy":
                nocopy = True
            elif o in PROPAGATIONS:
                propagation = o
            elif o not in ("z", "Z", "consistent", "cached", "delegated"):
                raise UsageError(f"invalid volume specification: {text!r}: unknown option {o!r}")
        if src.startswith("/"):
            if nocopy:
                raise UsageError(f"invalid volume specification: {text!r}: nocopy is for volumes")
            return cls(source=_clean(src), destination=dst, readonly=readonly,
                       propagation=propagation, create_source=True)
        if src:
            check_volume_name(src)
        if propagation:
            raise UsageError(f"invalid volume specification: {text!r}: a propagation is for "
                             "bind mounts")
        return cls(source=src, destination=dst, readonly=readonly, type="volume",
                   nocopy=nocopy, anonymous=not src)

    @classmethod
    def parse_mount(cls, text: str) -> "VolumeSpec":
        """``--mount type=bind|volume|tmpfs,KEY=VALUE,...`` with docker's keys and messages
        (``type`` defaults to volume as in docker)."""
        import csv

        def bad(why: str) -> UsageError:
            return UsageError(f"invalid argument {text!r} for \"--mount\" flag: {why}")

        try:
            fields = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            raise bad("not a comma-separated list") from None
        kw: dict = {"type": "volume"}
        opts: dict = {}
        seen_type = False
        for f in fields:
            key, sep, value = f.partition("=")
            key = key.strip().lower()
            if not sep:
                if key in ("readonly", "ro"):
                    kw["readonly"] = True
                    continue
                if key == "volume-nocopy":
                    kw["nocopy"] = True
                    continue
                raise bad(f"invalid field {f!r} must be a key=value pair")
            if key == "type":
                if value not in ("bind", "volume", "tmpfs"):
                    raise bad(f"invalid mount type {value!r}: bind, volume or tmpfs")
                kw["type"], seen_type = value, True
            elif key in ("source", "src"):
                kw["source"] = value
            elif key in ("target", "dst", "destination"):
                kw["destination"] = value
            elif key in ("readonly", "ro"):
                kw["readonly"] = _mount_bool(value, key, bad)
            elif key == "bind-propagation":
                if value not in PROPAGATIONS:
                    raise bad(f"invalid bind-propagation {value!r}")
                kw["propagation"] = value
            elif key == "volume-nocopy":
                kw["nocopy"] = _mount_bool(value, key, bad)
            elif key == "volume-driver":
                kw["driver"] = value
            elif key == "volume-opt":
                k, sep2, v = value.partition("=")
                if not sep2 or not k:
                    raise bad(f"invalid volume-opt {value!r}: expected KEY=VALUE")
                opts[k] = v
            elif key == "tmpfs-size":
                from .units import parse_size

                try:
                    kw["tmpfs_size"] = parse_size(value)
                except Exception:  # noqa: BLE001 - any bad size is one message
                    raise bad(f"invalid tmpfs-size {value!r}") from None
            elif key == "tmpfs-mode":
                try:
                    kw["tmpfs_mode"] = int(value, 8)
                except ValueError:
                    raise bad(f"invalid tmpfs-mode {value!r}: an octal mode") from None
                if not 0 <= kw["tmpfs_mode"] <= 0o7777:
                    raise bad(f"invalid tmpfs-mode {value!r}: an octal mode")
            elif key in ("consistency", "bind-nonrecursive", "volume-label", "volume-subpath"):
                raise bad(f"{key} is not supported by pyrt")
            else:
                raise bad(f"unexpected key {key!r} in {f!r}")
        del seen_type
        t = kw["type"]
        dst = kw.get("destination")
        if not dst:
            raise bad("target is required")
        if not dst.startswith("/"):
            raise bad(f"invalid mount target {dst!r}: an absolute path")
        src = kw.get("source", "")
        mtype = f'invalid mount config for type "{t}"'
        if t != "volume" and (opts or kw.get("driver") or kw.get("nocopy")):
            raise UsageError(f"{mtype}: field VolumeOptions must not be specified")
        if t != "bind" and kw.get("propagation"):
            raise UsageError(f"{mtype}: field BindOptions must not be specified")
        if t != "tmpfs" and ("tmpfs_size" in kw or "tmpfs_mode" in kw):
            raise UsageError(f"{mtype}: field TmpfsOptions must not be specified")
        if t == "bind":
            if not src:
                raise UsageError(f"{mtype}: field Source must not be empty")
            if not src.startswith("/"):
                raise UsageError(f"{mtype}: invalid mount path: {src!r} mount path must be "
                                 "absolute")
            kw["source"] = _clean(src)
        elif t == "tmpfs":
            if src:
                raise UsageError(f"{mtype}: field Source must not be specified")
            kw["source"] = ""
        else:
            if src:
                check_volume_name(src)
            kw["source"] = src
            kw["anonymous"] = not src
            kw["driver_opts"] = opts
        return cls(**kw)

    @classmethod
    def parse_tmpfs(cls, text: str) -> "VolumeSpec":
        """``--tmpfs PATH[:OPTS]``: OPTS as mount(8) takes them (``size=64m,mode=1777,
        ro,noexec,...``)."""
        path, _, opts = text.partition(":")
        if not path.startswith("/"):
            raise UsageError(f"invalid --tmpfs {text!r}: the path must be absolute")
        out = []
        for o in (opts.split(",") if opts else []):
            k, sep, v = o.partition("=")
            if k in ("size", "nr_blocks", "nr_inodes", "mode", "uid", "gid") and sep and v:
                if k == "size":
                    from .units import parse_size

                    try:
                        v = str(parse_size(v)) if not v.endswith("%") else v
                    except Exception:  # noqa: BLE001
                        raise UsageError(f"invalid --tmpfs {text!r}: bad size {v!r}") from None
                elif k == "mode":
                    try:
                        int(v, 8)
                    except ValueError:
                        raise UsageError(f"invalid --tmpfs {text!r}: bad mode {v!r}") from None
                out.append(f"{k}={v}")
            elif not sep and k in _TMPFS_FLAGS:
                out.append(k)
            else:
                raise UsageError(f"invalid --tmpfs {text!r}: unknown option {o!r}")
        return cls(source="", destination=text.partition(":")[0], type="tmpfs",
                   readonly="ro" in out, tmpfs_options=out, tmpfs_flag=True)


def _mount_bool(value: str, key: str, bad) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", ""):
        return True
    if v in ("0", "false", "no"):
        return False
    raise bad(f"invalid value for {key}: {value!r}")


_TMPFS_FLAGS = ("ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "sync",
                "async", "noatime", "atime", "nodiratime", "diratime", "relatime",
                "strictatime")

#: bind-propagation values (docker's)
PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


def _clean(path: str) -> str:
    import posixpath

    return posixpath.normpath(path) if path != "/" else path


def check_volume_name(name: str, what: str = "create") -> str:
    """docker's rule for a volume's name, ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` (so never ``..``
    or a path), at most 255 bytes (a directory's name); also
    :func:`pyrt_core.volumes.names.check_name`, which the volume commands use without
    this module (a unit test keeps the two the same)."""
    ok = (2 <= len(name) <= 255 and name[0] in _NAME_FIRST
          and all(c in _NAME_REST for c in name[1:]))
    if not ok:
        raise UsageError(f"{what} {name}: {name!r} includes invalid characters for a local "
                         "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you "
                         "intended to pass a host directory, use absolute path")
    return name


_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")


class IdMap(Model, frozen=True):
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


class ContainerConfig(Model):
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
    volumes_from: list[str] = field(factory=list)  # --volumes-from, resolved into volumes at create
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
    labels: dict[str, str] = field(factory=dict)  # -l/--label, --label-file
    # the effective health check, docker's HealthConfig (the flags merged with the image's
    # HEALTHCHECK at create, pyrt_core.health.config); None: none; {"Test": ["NONE"]}: off
    healthcheck: dict | None = None
    init: bool = False  # --init: containers.init's copy of catatonit (or tini) as PID 1
    init_path: str | None = None  # --init-path (else containers.init.CANDIDATES)
    ulimits: list[dict] = field(factory=list)  # --ulimit, docker's {"Name", "Soft", "Hard"}
    sysctls: dict[str, str] = field(factory=dict)  # --sysctl (namespaced keys only)
    shm_size: int | None = None  # --shm-size (bytes), else docker's 64 MiB
    oom_score_adj: int | None = None  # --oom-score-adj
    group_add: list[str] = field(factory=list)  # --group-add: names (the image's) or numbers
    cidfile: str | None = None  # --cidfile, as written (HostConfig.ContainerIDFile)
    annotations: dict[str, str] = field(factory=dict)  # --annotation: OCI annotations
    # --ipc/--pid/--uts/--cgroupns: None (private), or host, none, shareable, container:REF
    ipc_mode: str | None = None
    pid_mode: str | None = None
    uts_mode: str | None = None
    cgroupns_mode: str | None = None
    runtime: str = ""  # --runtime NAME|PATH (docker's HostConfig.Runtime); "": pyrt-runtime
    log_driver: str = ""  # --log-driver (monitor.logdrivers); "": k8s-file
    log_opts: dict[str, str] = field(factory=dict)  # --log-opt, as given (inspect's LogConfig)
    log_tag: str | None = None  # --log-opt tag=TEMPLATE
    platform: str | None = None  # --platform OS/ARCH[/VARIANT] (engine.create.resolve_image)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ContainerConfig":
        d = dict(d)
        known = set(fields(cls))
        d = {k: v for k, v in d.items() if k in known}
        d["volumes"] = [VolumeSpec(**v) for v in d.get("volumes", [])]
        d["uidmaps"] = [IdMap(**m) for m in d.get("uidmaps", [])]
        d["gidmaps"] = [IdMap(**m) for m in d.get("gidmaps", [])]
        return cls(**d)


class ContainerState(Model):
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


class Container(Model):
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
    runtime: str = ""  # the OCI runtime the monitor drives (its path, for this run)

    @property
    def layer_id(self) -> str:
        """The storage driver's id for this container's writable layer."""
        return self.id

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Container":
        d = dict(d)
        d["config"] = ContainerConfig.from_dict(d["config"])
        st = d.get("state", {})
        known = set(fields(ContainerState))
        d["state"] = ContainerState(**{k: v for k, v in st.items() if k in known})
        return cls(**d)
