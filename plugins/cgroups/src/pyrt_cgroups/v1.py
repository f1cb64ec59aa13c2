"""The cgroup v1 manager (``cgroupfs-v1``): legacy and hybrid hosts.

Each controller has its own hierarchy; a container's cgroup exists once in
each (``/sys/fs/cgroup/memory/pyrt/pyrt-<id>``, ``.../cpu/pyrt/pyrt-<id>``
...).  Each controller is one small object with ``create`` (after mkdir),
``set`` (write limits) and ``stats`` (read usage), as in runc.
"""
from __future__ import annotations

import os
import time

from pyrt_core.errors import UsageError

from . import detect
from .base import SIGKILL, Manager, cgroup_tree, signal_checked
from .cgfs import CgroupFS, procs
from .errors import CgroupError
from .limits import THROTTLE_KEYS, check_cpuset, check_values, needed_controllers

UNLIMITED = 1 << 60  # v1 reports "no limit" as 2**63 - 1 rounded down to a page


def _j(*a) -> str:
    return os.path.join(*a)


def _int_or_none(v):
    return None if v is None or v >= UNLIMITED else v


class Controller:
    """One v1 controller; the default joins and does nothing else."""

    name = ""

    def create(self, fs: CgroupFS, mountpoint: str, directory: str) -> None:
        """Called after the cgroup directory (and any parent) was made."""

    def set(self, fs: CgroupFS, d: str, r) -> None:
        """Write the limits of ``r`` this controller handles."""

    def stats(self, fs: CgroupFS, d: str, out: dict) -> None:
        """Add this controller's figures to ``out``."""


class Memory(Controller):
    name = "memory"

    def set(self, fs, d, r):
        mem, swap = r.memory_limit or 0, r.memory_swap or 0
        limit_f, memsw_f = _j(d, "memory.limit_in_bytes"), _j(d, "memory.memsw.limit_in_bytes")
        if mem == -1 and swap == 0 and fs.exists(memsw_f):
            swap = -1  # lifting the memory limit lifts memory+swap too
        if mem and swap:
            # the kernel wants memsw >= limit at every moment: order the two writes
            current = fs.read_int(limit_f)
            if swap == -1 or (current is not None and current < swap):
                fs.write(memsw_f, swap)
                fs.write(limit_f, mem)
            else:
                fs.write(limit_f, mem)
                fs.write(memsw_f, swap)
        else:
            if mem:
                fs.write(limit_f, mem)
            if swap:
                fs.write(memsw_f, swap)
        if r.memory_reservation:
            fs.write(_j(d, "memory.soft_limit_in_bytes"), r.memory_reservation)
        if r.disable_oom_killer:
            fs.write(_j(d, "memory.oom_control"), 1)
        if getattr(r, "memory_swappiness", None) is not None:
            fs.write(_j(d, "memory.swappiness"), r.memory_swappiness)

    def stats(self, fs, d, out):
        m = out.setdefault("memory", {})
        m["usage"] = fs.read_int(_j(d, "memory.usage_in_bytes"))
        m["max_usage"] = fs.read_int(_j(d, "memory.max_usage_in_bytes"))
        m["limit"] = _int_or_none(fs.read_int(_j(d, "memory.limit_in_bytes")))
        m["failcnt"] = fs.read_int(_j(d, "memory.failcnt"))
        if fs.exists(_j(d, "memory.memsw.limit_in_bytes")):
            m["swap_limit"] = _int_or_none(fs.read_int(_j(d, "memory.memsw.limit_in_bytes")))
            m["memsw_usage"] = fs.read_int(_j(d, "memory.memsw.usage_in_bytes"))
        oom = fs.read_kv(_j(d, "memory.oom_control"))
        m["oom_kill"] = oom.get("oom_kill", 0)
        m["oom_kill_disable"] = bool(oom.get("oom_kill_disable", 0))
        st = fs.read_kv(_j(d, "memory.stat")) if fs.exists(_j(d, "memory.stat")) else {}
        for k in ("cache", "rss", "swap"):
            if k in st:
                m[k] = st[k]


