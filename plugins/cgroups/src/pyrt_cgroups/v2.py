"""The cgroup v2 manager (``cgroupfs-v2``): unified hosts.

One hierarchy.  A controller is usable in a cgroup only when every
ancestor enables it in ``cgroup.subtree_control``; :meth:`V2Manager.create`
does that on the way down.  Values follow runc's v1 -> v2 conversions
(shares -> ``cpu.weight``, blkio weight -> ``io.weight``, memory+swap ->
``memory.swap.max``); devices go through an eBPF program (:mod:`.ebpf`).
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

_GENERIC_TO_V2 = {"memory": "memory", "cpu": "cpu", "cpuset": "cpuset", "blkio": "io", "pids": "pids"}


def _j(*a) -> str:
    return os.path.join(*a)


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000), runc's formula."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) -> io.weight (1..10000), runc's formula."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_max(memory: int | None, memory_swap: int | None) -> int | None:
    """OCI memory+swap total -> memory.swap.max (``-1`` = max, ``None`` = leave)."""
    swap = memory_swap or 0
    if swap == 0:
        return None
    if swap == -1:
        return -1
    mem = memory or 0
    if mem <= 0:
        raise UsageError("a memory+swap limit needs a memory limit on cgroup v2")
    if swap < mem:
        raise UsageError("the memory+swap limit must be at least the memory limit")
    return swap - mem


def _max(v: int) -> str:
    return "max" if v is None or v < 0 else str(v)


def io_max_lines(throttle: dict) -> list[str]:
    """OCI throttle lists -> ``io.max`` lines, one per device ("8:0 rbps=1048576 wiops=10")."""
    per_dev: dict[tuple[int, int], list[str]] = {}
    for key in THROTTLE_KEYS:
        for major, minor, rate in (throttle or {}).get(key, []):
            per_dev.setdefault((major, minor), []).append(
                f"{THROTTLE_KEYS[key][1]}={rate if rate > 0 else 'max'}")
    return [f"{ma}:{mi} " + " ".join(v) for (ma, mi), v in per_dev.items()]


class V2Manager(Manager):
    name = "cgroupfs-v2"
    version = 2

    # -- host facts --
    @classmethod
    def unusable(cls, host):
        if not host.unified:
            return "no cgroup2 filesystem is mounted"
        if host.v1:
            return ("cgroup v1 controllers are mounted ("
                    + ", ".join(sorted(host.v1)) + "): they cannot be used through cgroup v2")
        return None

    @classmethod
    def controllers(cls, host):
        have = detect.v2_controllers(host.unified) if host.unified else set()
        out = [c for c in detect.V2_CONTROLLERS if c in have]
        return out + ["devices (eBPF)", "freezer (cgroup.freeze)"]

    @classmethod
    def validate(cls, host, r, fs=None):
        from . import cgfs

        fs = fs or cgfs.REAL
        check_values(r)
        have = detect.v2_controllers(host.unified)
        for generic, flags in needed_controllers(r).items():
            c = _GENERIC_TO_V2[generic]
            if c not in have:
                raise UsageError(f"{flags}: the {c} controller is not available in this host's "
                                 f"cgroup v2 hierarchy ({host.unified}/cgroup.controllers)")
        if r.disable_oom_killer:
            raise UsageError("--oom-kill-disable is not available with cgroup v2")
        swap_max(r.memory_limit, r.memory_swap)
        if r.cpuset_cpus or r.cpuset_mems:
            def avail(f):
                p = _j(host.unified, f)
                if not fs.exists(p):
                    return None
                try:
                    return detect.parse_cpu_list(fs.read(p))
                except ValueError:
                    return None
            check_cpuset(r, avail("cpuset.cpus.effective"), avail("cpuset.mems.effective"))

    # -- one cgroup --
    @property
    def paths(self):
        if self._paths is not None:
            return self._paths
        return {"unified": self.host.unified + self.path}

    @property
    def dir(self) -> str:
        return self.paths["unified"]

    def _root(self) -> str:
        if self.host.unified:
            return self.host.unified
        d = self.dir
        return d[: len(d) - len(self.path)] if d.endswith(self.path) else os.path.dirname(d)

    def create(self):
        self._makedirs(self._root(), self.dir, before_child=self._enable_controllers)

    def _enable_controllers(self, d: str) -> None:
        """Let the children of ``d`` use the controllers pyrt needs."""
        have = set(self.fs.read(_j(d, "cgroup.controllers")).split())
        enabled = set(self.fs.read(_j(d, "cgroup.subtree_control")).split())
        want = [c for c in detect.V2_CONTROLLERS if c in have and c not in enabled]
        if not want:
            return
        f = _j(d, "cgroup.subtree_control")
        try:
            self.fs.write(f, " ".join("+" + c for c in want))
        except CgroupError:
            for c in want:  # enable what can be; set() reports what is missing
                try:
                    self.fs.write(f, "+" + c)
                except CgroupError:
                    pass

    def set(self, r):
        d, fs = self.dir, self.fs
        ctl = set(fs.read(_j(d, "cgroup.controllers")).split())

        def need(c, flag):
            if c not in ctl:
                raise CgroupError(f"{flag}: the {c} controller is not enabled for {d} "
                                  "(a parent's cgroup.subtree_control lacks it)")

        # memory
        if r.memory_limit or r.memory_swap or r.memory_reservation:
            need("memory", "--memory")
            sm = swap_max(r.memory_limit, r.memory_swap)
            if r.memory_limit == -1 and sm is None:
                sm = -1
            if sm is not None:
                if not fs.exists(_j(d, "memory.swap.max")):
                    raise CgroupError("--memory-swap: this kernel does not account swap "
                                      "(no memory.swap.max)")
                # memory.swap.max is independent of memory.max: any order works
                fs.write(_j(d, "memory.swap.max"), _max(sm))
            if r.memory_limit:
                fs.write(_j(d, "memory.max"), _max(r.memory_limit))
            if r.memory_reservation:
                fs.write(_j(d, "memory.low"), _max(r.memory_reservation))
        if r.disable_oom_killer:
            raise CgroupError("--oom-kill-disable is not available with cgroup v2")
        # cpu
        if r.cpu_shares:
            need("cpu", "--cpu-shares")
            fs.write(_j(d, "cpu.weight"), shares_to_weight(r.cpu_shares))
        if r.cpu_quota or r.cpu_period:
            need("cpu", "--cpus/--cpu-quota/--cpu-period")
            quota = "max" if not r.cpu_quota or r.cpu_quota < 0 else str(r.cpu_quota)
            if r.cpu_period:
                fs.write(_j(d, "cpu.max"), f"{quota} {r.cpu_period}")
            else:
                fs.write(_j(d, "cpu.max"), quota)
        # cpuset
        if r.cpuset_cpus:
            need("cpuset", "--cpuset-cpus")
            fs.write(_j(d, "cpuset.cpus"), r.cpuset_cpus)
        if r.cpuset_mems:
            need("cpuset", "--cpuset-mems")
            fs.write(_j(d, "cpuset.mems"), r.cpuset_mems)
        # io
        if r.blkio_weight:
            need("io", "--blkio-weight")
            if fs.exists(_j(d, "io.bfq.weight")):
                fs.write(_j(d, "io.bfq.weight"), r.blkio_weight)
            else:
                fs.write(_j(d, "io.weight"), f"default {blkio_to_io_weight(r.blkio_weight)}")
        lines = io_max_lines(r.blkio_throttle)
        if lines:
            need("io", "--device-read/write-bps/iops")
            for line in lines:
                fs.write(_j(d, "io.max"), line)
        # pids
        if r.pids_limit:
            need("pids", "--pids-limit")
            fs.write(_j(d, "pids.max"), r.pids_limit if r.pids_limit > 0 else "max")
        # devices
        if r.devices:
            self._set_devices(r.devices)

    def _set_devices(self, rules) -> None:
        from . import ebpf

        ebpf.attach(self.dir, rules)

    def add(self, pid):
        self.fs.write(_j(self.dir, "cgroup.procs"), pid)

    def _move_back(self, pid, original):
        orig = original.get("")
        if orig is None:
            return
        target = self._root() + ("" if orig == "/" else orig)
        try:
            self.fs.write(_j(target, "cgroup.procs"), pid)
        except CgroupError:
            pass

    def stats(self):
        d, fs = self.dir, self.fs
        out: dict = {}
        if not fs.isdir(d):
            return out
        st = fs.read_kv(_j(d, "cpu.stat"))
        out["cpu"] = {
            "usage_ns": st.get("usage_usec", 0) * 1000,
            "user_ns": st.get("user_usec", 0) * 1000,
            "system_ns": st.get("system_usec", 0) * 1000,
            "nr_periods": st.get("nr_periods", 0),
            "nr_throttled": st.get("nr_throttled", 0),
            "throttled_ns": st.get("throttled_usec", 0) * 1000,
        }
        if fs.exists(_j(d, "cpu.weight")):
            out["cpu"]["weight"] = fs.read_int(_j(d, "cpu.weight"))
        if fs.exists(_j(d, "cpu.max")):
            q, _, p = fs.read(_j(d, "cpu.max")).strip().partition(" ")
            out["cpu"]["quota"] = None if q == "max" else int(q)
            out["cpu"]["period"] = int(p) if p else None
        if fs.exists(_j(d, "memory.current")):
            m = out["memory"] = {"usage": fs.read_int(_j(d, "memory.current")),
                                 "limit": fs.read_int(_j(d, "memory.max"))}
            if fs.exists(_j(d, "memory.peak")):
                m["max_usage"] = fs.read_int(_j(d, "memory.peak"))
            if fs.exists(_j(d, "memory.swap.max")):
                m["swap_limit"] = fs.read_int(_j(d, "memory.swap.max"))
                m["swap"] = fs.read_int(_j(d, "memory.swap.current"))
            ev = fs.read_kv(_j(d, "memory.events"))
            m["oom_kill"] = ev.get("oom_kill", 0)
            m["oom"] = ev.get("oom", 0)
            ms = fs.read_kv(_j(d, "memory.stat"))
            for k, v in (("cache", "file"), ("rss", "anon")):
                if v in ms:
                    m[k] = ms[v]
        if fs.exists(_j(d, "pids.current")):
            out["pids"] = {"current": fs.read_int(_j(d, "pids.current")),
                           "limit": fs.read_int(_j(d, "pids.max"))}
        if fs.exists(_j(d, "io.stat")):
            b = out["blkio"] = {"read_bytes": 0, "write_bytes": 0, "read_ios": 0, "write_ios": 0}
            for line in fs.read(_j(d, "io.stat")).splitlines():
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    key = {"rbytes": "read_bytes", "wbytes": "write_bytes",
                           "rios": "read_ios", "wios": "write_ios"}.get(k)
                    if key and v.isdigit():
                        b[key] += int(v)
        if fs.exists(_j(d, "cpuset.cpus")):
            out["cpuset"] = {"cpus": fs.read(_j(d, "cpuset.cpus")).strip(),
                             "mems": fs.read(_j(d, "cpuset.mems")).strip()}
        out["freezer"] = {"state": self.freezer_state()}
        return out

    def _freeze_to(self, frozen: bool, timeout: float) -> None:
        d = self.dir
        if not self.fs.exists(_j(d, "cgroup.freeze")):
            raise CgroupError("this kernel has no cgroup v2 freezer (cgroup.freeze needs Linux 5.2)")
        self.fs.write(_j(d, "cgroup.freeze"), "1" if frozen else "0")
        deadline = time.monotonic() + timeout
        delay = 0.001
        want = 1 if frozen else 0
        while True:
            if self.fs.read_kv(_j(d, "cgroup.events")).get("frozen", 0) == want:
                return
            if time.monotonic() > deadline:
                if frozen:
                    self.fs.write(_j(d, "cgroup.freeze"), "0")
                raise CgroupError(f"cgroup {self.path} did not become "
                                  f"{'FROZEN' if frozen else 'THAWED'} within {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def freeze(self, timeout=10.0):
        self._freeze_to(True, timeout)

    def thaw(self, timeout=10.0):
        self._freeze_to(False, timeout)

    def freezer_state(self):
        d = self.dir
        if not self.fs.exists(_j(d, "cgroup.freeze")):
            return "THAWED"
        want = self.fs.read(_j(d, "cgroup.freeze")).strip() == "1"
        got = self.fs.read_kv(_j(d, "cgroup.events")).get("frozen", 0) == 1
        if got:
            return "FROZEN"
        return "FREEZING" if want else "THAWED"

    def oom_kill_count(self):
        f = _j(self.dir, "memory.events")
        if not self.fs.exists(f):
            return 0
        return self.fs.read_kv(f).get("oom_kill", 0)

    def _signal_all(self, sig):
        d = self.dir
        if sig == SIGKILL and self.fs.exists(_j(d, "cgroup.kill")):
            # the kernel kills exactly the processes of this cgroup and its descendants
            self.fs.write(_j(d, "cgroup.kill"), "1")
            return
        frozen = False
        if sig == SIGKILL and self.fs.exists(_j(d, "cgroup.freeze")):
            try:
                self.freeze(timeout=2.0)
                frozen = True
            except CgroupError:
                pass
        try:
            root = self._root()
            base = self.host.unified_root or "/"
            for sub in cgroup_tree(self.fs, d):
                expected = os.path.normpath(_j(base, os.path.relpath(sub, root)))
                for pid in procs(self.fs, sub):
                    signal_checked(pid, "", expected, sig)
        finally:
            if frozen:
                try:
                    self.thaw(timeout=2.0)
                except CgroupError:
                    pass
