"""Image + user options -> an OCI runtime-spec ``config.json``.

The engine writes the result into the container's bundle directory beside
the per-container ``hostname``, ``hosts`` and ``resolv.conf`` files; the
runtime reads nothing else.
"""
from __future__ import annotations

import os

from ..errors import ExecError, UsageError
TYPE_CHECKING = False  # the models only name parameters' types: merge_env (inspect's Config)
if TYPE_CHECKING:      # is read without the models (cli/containers/inspect_view.py)
    from ..models import Container, Image
from . import defaults

OCI_VERSION = "1.0.2"


# -- command and environment ----------------------------------------------------


def resolve_args(container: Container, image: Image) -> list[str]:
    """Docker's rules: --entrypoint replaces the image's Entrypoint and drops its Cmd;
    arguments after the image replace Cmd."""
    cfg, icfg = container.config, image.config
    if cfg.entrypoint is not None:
        entry = list(cfg.entrypoint)
        cmd = list(cfg.command or [])
    else:
        entry = list(icfg.entrypoint or [])
        cmd = list(cfg.command) if cfg.command else list(icfg.cmd or [])
    args = entry + cmd
    if not args or not args[0]:
        raise UsageError("no command specified: the image has no Entrypoint or Cmd and none was given")
    return args


def merge_env(image_env: list[str], user_env: list[str], hostname: str, tty: bool) -> list[str]:
    env: dict[str, str] = {}
    for item in image_env + user_env:
        k, _, v = item.partition("=")
        env[k] = v
    env.setdefault("PATH", defaults.DEFAULT_ENV_PATH.split("=", 1)[1])
    env.setdefault("HOSTNAME", hostname)
    if tty:
        env.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


# -- users -----------------------------------------------------------------------


def _read_db(rootfs: str, name: str) -> list[list[str]]:
    """The entries of the image's /etc/passwd or /etc/group.  Read as the container
    would see it (symlinks resolved inside the root, never on the host), a regular
    file of at most 1 MiB, or refused (ImageError, exit 125): see containers.inroot.
    A missing file has no entries (numeric users need none)."""
    from .inroot import read_file

    data = read_file(rootfs, f"/etc/{name}")
    if data is None:
        return []
    text = data.decode("utf-8", errors="replace")
    return [line.split(":") for line in text.split("\n") if line.strip() and not line.startswith("#")]


