"""Fake cgroup filesystems for unit tests (no root, no kernel).

:func:`fake_v1`, :func:`fake_hybrid` and :func:`fake_v2` lay out a tree of
ordinary directories and files in a temporary directory, shaped like the
kernel's, plus a ``mountinfo`` file describing it; pass that path as
``mountinfo=`` and the returned :class:`FakeCgroupFS` as ``fs=``.

:class:`FakeCgroupFS` does what the kernel would on mkdir (fill the new
directory with its controller files), keeps the kernel's rule that a file
must exist to be written, records every write as ``(path relative to the
tree, value)`` in :attr:`FakeCgroupFS.writes`, and emulates the few files
whose reading depends on writing (``cgroup.procs``, ``freezer.state``,
``cgroup.freeze``/``cgroup.events``, ``cgroup.subtree_control``).
"""
from __future__ import annotations

import errno
import os

from .cgfs import CgroupFS
from .errors import CgroupError

V1_UNLIMITED = "9223372036854771712"

V1_FILES = {
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.effective_cpus": "",
               "cpuset.effective_mems": ""},
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
            "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"},
    "cpuacct": {"cpuacct.usage": "0", "cpuacct.stat": "user 0\nsystem 0\n"},
    "memory": {"memory.limit_in_bytes": V1_UNLIMITED, "memory.memsw.limit_in_bytes": V1_UNLIMITED,
               "memory.soft_limit_in_bytes": V1_UNLIMITED, "memory.usage_in_bytes": "0",
               "memory.max_usage_in_bytes": "0", "memory.memsw.usage_in_bytes": "0",
               "memory.failcnt": "0", "memory.stat": "cache 0\nrss 0\n",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED"},
    "blkio": {"blkio.bfq.weight": "100", "blkio.bfq.io_service_bytes": "",
              "blkio.throttle.read_bps_device": "",
              "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "",
              "blkio.throttle.write_iops_device": "", "blkio.throttle.io_service_bytes_recursive": "",
              "blkio.throttle.io_serviced_recursive": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
}
# files the kernel leaves out of a v1 root cgroup
V1_NOT_ON_ROOT = {"blkio.bfq.weight", "pids.max", "pids.current", "freezer.state"}

V2_FILES = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "",
               "cpuset.mems.effective": ""},
    "io": {"io.weight": "default 100", "io.max": "", "io.stat": ""},
    "memory": {"memory.max": "max", "memory.low": "0", "memory.swap.max": "max",
               "memory.current": "0", "memory.swap.current": "0", "memory.stat": "anon 0\nfile 0\n",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
}
V2_CORE = {"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.freeze": "0",
           "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "",
           "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"}


