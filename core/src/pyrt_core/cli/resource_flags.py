"""Docker-compatible resource flags for ``pyrt run``/``create`` (and later ``update``).

:func:`add_resource_flags` adds the flags to an argparse parser;
:func:`resources_from_args` turns the parsed values into a
:class:`ResourceFlags`:

* ``resources`` -- an OCI ``linux.resources`` mapping (``memory``, ``cpu``,
  ``blockIO``, ``pids``, and ``devices``: the allow rules of ``--device``,
  to be *appended* to the default rules);
* ``devices`` -- OCI ``linux.devices`` entries for ``--device`` (the nodes
  to create in the container's /dev);
* ``cgroup_parent`` -- ``--cgroup-parent``, or ``None``.

:func:`pyrt_core.containers.spec.merge_resources` puts them into a spec's
``linux`` section and :func:`pyrt_core.containers.spec.cgroups_path` builds the
``cgroupsPath`` (``pyrt-<id>``, or ``/<parent>/pyrt-<id>`` with ``--cgroup-parent``).

Values are checked here as docker's CLI and daemon check them (sizes such
as ``512m``; ``--cpus`` within the host's CPUs; ``--cpus`` together with
``--cpu-quota`` refused ...); limits that depend on the host's cgroups
(a cpuset beyond the host's CPUs, a controller the host lacks) are checked
by the resource plugin's ``pyrt_resources_validate``.  Every error is a
:class:`pyrt_core.errors.UsageError`, raised before anything is created.

Import-cheap (argparse's start-up budget): only small standard modules are
imported here; :mod:`fractions` is imported when a value needs it.
"""
from __future__ import annotations

import os
import stat as _statmod

from ..errors import UsageError

#: os.stat, replaceable by tests
_stat = os.stat

CPU_PERIOD = 100000  # the CFS period --cpus uses (100 ms)


class ResourceFlags:
    """What the resource flags asked for (see the module docstring)."""

    __slots__ = ("resources", "devices", "cgroup_parent")

    def __init__(self, resources: dict | None = None, devices: list[dict] | None = None,
                 cgroup_parent: str | None = None):
        self.resources: dict = resources if resources is not None else {}
        self.devices: list[dict] = devices if devices is not None else []
        self.cgroup_parent = cgroup_parent

    def __eq__(self, other):
        return isinstance(other, ResourceFlags) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return (f"ResourceFlags(resources={self.resources!r}, devices={self.devices!r}, "
                f"cgroup_parent={self.cgroup_parent!r})")

    def is_empty(self) -> bool:
        return not (self.resources or self.devices or self.cgroup_parent)


# -- parser -----------------------------------------------------------------------------


def add_resource_flags(p) -> None:
    """Add docker's resource flags to argparse parser ``p`` (all parsed as strings)."""
    g = p.add_argument_group("resources")
    a = g.add_argument
    a("--memory", "-m", metavar="BYTES", help="memory limit (e.g. 512m, 1g; minimum 6m)")
    a("--memory-swap", metavar="BYTES",
      help="memory plus swap limit; equal to --memory means no swap, -1 unlimited swap")
    a("--memory-reservation", metavar="BYTES", help="memory soft limit")
    a("--oom-kill-disable", action="store_true", help="disable the OOM killer (cgroup v1 only)")
    a("--cpus", metavar="N", help="number of CPUs (e.g. 0.5, 1.5): quota N x 100ms per 100ms period")
    a("--cpu-shares", "-c", metavar="N", help="CPU shares, relative weight (2 to 262144)")
    a("--cpu-period", metavar="US", help="CFS period in microseconds (1000 to 1000000)")
    a("--cpu-quota", metavar="US", help="CFS quota in microseconds per period (-1 unlimited)")
    a("--cpuset-cpus", metavar="LIST", help="CPUs the container may use (0-3, 0,1)")
    a("--cpuset-mems", metavar="LIST", help="memory nodes the container may use (0-3, 0,1)")
    a("--blkio-weight", metavar="N", help="block I/O relative weight (10 to 1000)")
    for name, what in (("read-bps", "read rate (bytes per second, e.g. 1mb)"),
                       ("write-bps", "write rate (bytes per second, e.g. 1mb)"),
                       ("read-iops", "read rate (I/O operations per second)"),
                       ("write-iops", "write rate (I/O operations per second)")):
        a(f"--device-{name}", action="append", default=[], metavar="PATH:RATE",
          help=f"limit the {what} of a host block device (repeatable)")
    a("--pids-limit", metavar="N", help="maximum number of processes (-1 or 0: unlimited; "
      "default: [containers] pids_limit, 2048, where a resource plugin applies it)")
    a("--device", action="append", default=[], metavar="HOST[:CTR[:rwm]]",
      help="give the container a host device (repeatable)")
    a("--cgroup-parent", metavar="PATH", help="parent cgroup of the container's cgroup")