def resolve_user(rootfs: str, user: str, exit_code: int = 125) -> tuple[int, int, list[int]]:
    """``name``, ``uid``, ``name:group``, ``uid:gid`` -> (uid, gid, additional gids),
    resolved against the image's /etc/passwd and /etc/group like docker does."""
    if not user:
        user = "0"
    uspec, _, gspec = user.partition(":")
    passwd = _read_db(rootfs, "passwd")
    groups = _read_db(rootfs, "group")
    entry = None
    if uspec.isdigit():
        uid = int(uspec)
        entry = next((p for p in passwd if len(p) > 3 and p[2] == uspec), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    else:
        entry = next((p for p in passwd if p[0] == uspec and len(p) > 3), None)
        if entry is None:
            raise ExecError(f"unable to find user {uspec}: no matching entries in passwd file",
                            exit_code)
        uid, gid = int(entry[2]), int(entry[3])
    if gspec:
        if gspec.isdigit():
            gid = int(gspec)
        else:
            g = next((g for g in groups if g[0] == gspec and len(g) > 2), None)
            if g is None:
                raise ExecError(f"unable to find group {gspec}: no matching entries in group "
                                "file", exit_code)
            gid = int(g[2])
    extra: list[int] = []
    if entry is not None and not gspec:
        name = entry[0]
        for g in groups:
            if len(g) > 3 and name in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    if uid > 0xFFFFFFFE or gid > 0xFFFFFFFE:
        raise UsageError(f"invalid user {user!r}: id out of range")
    return uid, gid, extra


# -- the per-container files -------------------------------------------------------------


def _net(networking) -> dict:
    """The networking JSON (ContainerConfig.networking), or a bare mode string (an
    earlier caller's ``network``)."""
    if isinstance(networking, str):
        return {"mode": networking}
    return networking or {}


def hosts_file(hostname: str, networking, record: dict | None = None) -> str:
    """The container's /etc/hosts: the host's with ``--network host``, else docker's
    localhost lines; then ``--add-host`` entries (``host-gateway``: the first network's
    gateway) and the container's own addresses on its networks (the network record),
    else 127.0.1.1, with its hostname."""
    net = _net(networking)
    networks = list(((record or {}).get("networks") or {}).values())
    if net.get("mode") == "host":
        try:
            with open("/etc/hosts") as f:
                text = f.read()
        except OSError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
    else:
        text = (
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
            "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        )
    gateway = next((n.get("Gateway") for n in networks if n.get("Gateway")), "")
    for entry in net.get("extra_hosts") or ():
        name, _, ip = entry.partition(":")  # "name:ip" (a name holds no ":")
        if ip == "host-gateway":
            ip = gateway
        if ip:
            text += f"{ip}\t{name}\n"
    if net.get("mode") == "host":
        return text
    own = [a for n in networks for a in (n.get("IPAddress"), n.get("GlobalIPv6Address")) if a]
    for addr in own or ["127.0.1.1"]:
        text += f"{addr}\t{hostname}\n"
    return text


#: docker's resolvers when none of the host's is left (its resolvconf package); only for
#: containers on a plugin's network (they could reach them), never in tests' traffic
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def resolv_conf(networking, record: dict | None = None) -> str:
    """The container's /etc/resolv.conf: ``--dns``/``--dns-search``/``--dns-option``
    replace the nameserver/search/options lines; else the network record's resolver
    (``dns_servers``/``dns_search``: a user-defined network's); else the host's file,
    minus its loopback resolvers outside ``--network host`` (docker's rule: unreachable
    from a private namespace; on a plugin's network, none left means docker's
    fallback, 8.8.8.8 and 8.8.4.4)."""
    net = _net(networking)
    mode = net.get("mode") or "none"
    record = record or {}
    try:
        with open("/etc/resolv.conf") as f:
            text = f.read()
    except OSError:
        text = ""
    lines = text.splitlines()
    if mode != "host":
        # like docker: loopback resolvers of the host are unreachable from a private netns
        lines = [ln for ln in lines
                 if not (ln.split()[:1] == ["nameserver"] and len(ln.split()) > 1
                         and (ln.split()[1].startswith("127.") or ln.split()[1] == "::1"))]
    servers = list(net.get("dns") or record.get("dns_servers") or ())
    # the record's search domains go with its resolver (not with --dns servers)
    search = list(net.get("dns_search") or (None if net.get("dns") else
                                            record.get("dns_search")) or ())
    options = list(net.get("dns_options") or ())
    if not servers and mode == "networks" and not any(
            ln.split()[:1] == ["nameserver"] for ln in lines):
        servers = list(FALLBACK_NAMESERVERS)
    replaced = {k for k, v in (("nameserver", servers), ("search", search),
                               ("domain", search), ("options", options)) if v}
    if replaced:
        lines = [ln for ln in lines if ln.split()[:1] and ln.split()[0] not in replaced
                 or not ln.split()]
        lines = [ln for ln in lines if ln.strip()]
        if search and search != ["."]:
            lines.append("search " + " ".join(search))
        lines += [f"nameserver {ip}" for ip in servers]
        if options:
            lines.append("options " + " ".join(options))
    return "\n".join(lines) + ("\n" if lines else "")


def write_bundle_files(bundle: str, hostname: str, networking, record: dict | None = None) -> None:
    """``hostname``, ``hosts`` and ``resolv.conf`` of the bundle, bind-mounted on the
    container's /etc: written after the network's setup, from its record."""
    from ..fsutil import atomic_write

    # transient run-state files: atomic, but not fsync'ed
    atomic_write(os.path.join(bundle, "hostname"), hostname + "\n", durable=False)
    atomic_write(os.path.join(bundle, "hosts"), hosts_file(hostname, networking, record),
                 durable=False)
    atomic_write(os.path.join(bundle, "resolv.conf"), resolv_conf(networking, record),
                 durable=False)


# -- the spec ---------------------------------------------------------------------


def _bind(src: str, dst: str, readonly: bool = False) -> dict:
    # read-only means the mounts below the source too (docker 25's "rro")
    opts = ["rbind", "rprivate"] + (["ro", "rro"] if readonly else ["rw"])
    return {"destination": dst, "type": "bind", "source": src, "options": opts}


def build_spec(container: Container, image: Image, rootfs: str, bundle: str,
               volume_sources: dict[int, str] | None = None, netns: str | None = None,
               joined: dict[str, str] | None = None) -> dict:
    """The runtime-spec document for ``container`` whose root is mounted at ``rootfs``
    (``volume_sources``: the host paths of its volumes, engine.volumes.mount_volumes;
    ``netns``: the path of the network namespace it joins (engine.network), else a new
    one (or the host's, ``--network host``); ``joined``: namespace type -> the path of
    another container's namespace it joins, engine.namespaces.paths)."""
    cfg = container.config
    hostname = cfg.hostname or container.id[:12]
    if cfg.uts_mode == "host":
        hostname = os.uname().nodename
    args = resolve_args(container, image)
    uid, gid, extra = resolve_user(rootfs, cfg.user if cfg.user is not None else image.config.user)
    cwd = cfg.workdir or image.config.working_dir or "/"
    if not cwd.startswith("/"):
        raise UsageError(f"the working directory {cwd!r} is invalid, it needs to be an absolute path")
    from ..images.configcheck import MAX_PATH

    if len(cwd.encode("utf-8", "surrogateescape")) > MAX_PATH or "\x00" in cwd:
        raise UsageError(f"the working directory {cwd[:64]!r}... is invalid: longer than "
                         f"{MAX_PATH} bytes or holding a NUL" if len(cwd) > 64 else
                         f"the working directory {cwd!r} is invalid: it holds a NUL")
    from ..capabilities import effective_set

    caps = effective_set(cfg.cap_add, cfg.cap_drop, cfg.privileged)
    userns = cfg.userns or bool(cfg.uidmaps)

    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if netns:
        namespaces.append({"type": "network", "path": netns})
    elif cfg.network != "host" and not (cfg.networking or {}).get("mode") == "host":
        namespaces.append({"type": "network"})
    linux: dict = {
        "namespaces": namespaces,
        "maskedPaths": list(defaults.MASKED_PATHS),
        "readonlyPaths": list(defaults.READONLY_PATHS),
        "devices": [],
        "resources": {"devices": [dict(r) for r in defaults.DEFAULT_DEVICE_RULES]},
        "cgroupsPath": cgroups_path(container.id, cfg.cgroup_parent),
    }
    if cfg.privileged:  # as docker and podman: nothing masked, every device allowed
        linux["maskedPaths"], linux["readonlyPaths"] = [], []
        linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    merge_resources(linux, cfg.resources, cfg.devices)
    from .seccomp_default import spec_seccomp

    # --privileged: no filter unless a --security-opt seccomp=PROFILE asks for one
    seccomp = spec_seccomp("unconfined" if cfg.privileged and cfg.seccomp is None else cfg.seccomp,
                           caps)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if userns:
        namespaces.append({"type": "user"})
        uidmaps = cfg.uidmaps or [_default_map()]
        gidmaps = cfg.gidmaps or uidmaps
        linux["uidMappings"] = [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size} for m in uidmaps]
        linux["gidMappings"] = [{"containerID": m.container_id, "hostID": m.host_id, "size": m.size} for m in gidmaps]
    for path, major, minor in defaults.DEFAULT_DEVICES:
        linux["devices"].append({"path": path, "type": "c", "major": major, "minor": minor,
                                 "fileMode": 0o666, "uid": 0, "gid": 0})
    if cfg.privileged:
        have = {d["path"] for d in linux["devices"]}
        linux["devices"] += [d for d in defaults.host_devices() if d["path"] not in have]

    mounts = defaults.default_mounts(userns, writable_sys=cfg.privileged)
    for name in ("hostname", "hosts", "resolv.conf"):
        mounts.append(_bind(os.path.join(bundle, name), f"/etc/{name}"))
    from .mounts import container_mounts

    mounts += container_mounts(cfg.volumes, volume_sources)
    if getattr(cfg, "init", False):  # the bundle's private copy (engine.bundle), read-only
        from . import init as initmod

        args = initmod.wrap_args(args)
        mounts.append(_bind(os.path.join(bundle, initmod.BUNDLE_NAME), initmod.DESTINATION,
                            readonly=True))

    spec = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": bool(cfg.tty),
            "user": {"uid": uid, "gid": gid, "additionalGids": extra},
            "args": args,
            "env": merge_env(image.config.env, cfg.env, hostname, cfg.tty),
            "cwd": cwd,
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            # pyrt's safer default, unless --security-opt no-new-privileges=false; a
            # privileged container may gain privileges (setuid programs, file
            # capabilities), as under docker and podman
            "noNewPrivileges": cfg.no_new_privileges and not cfg.privileged,
        },
        "root": {"path": rootfs, "readonly": bool(cfg.read_only)},
        "hostname": hostname,
        "mounts": mounts,
        "annotations": {"io.pyrt.image": image.id, "io.pyrt.name": container.name},
        "linux": linux,
    }
    from .spec_runflags import apply as apply_run_flags

    apply_run_flags(spec, cfg, rootfs, joined)  # --ulimit, --sysctl, --ipc, --pid...
    return spec