def _put(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


class FakeCgroupFS(CgroupFS):
    """A :class:`CgroupFS` over a fake tree (see the module docstring)."""

    def __init__(self, base: str, kinds: dict[str, str]):
        self.base = base
        self.kinds = kinds  # mount point -> "v1:<controller>" or "v2"
        self.writes: list[tuple[str, str]] = []

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.base)

    def _kind(self, path: str) -> tuple[str, str]:
        for mp, kind in self.kinds.items():
            if path == mp or path.startswith(mp + "/"):
                return mp, kind
        raise CgroupError(f"{path} is not in a fake hierarchy")

    def populate(self, path: str, root: bool = False) -> None:
        mp, kind = self._kind(path)
        files = {"cgroup.procs": "", "tasks": ""}
        if kind == "v2":
            files.update(V2_CORE)
            parent = os.path.dirname(path)
            if root:
                ctl = self.root_controllers
            else:
                with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                    ctl = f.read().split()
            files["cgroup.controllers"] = " ".join(ctl)
            for c in ctl:
                files.update(V2_FILES.get(c, {}))
            if root:
                for k in ("cgroup.freeze", "cgroup.events", "cgroup.kill", "memory.max",
                          "memory.swap.max", "memory.low", "memory.events", "pids.max",
                          "cpu.max", "cpu.weight"):
                    files.pop(k, None)
                files["cpuset.cpus.effective"] = "0-3"
                files["cpuset.mems.effective"] = "0"
        else:
            c = kind.split(":", 1)[1]
            for cc in c.split(","):
                files.update(V1_FILES.get(cc, {}))
            if root:
                for k in V1_NOT_ON_ROOT:
                    files.pop(k, None)
                if "cpuset" in c:
                    files.update({"cpuset.cpus": "0-3", "cpuset.mems": "0",
                                  "cpuset.effective_cpus": "0-3", "cpuset.effective_mems": "0"})
        for name, text in files.items():
            _put(os.path.join(path, name), text)

    # -- CgroupFS --
    def mkdir(self, path):
        if not os.path.isdir(os.path.dirname(path)):
            err = CgroupError(f"cannot create cgroup {path}: No such file or directory")
            err.errno = errno.ENOENT
            raise err
        if os.path.isdir(path):
            return False
        os.mkdir(path)
        self.populate(path)
        return True

    def rmdir(self, path, timeout=5.0):
        if not os.path.isdir(path):
            return False
        entries = list(os.scandir(path))
        if any(e.is_dir() for e in entries) or self.read(os.path.join(path, "cgroup.procs")).split():
            raise CgroupError(f"cannot remove cgroup {path}: Device or resource busy")
        for e in entries:
            os.unlink(e.path)
        os.rmdir(path)
        return True

    def write(self, path, value):
        value = str(value)
        if not os.path.isfile(path):
            raise CgroupError(f"cannot open {path} to write {value!r}: No such file or directory")
        self.writes.append((self.rel(path), value))
        name = os.path.basename(path)
        d = os.path.dirname(path)
        if name in ("cgroup.procs", "tasks"):
            # a process is in one cgroup per hierarchy: move it
            mp, _ = self._kind(path)
            for dirpath, _, files in os.walk(mp):
                if "cgroup.procs" in files:
                    f = os.path.join(dirpath, "cgroup.procs")
                    pids = [p for p in open(f).read().split() if p != value]
                    _put(f, "".join(p + "\n" for p in pids))
            with open(path, "a") as f:
                f.write(value + "\n")
        elif name == "cgroup.subtree_control":
            cur = set(open(path).read().split())
            for tok in value.split():
                (cur.add if tok[0] == "+" else cur.discard)(tok[1:])
            _put(path, " ".join(sorted(cur)))
        elif name == "cgroup.freeze":
            _put(path, value)
            _put(os.path.join(d, "cgroup.events"), f"populated 0\nfrozen {value.strip()}\n")
        elif name in ("devices.allow", "devices.deny", "cgroup.kill", "io.max") or \
                name.startswith("blkio.throttle."):
            with open(path, "a") as f:  # these files take one entry per write
                f.write(value + "\n")
        else:
            _put(path, value)

    def writes_to(self, name: str) -> list[str]:
        """Values written to files called ``name`` (any cgroup), in order."""
        return [v for p, v in self.writes if os.path.basename(p) == name]

    def written(self) -> dict[str, str]:
        """Relative path -> last value written."""
        out: dict[str, str] = {}
        for p, v in self.writes:
            out[p] = v
        return out


def _mountinfo(base: str, lines: list[tuple[str, str, str]]) -> str:
    path = os.path.join(base, "mountinfo")
    with open(path, "w") as f:
        f.write(f"22 1 0:21 / /proc rw,nosuid - proc proc rw\n")
        for i, (mp, fstype, opts) in enumerate(lines):
            f.write(f"{40 + i} 31 0:{40 + i} / {mp} rw,nosuid,nodev,noexec,relatime shared:{i} "
                    f"- {fstype} {fstype} {opts}\n")
    return path


def fake_v1(base: str, controllers=("cpuset", "cpu,cpuacct", "memory", "devices", "freezer",
                                    "blkio", "pids"), unified: bool = False) -> tuple[str, FakeCgroupFS]:
    """A v1 tree (hybrid with ``unified=True``); returns (mountinfo path, fs)."""
    base = str(base)
    root = os.path.join(base, "cgroup")
    kinds, lines = {}, []
    for c in controllers:
        mp = os.path.join(root, c)
        os.makedirs(mp)
        kinds[mp] = "v1:" + c
        lines.append((mp, "cgroup", "rw," + c))
    mp = os.path.join(root, "systemd")
    os.makedirs(mp)
    lines.append((mp, "cgroup", "rw,xattr,name=systemd"))
    fs = FakeCgroupFS(base, kinds)
    if unified:
        mp = os.path.join(root, "unified")
        os.makedirs(mp)
        fs.kinds[mp] = "v2"
        fs.root_controllers = []
        lines.append((mp, "cgroup2", "rw,nsdelegate"))
    for mp in fs.kinds:
        fs.populate(mp, root=True)
    return _mountinfo(base, lines), fs


def fake_hybrid(base: str) -> tuple[str, FakeCgroupFS]:
    return fake_v1(base, unified=True)


def fake_v2(base: str, controllers=("cpuset", "cpu", "io", "memory", "pids")) -> tuple[str, FakeCgroupFS]:
    """A unified (v2-only) tree; returns (mountinfo path, fs)."""
    base = str(base)
    mp = os.path.join(base, "cgroup")
    os.makedirs(mp)
    fs = FakeCgroupFS(base, {mp: "v2"})
    fs.root_controllers = list(controllers)
    fs.populate(mp, root=True)
    return _mountinfo(base, [(mp, "cgroup2", "rw,nsdelegate,memory_recursiveprot")]), fs