class Cpu(Controller):
    name = "cpu"

    def set(self, fs, d, r):
        if r.cpu_shares:
            fs.write(_j(d, "cpu.shares"), r.cpu_shares)
        period_f, quota_f = _j(d, "cpu.cfs_period_us"), _j(d, "cpu.cfs_quota_us")
        if r.cpu_period and r.cpu_quota:
            try:
                fs.write(period_f, r.cpu_period)
                fs.write(quota_f, r.cpu_quota)
            except CgroupError:
                # a new period can be refused against the old quota: the other order
                fs.write(quota_f, r.cpu_quota)
                fs.write(period_f, r.cpu_period)
        elif r.cpu_period:
            fs.write(period_f, r.cpu_period)
        elif r.cpu_quota:
            fs.write(quota_f, r.cpu_quota)

    def stats(self, fs, d, out):
        c = out.setdefault("cpu", {})
        st = fs.read_kv(_j(d, "cpu.stat"))
        c["nr_periods"] = st.get("nr_periods", 0)
        c["nr_throttled"] = st.get("nr_throttled", 0)
        c["throttled_ns"] = st.get("throttled_time", 0)
        c["shares"] = fs.read_int(_j(d, "cpu.shares"))
        quota = fs.read_int(_j(d, "cpu.cfs_quota_us"))
        c["quota"] = None if quota is None or quota < 0 else quota
        c["period"] = fs.read_int(_j(d, "cpu.cfs_period_us"))


class Cpuacct(Controller):
    name = "cpuacct"

    def stats(self, fs, d, out):
        c = out.setdefault("cpu", {})
        c["usage_ns"] = fs.read_int(_j(d, "cpuacct.usage"))
        st = fs.read_kv(_j(d, "cpuacct.stat"))
        tick = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
        c["user_ns"] = st.get("user", 0) * tick
        c["system_ns"] = st.get("system", 0) * tick


class Cpuset(Controller):
    name = "cpuset"

    def create(self, fs, mountpoint, directory):
        # a new v1 cpuset cgroup starts with empty cpus and mems and takes no task
        # until both are filled: copy them down from the nearest ancestor
        rel = os.path.relpath(directory, mountpoint).split(os.sep)
        parent = mountpoint
        for comp in rel:
            here = _j(parent, comp)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not fs.read(_j(here, f)).strip():
                    fs.write(_j(here, f), fs.read(_j(parent, f)).strip())
            parent = here

    def set(self, fs, d, r):
        if r.cpuset_cpus:
            fs.write(_j(d, "cpuset.cpus"), r.cpuset_cpus)
        if r.cpuset_mems:
            fs.write(_j(d, "cpuset.mems"), r.cpuset_mems)

    def stats(self, fs, d, out):
        c = out.setdefault("cpuset", {})
        c["cpus"] = fs.read(_j(d, "cpuset.cpus")).strip()
        c["mems"] = fs.read(_j(d, "cpuset.mems")).strip()


class Blkio(Controller):
    name = "blkio"

    def set(self, fs, d, r):
        if r.blkio_weight:
            for f in ("blkio.weight", "blkio.bfq.weight"):
                if fs.exists(_j(d, f)):
                    fs.write(_j(d, f), r.blkio_weight)
                    break
            else:
                raise CgroupError(f"{d} has neither blkio.weight nor blkio.bfq.weight")
        for key, entries in (r.blkio_throttle or {}).items():
            f = THROTTLE_KEYS[key][0]
            for major, minor, rate in entries:
                fs.write(_j(d, f), f"{major}:{minor} {rate}")

    def stats(self, fs, d, out):
        b = out.setdefault("blkio", {})
        for f, kind in (("blkio.throttle.io_service_bytes_recursive", "bytes"),
                        ("blkio.throttle.io_serviced_recursive", "ios")):
            read = write = 0
            if fs.exists(_j(d, f)):
                for line in fs.read(_j(d, f)).splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[2].isdigit():
                        if parts[1] == "Read":
                            read += int(parts[2])
                        elif parts[1] == "Write":
                            write += int(parts[2])
            b[f"read_{kind}"], b[f"write_{kind}"] = read, write


class Pids(Controller):
    name = "pids"

    def set(self, fs, d, r):
        if r.pids_limit:
            fs.write(_j(d, "pids.max"), r.pids_limit if r.pids_limit > 0 else "max")

    def stats(self, fs, d, out):
        out["pids"] = {"current": fs.read_int(_j(d, "pids.current")),
                       "limit": fs.read_int(_j(d, "pids.max"))}


