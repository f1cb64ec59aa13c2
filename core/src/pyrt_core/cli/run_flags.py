"""The process and namespace flags of ``pyrt run``/``create`` (docker's names, syntax and
messages): ``--init``, ``--init-path``, ``--ulimit``, ``--sysctl``, ``--shm-size``,
``--oom-score-adj``, ``--group-add``, ``--cidfile``, ``--annotation``, ``--ipc``,
``--pid``, ``--uts``, ``--cgroupns``.

:func:`add_run_flags` adds them to a parser; :func:`run_flags_from_args` checks the
values and returns them as :class:`~pyrt_core.models.ContainerConfig` keyword
arguments.  Every bad value is one :class:`~pyrt_core.errors.UsageError` (exit 125),
raised before anything is created.  What needs the store (``container:NAME``) is
checked by ``engine.create`` (:func:`pyrt_core.engine.namespaces.check`).  Only small
modules are imported here (argparse's start-up).
"""
from __future__ import annotations

from ..containers.spec_runflags import ULIMITS  # docker's --ulimit names
from ..errors import UsageError

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    import argparse


#: docker's default /dev/shm size (64 MiB)
DEFAULT_SHM_SIZE = 64 << 20

#: sysctls in the IPC namespace (runc's list), besides fs.mqueue.*
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")

#: the namespace flags and the modes each takes (docker's; podman's container: for all)
NAMESPACE_MODES = {
    "ipc": ("private", "shareable", "none", "host", "container:"),
    "pid": ("private", "host", "container:"),
    "uts": ("private", "host", "container:"),
    "cgroupns": ("private", "host", "container:"),
}


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init", action="store_true",
                   help="run an init (catatonit) as PID 1 that forwards signals and reaps "
                        "processes (a private copy, read-only at /run/pyrt-init)")
    p.add_argument("--init-path", metavar="PATH", default=None,
                   help="the init binary --init copies (default: the host's catatonit)")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="a resource limit (nofile, nproc, core, memlock, stack...; -1: unlimited)")
    p.add_argument("--sysctl", action="append", default=[], metavar="KEY=VALUE",
                   help="a namespaced kernel parameter (net.*, kernel.shm*, kernel.msg*, "
                        "kernel.sem, fs.mqueue.*, kernel.domainname)")
    p.add_argument("--shm-size", metavar="SIZE", default=None,
                   help="size of /dev/shm (default 64m)")
    p.add_argument("--oom-score-adj", metavar="N", default=None,
                   help="the OOM killer's preference adjustment, -1000..1000")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                   help="an additional group of the process (a name of the image's "
                        "/etc/group, or a number)")
    p.add_argument("--cidfile", metavar="FILE", default=None,
                   help="write the container's id to FILE (which must not exist)")
    p.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE",
                   help="an OCI annotation of the container's runtime config")
    p.add_argument("--ipc", metavar="MODE", default=None,
                   help="IPC namespace: private (default), shareable, none, host, "
                        "container:NAME")
    p.add_argument("--pid", metavar="MODE", default=None,
                   help="PID namespace: private (default), host, container:NAME")
    p.add_argument("--uts", metavar="MODE", default=None,
                   help="UTS namespace: private (default), host, container:NAME")
    p.add_argument("--cgroupns", metavar="MODE", default=None,
                   help="cgroup namespace: private (default), host, container:NAME")


