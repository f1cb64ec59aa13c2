"""Checks of resource limits that do not depend on the host, shared by v1 and v2.

docker's rules for the values (:func:`check_values`), which controller each limit
needs (:func:`needed_controllers`), the cpuset against what the host offers
(:func:`check_cpuset`), and the block I/O throttle keys in each version's words.
"""
from __future__ import annotations

from pyrt_core.errors import UsageError

from . import detect

MIN_MEMORY = 6 * 1024 * 1024  # docker's minimum (linuxMinMemory)
MIN_SHARES, MAX_SHARES = 2, 262144


def _mib(n: int) -> str:
    return f"{n / 1048576:g}MiB"


def check_values(r) -> None:
    """Refuse values no manager can honour (raises UsageError); docker's rules."""
    mem = r.memory_limit or 0
    if mem < -1:
        raise UsageError(f"invalid memory limit {mem}")
    if 0 < mem < MIN_MEMORY:
        raise UsageError(f"memory limit {_mib(mem)} is too small: the minimum allowed is 6MiB")
    res = r.memory_reservation or 0
    if res < -1:
        raise UsageError(f"invalid memory reservation {res}")
    if 0 < res < MIN_MEMORY:
        raise UsageError(f"memory reservation {_mib(res)} is too small: the minimum allowed is 6MiB")
    if mem > 0 and res > mem:
        raise UsageError("the memory limit must not be less than the memory reservation")
    swap = r.memory_swap or 0
    if swap < -1:
        raise UsageError(f"invalid memory+swap limit {swap}")
    if swap and mem <= 0:
        raise UsageError("a memory+swap limit (--memory-swap) needs a memory limit (--memory) too")
    if swap > 0 and swap < mem:
        raise UsageError("the memory+swap limit (--memory-swap) must be at least the memory limit "
                         "(--memory)")
    shares = r.cpu_shares or 0
    if shares and not MIN_SHARES <= shares <= MAX_SHARES:
        raise UsageError(f"cpu shares {shares} out of range: {MIN_SHARES} to {MAX_SHARES}")
    period = r.cpu_period or 0
    if period and not 1000 <= period <= 1000000:
        raise UsageError(f"cpu period {period} out of range: 1000 (1ms) to 1000000 (1s)")
    quota = r.cpu_quota or 0
    if quota < -1 or 0 < quota < 1000:
        raise UsageError(f"cpu quota {quota} is invalid: -1 (unlimited) or at least 1000 (1ms)")
    for what, text in (("cpus", r.cpuset_cpus), ("mems", r.cpuset_mems)):
        if text:
            try:
                detect.parse_cpu_list(text)
            except ValueError:
                raise UsageError(f"invalid cpuset {what} {text!r}: expected a list such as 0-3,5") from None
    w = r.blkio_weight or 0
    if w and not 10 <= w <= 1000:
        raise UsageError(f"blkio weight {w} out of range: 10 to 1000")
    for key, entries in (r.blkio_throttle or {}).items():
        if key not in THROTTLE_KEYS:
            raise UsageError(f"unknown block I/O throttle {key!r}")
        for major, minor, rate in entries:
            if major < 0 or minor < 0 or rate < 0:
                raise UsageError(f"invalid {key} entry {major}:{minor} {rate}")
    for d in r.devices:
        if d.type not in ("a", "b", "c"):
            raise UsageError(f"invalid device rule type {d.type!r}: a, b or c")
        if not d.access or set(d.access) - set("rwm"):
            raise UsageError(f"invalid device rule access {d.access!r}: a combination of r, w and m")


#: OCI blockIO throttle keys -> (v1 file, v2 io.max key)
THROTTLE_KEYS = {
    "throttleReadBpsDevice": ("blkio.throttle.read_bps_device", "rbps"),
    "throttleWriteBpsDevice": ("blkio.throttle.write_bps_device", "wbps"),
    "throttleReadIOPSDevice": ("blkio.throttle.read_iops_device", "riops"),
    "throttleWriteIOPSDevice": ("blkio.throttle.write_iops_device", "wiops"),
}


def needed_controllers(r) -> dict[str, str]:
    """Generic controller -> the flag that needs it, for the limits set in ``r``."""
    need: dict[str, str] = {}
    if r.memory_limit or r.memory_reservation or r.memory_swap or r.disable_oom_killer:
        need["memory"] = "--memory/--memory-reservation/--memory-swap/--oom-kill-disable"
    if r.cpu_shares or r.cpu_quota or r.cpu_period:
        need["cpu"] = "--cpus/--cpu-shares/--cpu-quota/--cpu-period"
    if r.cpuset_cpus or r.cpuset_mems:
        need["cpuset"] = "--cpuset-cpus/--cpuset-mems"
    if r.blkio_weight or any(r.blkio_throttle.values()):
        need["blkio"] = "--blkio-weight/--device-read-bps/--device-write-bps/--device-read-iops/--device-write-iops"
    if r.pids_limit:
        need["pids"] = "--pids-limit"
    return need


def check_cpuset(r, cpus_avail: set[int] | None, mems_avail: set[int] | None) -> None:
    """Refuse a cpuset naming CPUs or memory nodes the host does not offer."""
    for what, text, avail in (("CPUs", r.cpuset_cpus, cpus_avail), ("memory nodes", r.cpuset_mems, mems_avail)):
        if not text or avail is None:
            continue
        want = detect.parse_cpu_list(text)
        if not want <= avail:
            raise UsageError(f"requested {what} are not available - requested {text}, available: "
                             f"{detect.format_cpu_list(avail)}")


def host_cpus(fallback: str = "/sys/devices/system/cpu/online") -> set[int] | None:
    try:
        with open(fallback) as f:
            return detect.parse_cpu_list(f.read())
    except (OSError, ValueError):
        return None