def device_lines(rules) -> list[tuple[str, str]]:
    """OCI device rules -> ``(file, line)`` writes for devices.allow/deny.

    Rules are laid over deny-all (``a`` to ``devices.deny``) unless the
    first rule is itself a whole allow/deny-all; later rules win, as in the
    runtime-spec.  A rule of type ``a`` for only some accesses is written as
    the same rule for ``c`` and ``b`` (v1 has no partial ``a``).
    """
    out: list[tuple[str, str]] = []

    def whole(rule):
        return rule.type == "a" and set(rule.access) >= set("rwm")

    if rules and not whole(rules[0]):
        out.append(("devices.deny", "a"))
    for rule in rules:
        f = "devices.allow" if rule.allow else "devices.deny"
        if whole(rule):
            out.append((f, "a"))
            continue
        major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
        minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
        for t in (("c", "b") if rule.type == "a" else (rule.type,)):
            out.append((f, f"{t} {major}:{minor} {rule.access}"))
    return out


class Devices(Controller):
    name = "devices"

    def set(self, fs, d, r):
        for f, line in device_lines(r.devices):
            fs.write(_j(d, f), line)

    def stats(self, fs, d, out):
        out["devices"] = {"list": fs.read(_j(d, "devices.list")).split("\n")[:-1]}


class Freezer(Controller):
    name = "freezer"

    def stats(self, fs, d, out):
        out["freezer"] = {"state": fs.read(_j(d, "freezer.state")).strip()}


class Hugetlb(Controller):
    name = "hugetlb"

    def stats(self, fs, d, out):
        h = out.setdefault("hugetlb", {})
        try:
            names = os.listdir(d)
        except OSError:
            return
        for n in sorted(names):
            if n.startswith("hugetlb.") and n.endswith(".usage_in_bytes"):
                h[n[len("hugetlb."):-len(".usage_in_bytes")]] = fs.read_int(_j(d, n))


CONTROLLERS: dict[str, Controller] = {c.name: c for c in (
    Cpuset(), Cpu(), Cpuacct(), Memory(), Devices(), Freezer(), Blkio(), Pids(), Hugetlb())}