def cgroups_path(container_id: str, cgroup_parent: str | None = None) -> str:
    """``linux.cgroupsPath``: ``pyrt-<id>`` (relative: the resource plugin picks the
    place), or ``/<parent>/pyrt-<id>`` from the hierarchy root with ``--cgroup-parent``."""
    name = f"pyrt-{container_id}"
    if not cgroup_parent:
        return name
    return "/" + cgroup_parent.strip("/") + "/" + name


def merge_resources(linux: dict, resources: dict | None, devices: list[dict] | None = None) -> None:
    """Put the resource flags' results into a spec's ``linux`` section.

    ``resources`` sections replace the spec's, except ``devices``: those allow
    rules are appended after Docker's default rules (``--device`` adds to the
    default allow list).  ``devices`` entries are added to ``linux.devices``
    (one with the same path is replaced)."""
    res = linux.setdefault("resources", {})
    for key, value in (resources or {}).items():
        if key == "devices":
            res["devices"] = list(res.get("devices") or []) + [dict(r) for r in value]
        else:
            res[key] = value
    if devices:
        paths = {d["path"] for d in devices}
        linux["devices"] = [d for d in linux.get("devices") or [] if d["path"] not in paths] \
            + [dict(d) for d in devices]


def _default_map():
    from ..models import IdMap

    return IdMap(0, 100000, 65536)