def run_flags_from_args(args, network: str = "none") -> dict:
    """The flags' ContainerConfig fields, checked (``network``: the network mode)."""
    out: dict = {}
    init_path = getattr(args, "init_path", None)
    if init_path is not None and not init_path:
        raise UsageError("invalid --init-path '': an absolute path")
    if getattr(args, "init", False) or init_path:
        from ..containers.init import find

        find(init_path)  # refused now: nothing is created
        out["init"] = True
        out["init_path"] = init_path
    ulimits = [parse_ulimit(u) for u in getattr(args, "ulimit", None) or []]
    if ulimits:
        seen: dict = {}
        for u in ulimits:
            seen[u["Name"]] = u  # a later one wins, as docker's map
        out["ulimits"] = list(seen.values())
    modes = {}
    for ns in NAMESPACE_MODES:
        mode = parse_namespace_mode(ns, getattr(args, ns, None))
        if mode:
            modes[ns] = out[f"{ns}_mode"] = mode
    if modes.get("uts") and modes["uts"] != "private" and getattr(args, "hostname", None):
        raise UsageError("conflicting options: hostname and the UTS mode")
    sysctls = {}
    for item in getattr(args, "sysctl", None) or []:
        key, value = parse_sysctl(item, network, modes)
        sysctls[key] = value
    if sysctls:
        out["sysctls"] = sysctls
    shm = getattr(args, "shm_size", None)
    if shm is not None:
        from .resource_flags import parse_size

        size = parse_size(shm, "--shm-size")
        if size <= 0:
            raise UsageError(f"invalid value for --shm-size: {shm!r}: the size must be "
                             "greater than 0")
        if modes.get("ipc", "private") not in ("private", "shareable"):
            raise UsageError(f"conflicting options: --shm-size and --ipc {modes['ipc']} "
                             "(the container has no /dev/shm of its own)")
        out["shm_size"] = size
    oom = getattr(args, "oom_score_adj", None)
    if oom is not None:
        try:
            n = int(oom.strip())
        except ValueError:
            raise UsageError(f"invalid value for --oom-score-adj: {oom!r} is not an "
                             "integer") from None
        if not -1000 <= n <= 1000:
            raise UsageError(f"invalid value for --oom-score-adj: {n}: the range is "
                             "[-1000, 1000]")
        out["oom_score_adj"] = n
    groups = [parse_group(g) for g in getattr(args, "group_add", None) or []]
    if groups:
        out["group_add"] = groups
    cidfile = getattr(args, "cidfile", None)
    if cidfile is not None:
        out["cidfile"] = check_cidfile(cidfile)
    annotations = {}
    for item in getattr(args, "annotation", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key or key != key.strip() or "\0" in item:
            raise UsageError(f"invalid --annotation {item!r}: expected KEY=VALUE")
        if key.startswith(("io.pyrt.", "org.pyrt.")):
            raise UsageError(f"invalid --annotation {item!r}: the keys io.pyrt.* and "
                             "org.pyrt.* are pyrt's own")
        annotations[key] = value
    if annotations:
        out["annotations"] = annotations
    return out


def parse_ulimit(text: str) -> dict:
    """``NAME=SOFT[:HARD]`` -> docker's ``{"Name", "Soft", "Hard"}`` (-1: unlimited)."""
    name, sep, limits = text.partition("=")
    bad = f"invalid argument {text!r} for \"--ulimit\" flag"
    if not sep or not limits:
        raise UsageError(f"{bad}: expected NAME=SOFT[:HARD]")
    if name not in ULIMITS:
        raise UsageError(f"{bad}: invalid ulimit type: {name} (one of "
                         f"{', '.join(sorted(ULIMITS))})")
    soft_t, _, hard_t = limits.partition(":")
    try:
        soft = int(soft_t)
        hard = int(hard_t) if hard_t else soft
    except ValueError:
        raise UsageError(f"{bad}: the limits must be integers (-1: unlimited)") from None
    if soft < -1 or hard < -1 or max(soft, hard) >= 1 << 63:
        raise UsageError(f"{bad}: the limits must be integers >= 0 (-1: unlimited)")
    if hard != -1 and (soft == -1 or soft > hard):
        raise UsageError(f"{bad}: ulimit soft limit must be less than or equal to hard "
                         f"limit: {soft} > {hard}" if soft != -1 else
                         f"{bad}: ulimit soft limit must be less than or equal to hard "
                         f"limit: unlimited > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_namespace_mode(flag: str, text: str | None) -> str | None:
    """``--ipc/--pid/--uts/--cgroupns`` MODE, checked (the container's existence: at
    create)."""
    if text is None:
        return None
    allowed = NAMESPACE_MODES[flag]
    if text in allowed and text != "container:":
        return text
    if text.startswith("container:") and "container:" in allowed:
        ref = text[len("container:"):]
        if ref and "/" not in ref and ref == ref.strip():
            return text
    shown = ", ".join(m + ("NAME" if m.endswith(":") else "") for m in allowed)
    raise UsageError(f"invalid --{flag} {text!r}: {shown}")


def parse_sysctl(text: str, network: str, modes: dict) -> tuple[str, str]:
    """``KEY=VALUE`` of a sysctl the container has its own namespace for (runc's and
    docker's rules); refused otherwise, so that no host-wide value is ever written."""
    key, sep, value = text.partition("=")
    key = key.strip()
    bad = f"invalid --sysctl {text!r}"
    if not sep or not key:
        raise UsageError(f"{bad}: expected KEY=VALUE")
    if "/" in key or "" in key.split(".") or any(c.isspace() for c in key) or \
            "\n" in value or "\0" in value:
        raise UsageError(f"{bad}: not a sysctl name and a one-line value")
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if modes.get("ipc", "private") not in ("private", "shareable"):
            raise UsageError(f"{bad}: the container shares its IPC namespace "
                             f"(--ipc {modes['ipc']}): it would change another's value")
    elif key.startswith("net."):
        if network == "host" or network.startswith("container:"):
            raise UsageError(f"{bad}: not allowed with --network {network}: the network "
                             "namespace is not the container's own")
    elif key == "kernel.domainname":
        if modes.get("uts", "private") != "private":
            raise UsageError(f"{bad}: the container shares its UTS namespace "
                             f"(--uts {modes['uts']})")
    elif key == "kernel.hostname":
        raise UsageError(f"{bad}: use --hostname to set the container's host name")
    else:
        raise UsageError(f"{bad}: {key} is not in a kernel namespace of the container "
                         "(only net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* "
                         "and kernel.domainname are)")
    return key, value


def parse_group(text: str) -> str:
    """``--group-add`` GROUP: a number or a name (resolved in the image's /etc/group at
    start, as docker does)."""
    g = text.strip()
    if g.isdigit():
        if int(g) > 0xFFFFFFFE:
            raise UsageError(f"invalid --group-add {text!r}: the group id is out of range")
        return g
    if not g or g != text or any(c in g for c in ":\n\0/") or any(c.isspace() for c in g):
        raise UsageError(f"invalid --group-add {text!r}: a group name or number")
    return g


def check_cidfile(path: str) -> str:
    """docker's rule: the file must not exist (a running container may own it)."""
    import os

    if not path:
        raise UsageError("invalid --cidfile '': a file name")
    if os.path.lexists(path):
        raise UsageError(f"Container ID file found, make sure the other container isn't "
                         f"running or delete {path}")
    return os.path.abspath(path)


class CidFile:
    """``--cidfile``: made (O_EXCL) before the container is, its id written once it
    exists, and removed again when the container could not be created (docker's
    behaviour: a failed run leaves no stale id file)."""

    def __init__(self, path: str | None):
        self.path, self.fd = path, None
        if path is None:
            return
        import os

        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                              | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            raise UsageError(f"Container ID file found, make sure the other container "
                             f"isn't running or delete {path}") from None
        except OSError as e:
            raise UsageError(f"cannot create the container ID file {path}: "
                             f"{e.strerror}") from None

    def write(self, cid: str) -> None:
        import os

        if self.fd is not None:
            try:
                os.write(self.fd, cid.encode())
            finally:
                os.close(self.fd)
                self.fd = None

    def abandon(self) -> None:
        """The container was not created: the empty file goes."""
        import os

        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            try:
                os.unlink(self.path)  # type: ignore[arg-type]
            except OSError:
                pass