class V1Manager(Manager):
    name = "cgroupfs-v1"
    version = 1

    # -- host facts --
    @classmethod
    def unusable(cls, host):
        if not host.v1:
            return "no cgroup v1 controller is mounted"
        return None

    @classmethod
    def controllers(cls, host):
        return [c for c in detect.V1_CONTROLLERS if c in host.v1]

    @classmethod
    def validate(cls, host, r, fs=None):
        from . import cgfs

        fs = fs or cgfs.REAL
        check_values(r)
        for generic, flags in needed_controllers(r).items():
            if generic not in host.v1:
                raise UsageError(f"{flags}: this host has no {generic} cgroup controller mounted")
        if "devices" not in host.v1 and r.restricts_devices():
            # as runc: the devices cgroup is a hard requirement of the container's security
            raise UsageError("this host has no devices cgroup controller mounted: the "
                             "container's device rules cannot be enforced")
        mem = host.v1.get("memory")
        if r.memory_swap and not fs.exists(_j(mem, "memory.memsw.limit_in_bytes")):
            raise UsageError("--memory-swap: this kernel does not account swap (no "
                             "memory.memsw.limit_in_bytes; boot with swapaccount=1)")
        cpu = host.v1.get("cpu")
        if (r.cpu_quota or r.cpu_period) and not fs.exists(_j(cpu, "cpu.cfs_quota_us")):
            raise UsageError("--cpus/--cpu-quota/--cpu-period: this kernel has no CFS bandwidth "
                             "control (no cpu.cfs_quota_us)")
        if r.cpu_shares and not fs.exists(_j(cpu, "cpu.shares")):
            raise UsageError("--cpu-shares: this kernel has no cpu.shares")
        blk = host.v1.get("blkio")
        if r.blkio_weight and not any(fs.exists(_j(blk, f)) for f in
                                      ("blkio.weight", "blkio.bfq.weight", "blkio.bfq.io_service_bytes")):
            raise UsageError("--blkio-weight: this kernel has no proportional-weight I/O "
                             "scheduler (neither CFQ's blkio.weight nor BFQ)")
        if any(r.blkio_throttle.values()) and not fs.exists(_j(blk, "blkio.throttle.read_bps_device")):
            raise UsageError("--device-read/write-bps/iops: this kernel has no block I/O "
                             "throttling (no blkio.throttle.* files)")
        if r.cpuset_cpus or r.cpuset_mems:
            cs = host.v1["cpuset"]

            def avail(f1, f2):
                for f in (f1, f2):
                    if fs.exists(_j(cs, f)):
                        try:
                            return detect.parse_cpu_list(fs.read(_j(cs, f)))
                        except ValueError:
                            return None
                return None
            check_cpuset(r, avail("cpuset.effective_cpus", "cpuset.cpus"),
                         avail("cpuset.effective_mems", "cpuset.mems"))

    # -- one cgroup --
    @property
    def paths(self):
        if self._paths is not None:
            return self._paths
        return {c: self.host.v1[c] + self.path for c in self.controllers(self.host)}

    def _by_dir(self) -> dict[str, list[str]]:
        """Directory -> controllers in it (co-mounted controllers share one)."""
        out: dict[str, list[str]] = {}
        for c, d in self.paths.items():
            out.setdefault(d, []).append(c)
        return out

    def _mountpoint(self, controller: str, d: str) -> str:
        mp = self.host.v1.get(controller)
        if mp is None:  # restored from a record on a host whose mounts moved
            mp = d[: len(d) - len(self.path)] if d.endswith(self.path) else os.path.dirname(d)
        return mp

    def create(self):
        for d, ctrls in self._by_dir().items():
            mp = self._mountpoint(ctrls[0], d)
            self._makedirs(mp, d)
            for c in ctrls:
                CONTROLLERS[c].create(self.fs, mp, d)

    def set(self, r):
        for c, d in self.paths.items():
            CONTROLLERS[c].set(self.fs, d, r)

    def add(self, pid):
        for d in self._by_dir():
            self.fs.write(_j(d, "cgroup.procs"), pid)

    # A process writing "0" to a v1 ``tasks`` file moves only itself (one thread: the
    # container's init has no other), which the kernel does without the global
    # cgroup_threadgroup_rwsem; writing another process's pid to cgroup.procs takes it
    # and waits for an RCU grace period: measured 0.4 ms against 8-20 ms here.
    self_join = True

    def join_self(self):
        for d in self._by_dir():
            self.fs.write(_j(d, "tasks"), 0)

    def _move_back(self, pid, original):
        for d, ctrls in self._by_dir().items():
            orig = original.get(ctrls[0])
            if orig is None:
                continue
            target = self._mountpoint(ctrls[0], d) + ("" if orig == "/" else orig)
            try:
                self.fs.write(_j(target, "cgroup.procs"), pid)
            except CgroupError:
                pass

    def stats(self):
        out: dict = {}
        for c, d in self.paths.items():
            if self.fs.isdir(d):
                CONTROLLERS[c].stats(self.fs, d, out)
        return out

    def _freezer_dir(self) -> str:
        d = self.paths.get("freezer")
        if d is None:
            raise CgroupError("this host has no freezer cgroup controller mounted")
        return d

    def _freeze_to(self, target: str, timeout: float) -> None:
        f = _j(self._freezer_dir(), "freezer.state")
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            self.fs.write(f, target)
            state = self.fs.read(f).strip()
            if state == target:
                return
            if time.monotonic() > deadline:
                if target == "FROZEN":
                    self.fs.write(f, "THAWED")
                raise CgroupError(f"cgroup {self.path} did not become {target} within {timeout:g}s "
                                  f"(state {state})")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def freeze(self, timeout=10.0):
        self._freeze_to("FROZEN", timeout)

    def thaw(self, timeout=10.0):
        self._freeze_to("THAWED", timeout)

    def freezer_state(self):
        return self.fs.read(_j(self._freezer_dir(), "freezer.state")).strip()

    def oom_kill_count(self):
        d = self.paths.get("memory")
        if d is None or not self.fs.isdir(d):
            return 0
        return self.fs.read_kv(_j(d, "memory.oom_control")).get("oom_kill", 0)

    def _signal_all(self, sig):
        frozen = False
        if sig == SIGKILL and "freezer" in self.paths and self.fs.isdir(self.paths["freezer"]):
            # no fork can slip past the kill while the group is frozen; frozen tasks
            # take SIGKILL as soon as they are thawed
            try:
                self.freeze(timeout=2.0)
                frozen = True
            except CgroupError:
                pass
        try:
            seen: set[int] = set()
            for d, ctrls in self._by_dir().items():
                c = ctrls[0]
                mp = self._mountpoint(c, d)
                root = self.host.v1_roots.get(c, "/")
                for sub in cgroup_tree(self.fs, d):
                    expected = os.path.normpath(_j(root, os.path.relpath(sub, mp)))
                    for pid in procs(self.fs, sub):
                        if pid not in seen:
                            seen.add(pid)
                            signal_checked(pid, c, expected, sig)
        finally:
            if frozen:
                try:
                    self.thaw(timeout=2.0)
                except CgroupError:
                    pass
