"""The OCI config of ``run``/``create``'s process and namespace flags (cli/run_flags.py):
``process.rlimits``, ``oomScoreAdj``, ``additionalGids``, ``linux.sysctl``, the
annotations, /dev/shm's size, and the namespaces shared with the host or joined from
another container (``--ipc/--pid/--uts/--cgroupns``).

Called by :func:`pyrt_core.containers.spec.build_spec` on the spec it built; the
paths of the namespaces to join (``/proc/PID/ns/TYPE`` of a running container of the
store) come from :func:`pyrt_core.engine.namespaces.paths`.
"""
from __future__ import annotations

from ..errors import ExecError

#: docker's --ulimit names (go-units) -> the OCI rlimit type
ULIMITS = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

#: the OCI spec's "unlimited" (RLIM_INFINITY as an unsigned 64-bit number)
RLIM_INFINITY = (1 << 64) - 1


def rlimits(ulimits: list) -> list[dict]:
    """OCI ``process.rlimits`` of ContainerConfig.ulimits."""
    def n(v: int) -> int:
        return RLIM_INFINITY if v == -1 else v
    return [{"type": ULIMITS[u["Name"]], "soft": n(u["Soft"]), "hard": n(u["Hard"])}
            for u in ulimits]


#: flag -> the OCI namespace type it sets
NAMESPACE_FLAGS = (("ipc", "ipc"), ("pid", "pid"), ("uts", "uts"), ("cgroupns", "cgroup"))


def apply(spec: dict, cfg, rootfs: str, joined: dict | None = None) -> None:
    proc, linux = spec["process"], spec["linux"]
    if getattr(cfg, "ulimits", None):
        proc["rlimits"] = rlimits(cfg.ulimits)
    if getattr(cfg, "oom_score_adj", None) is not None:
        proc["oomScoreAdj"] = cfg.oom_score_adj
    if getattr(cfg, "group_add", None):
        user = proc["user"]
        have = [user["gid"]] + list(user.get("additionalGids") or [])
        user["additionalGids"] = list(user.get("additionalGids") or []) + [
            g for g in resolve_groups(rootfs, cfg.group_add) if g not in have]
    if getattr(cfg, "sysctls", None):
        linux["sysctl"] = dict(cfg.sysctls)
    if getattr(cfg, "annotations", None):  # pyrt's own keys win (the flag refuses them)
        spec["annotations"] = {**cfg.annotations, **spec["annotations"]}
    shm = _mount(spec, "/dev/shm")
    if shm is not None and getattr(cfg, "shm_size", None):
        shm["options"] = [o for o in shm["options"] if not o.startswith("size=")] + \
            [f"size={cfg.shm_size}"]
    shared = (joined or {}).get("/dev/shm")  # --ipc shareable, container:ID (namespaces)
    if shared and shm is not None:
        shm.clear()
        shm.update({"destination": "/dev/shm", "type": "bind", "source": shared,
                    "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
    for flag, nstype in NAMESPACE_FLAGS:
        mode = getattr(cfg, f"{flag}_mode", None)
        if mode in (None, "private", "shareable", "none"):
            if mode == "none":  # docker: its own IPC namespace, and no /dev/shm at all
                spec["mounts"].remove(shm)
            continue
        entry = next(ns for ns in linux["namespaces"] if ns["type"] == nstype)
        if mode == "host":
            linux["namespaces"].remove(entry)
            if nstype == "uts":
                spec.pop("hostname", None)  # the host's name, which it must not change
            elif nstype == "ipc" and shm is not None:  # docker binds the host's /dev/shm
                shm.clear()
                shm.update({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                            "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})
        else:  # container:ID
            entry["path"] = (joined or {})[nstype]
            if nstype == "uts":
                spec.pop("hostname", None)  # the other container's


def _mount(spec: dict, destination: str):
    return next((m for m in spec["mounts"] if m["destination"] == destination), None)


def resolve_groups(rootfs: str, groups: list[str]) -> list[int]:
    """``--group-add`` values as gids: numbers as given, names from the image's
    /etc/group (read inside the root: containers.inroot, as for ``--user``)."""
    entries = None
    out = []
    for g in groups:
        if g.isdigit():
            out.append(int(g))
            continue
        if entries is None:
            entries = _group_entries(rootfs)
        match = next((e for e in entries if e[0] == g and len(e) > 2 and e[2].isdigit()), None)
        if match is None:
            raise ExecError(f"unable to find group {g}: no matching entries in group file",
                            125)  # docker's run: a daemon error (its CLI maps only not-found
            # to 127 and EACCES/EISDIR to 126), podman's 126
        out.append(int(match[2]))
    return out


def _group_entries(rootfs: str) -> list[list[str]]:
    """The image's /etc/group, read as the container sees it (symlinks resolved inside
    the root, a regular file of at most 1 MiB: containers.inroot); none if missing."""
    from .inroot import read_file

    data = read_file(rootfs, "/etc/group")
    if data is None:
        return []
    return [line.split(":") for line in data.decode("utf-8", errors="replace").split("\n")
            if line.strip() and not line.startswith("#")]