# -- values ------------------------------------------------------------------------------


def parse_size(text: str, flag: str = "--memory") -> int:
    """docker's sizes: ``1024``, ``10k``, ``512m``, ``1.5g``, ``2GB``, ``4MiB`` (binary units)."""
    from ..units import parse_size as size

    try:
        return size(text)
    except ValueError:
        raise UsageError(f"invalid value for {flag}: invalid size: {text!r}") from None


def _int(text: str, flag: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise UsageError(f"invalid value for {flag}: {text!r} is not an integer") from None


def _cpu_list(text: str, flag: str) -> str:
    import re  # (only for --cpuset-cpus/--cpuset-mems: re costs run ~5 ms)

    t = text.strip()
    ok = bool(t) and all(re.fullmatch(r"\d+(-\d+)?", part) for part in t.split(","))
    if ok:
        for part in t.split(","):
            lo, _, hi = part.partition("-")
            if hi and int(hi) < int(lo):
                ok = False
    if not ok:
        raise UsageError(f"invalid value for {flag}: {text!r} (expected a list such as 0-3 or 0,1)")
    return t


def host_cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def _device_numbers(path: str, flag: str, want_block: bool | None):
    try:
        st = _stat(path)
    except OSError as e:
        raise UsageError(f"invalid value for {flag}: {path}: {e.strerror}") from None
    if _statmod.S_ISBLK(st.st_mode):
        kind = "b"
    elif _statmod.S_ISCHR(st.st_mode):
        kind = "c"
    else:
        raise UsageError(f"invalid value for {flag}: {path} is not a device node")
    if want_block and kind != "b":
        raise UsageError(f"invalid value for {flag}: {path} is not a block device")
    return kind, os.major(st.st_rdev), os.minor(st.st_rdev), st


def _throttle(items: list[str], flag: str, iops: bool) -> list[dict]:
    out = []
    for item in items:
        path, sep, rate_text = item.rpartition(":")
        if not sep or not path or not rate_text:
            raise UsageError(f"invalid value for {flag}: {item!r} (expected PATH:RATE)")
        if not path.startswith("/dev/"):
            raise UsageError(f"invalid value for {flag}: bad format for device path: {item!r}")
        if iops:
            rate = _int(rate_text, flag)
            if rate < 0:
                raise UsageError(f"invalid value for {flag}: {item!r}: the rate must not be negative")
        else:
            rate = parse_size(rate_text, flag)
        _, major, minor, _ = _device_numbers(path, flag, want_block=True)
        out.append({"major": major, "minor": minor, "rate": rate})
    return out


def parse_device(text: str) -> tuple[dict, dict]:
    """``--device HOST[:CTR[:PERMS]]`` -> (linux.devices entry, device cgroup allow rule)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise UsageError(f"invalid value for --device: {text!r} (expected HOST[:CONTAINER[:rwm]])")
    src, dst, perms = parts[0], parts[0], "rwm"
    if len(parts) == 3:
        dst, perms = parts[1] or src, parts[2]
    elif len(parts) == 2:
        if parts[1] and not set(parts[1]) - set("rwm"):
            perms = parts[1]
        else:
            dst = parts[1] or src
    if not perms or set(perms) - set("rwm"):
        raise UsageError(f"invalid value for --device: {text!r}: permissions {perms!r} must be a "
                         "combination of r, w and m")
    if not src.startswith("/") or not dst.startswith("/"):
        raise UsageError(f"invalid value for --device: {text!r}: paths must be absolute")
    if os.path.isdir(src):
        raise UsageError(f"invalid value for --device: {src} is a directory; name device nodes")
    kind, major, minor, st = _device_numbers(src, "--device", want_block=None)
    entry = {"path": dst, "type": kind, "major": major, "minor": minor,
             "fileMode": _statmod.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}
    return entry, rule


def _cgroup_parent(text: str) -> str:
    comps = [c for c in text.split("/") if c not in ("", ".")]
    if not comps or ".." in comps or ":" in text:
        raise UsageError(f"invalid value for --cgroup-parent: {text!r} (a cgroup path such as "
                         "/mygroup or mygroup/sub)")
    return "/" + "/".join(comps)


def resources_from_args(args) -> ResourceFlags:
    """Parsed flags -> :class:`ResourceFlags`; raises UsageError for invalid values."""
    g = lambda name: getattr(args, name, None)  # noqa: E731
    out = ResourceFlags()
    res = out.resources
    # memory
    mem: dict = {}
    if g("memory"):
        mem["limit"] = parse_size(g("memory"), "--memory")
        if mem["limit"] and mem["limit"] < 6 * 1024 * 1024:
            raise UsageError("invalid value for --memory: the minimum memory limit allowed is 6MiB")
    if g("memory_reservation"):
        mem["reservation"] = parse_size(g("memory_reservation"), "--memory-reservation")
        if mem["reservation"] and mem["reservation"] < 6 * 1024 * 1024:
            raise UsageError("invalid value for --memory-reservation: the minimum allowed is 6MiB")
        if mem.get("limit") and mem["reservation"] > mem["limit"]:
            raise UsageError("--memory must not be less than --memory-reservation")
    if g("memory_swap"):
        text = str(g("memory_swap")).strip()
        swap = -1 if text == "-1" else parse_size(text, "--memory-swap")
        if swap:
            if not mem.get("limit"):
                raise UsageError("--memory-swap needs --memory too")
            if swap != -1 and swap < mem["limit"]:
                raise UsageError("--memory-swap must be at least --memory (it is memory plus swap)")
            mem["swap"] = swap
    if g("oom_kill_disable"):
        mem["disableOOMKiller"] = True
    mem = {k: v for k, v in mem.items() if v}  # 0 means "not set", as in docker
    if mem:
        res["memory"] = mem
    # cpu
    cpu: dict = {}
    if g("cpu_shares"):
        shares = _int(g("cpu_shares"), "--cpu-shares")
        if shares and not 2 <= shares <= 262144:
            raise UsageError(f"invalid value for --cpu-shares: {shares} (2 to 262144)")
        if shares:
            cpu["shares"] = shares
    if g("cpus"):
        if g("cpu_quota") or g("cpu_period"):
            raise UsageError("conflicting options: --cpus cannot be used with --cpu-quota or --cpu-period")
        import re
        from fractions import Fraction

        text = str(g("cpus")).strip()
        if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", text):
            raise UsageError(f"invalid value for --cpus: {g('cpus')!r} is not a number")
        n = Fraction(text)
        ncpu = host_cpu_count()
        if n < 0 or n > ncpu:
            raise UsageError(f"invalid value for --cpus: {g('cpus')}: the range of CPUs is from "
                             f"0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
        if n:
            quota = int(n * CPU_PERIOD)
            if quota < 1000:
                raise UsageError(f"invalid value for --cpus: {g('cpus')}: the minimum is 0.01")
            cpu["quota"], cpu["period"] = quota, CPU_PERIOD
    if g("cpu_period"):
        period = _int(g("cpu_period"), "--cpu-period")
        if period and not 1000 <= period <= 1000000:
            raise UsageError(f"invalid value for --cpu-period: {period} (1000 to 1000000 microseconds)")
        if period:
            cpu["period"] = period
    if g("cpu_quota"):
        quota = _int(g("cpu_quota"), "--cpu-quota")
        if quota < -1 or 0 < quota < 1000:
            raise UsageError(f"invalid value for --cpu-quota: {quota} (-1, or at least 1000 microseconds)")
        if quota:
            cpu["quota"] = quota
    if g("cpuset_cpus"):
        cpu["cpus"] = _cpu_list(g("cpuset_cpus"), "--cpuset-cpus")
    if g("cpuset_mems"):
        cpu["mems"] = _cpu_list(g("cpuset_mems"), "--cpuset-mems")
    if cpu:
        res["cpu"] = cpu
    # block I/O
    blk: dict = {}
    if g("blkio_weight"):
        w = _int(g("blkio_weight"), "--blkio-weight")
        if w and not 10 <= w <= 1000:
            raise UsageError(f"invalid value for --blkio-weight: {w} (10 to 1000)")
        if w:
            blk["weight"] = w
    for flag, key, iops in (("device_read_bps", "throttleReadBpsDevice", False),
                            ("device_write_bps", "throttleWriteBpsDevice", False),
                            ("device_read_iops", "throttleReadIOPSDevice", True),
                            ("device_write_iops", "throttleWriteIOPSDevice", True)):
        items = g(flag) or []
        if items:
            blk[key] = _throttle(items, "--" + flag.replace("_", "-"), iops)
    if blk:
        res["blockIO"] = blk
    # pids
    if g("pids_limit") not in (None, ""):
        n = _int(g("pids_limit"), "--pids-limit")
        res["pids"] = {"limit": n if n > 0 else -1}
    # devices
    rules = []
    for text in g("device") or []:
        entry, rule = parse_device(text)
        out.devices.append(entry)
        rules.append(rule)
    if rules:
        res["devices"] = rules
    if g("cgroup_parent"):
        out.cgroup_parent = _cgroup_parent(g("cgroup_parent"))
    return out
