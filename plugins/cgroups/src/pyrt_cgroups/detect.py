"""Find the host's cgroup hierarchies from ``/proc/self/mountinfo``.

Three layouts exist:

* **v2** (unified): one ``cgroup2`` mount holds every controller;
* **v1** (legacy): one ``cgroup`` mount per controller (or per group of
  co-mounted controllers, such as ``cpu,cpuacct``);
* **hybrid**: v1 controller mounts *and* a ``cgroup2`` mount (usually
  ``/sys/fs/cgroup/unified``) that holds no controllers.  Controllers live in
  v1, so the v1 manager is used.

Every function takes the path of the file it reads as a parameter, so unit
tests point them at fake trees in a temporary directory.
"""
from __future__ import annotations

import os

from pyrt_core.api import Record

MOUNTINFO = "/proc/self/mountinfo"

#: v1 controllers the v1 manager knows, in the order cgroups are joined
V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio",
                  "pids", "hugetlb")
#: v2 controllers the v2 manager enables for a container's cgroup
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")


class Hierarchies(Record):
    """The cgroup mounts of one host (as seen from one mount namespace).

    ``v1`` maps each mounted v1 controller to its mount point (co-mounted
    controllers share one); ``v1_roots`` to the mount's root inside its
    hierarchy (``/`` unless a sub-tree was bind-mounted); ``unified`` is the
    ``cgroup2`` mount point, or ``None``.

    A plain class (pyrt_core.records), not attrs: the runtime's ``delete`` reads it on
    its hot path, where importing attrs would cost ~25 ms.
    """

    __slots__ = ("v1", "v1_roots", "unified", "unified_root")

    def __init__(self, v1: dict[str, str] | None = None, v1_roots: dict[str, str] | None = None,
                 unified: str | None = None, unified_root: str = "/"):
        self.v1: dict[str, str] = {} if v1 is None else v1
        self.v1_roots: dict[str, str] = {} if v1_roots is None else v1_roots
        self.unified = unified
        self.unified_root = unified_root

    @property
    def mode(self) -> str:
        """``"v2"``, ``"hybrid"``, ``"v1"`` or ``"none"``."""
        if self.v1:
            return "hybrid" if self.unified else "v1"
        return "v2" if self.unified else "none"

    @property
    def version(self) -> int:
        """The cgroup version whose controllers are used: 2, 1, or 0 for none."""
        return {"v2": 2, "hybrid": 1, "v1": 1}.get(self.mode, 0)

    def mountpoints(self) -> list[str]:
        mps = sorted(set(self.v1.values()))
        if self.unified:
            mps.append(self.unified)
        return mps


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> Hierarchies:
    """The cgroup hierarchies described by mountinfo ``text``.

    When a hierarchy is mounted more than once, the first mount wins.
    Named hierarchies without a controller (``name=systemd``) are ignored.
    """
    h = Hierarchies()
    for line in text.splitlines():
        parts = line.split()
        try:
            sep = parts.index("-")
        except ValueError:
            continue
        if len(parts) < sep + 4 or sep < 5:
            continue
        fstype = parts[sep + 1]
        root, mountpoint = _unescape(parts[3]), _unescape(parts[4])
        if fstype == "cgroup2":
            if h.unified is None:
                h.unified, h.unified_root = mountpoint, root
        elif fstype == "cgroup":
            for opt in parts[sep + 3].split(","):
                if opt in V1_CONTROLLERS and opt not in h.v1:
                    h.v1[opt] = mountpoint
                    h.v1_roots[opt] = root
    return h


def find_hierarchies(mountinfo: str | None = None) -> Hierarchies:
    """The hierarchies mounted in this process's mount namespace (read from
    ``mountinfo``, default :data:`MOUNTINFO`)."""
    if mountinfo is None:
        mountinfo = MOUNTINFO
    try:
        with open(mountinfo) as f:
            return parse_mountinfo(f.read())
    except OSError:
        return Hierarchies()


def v2_controllers(cgroup_dir: str) -> set[str]:
    """The controllers a v2 cgroup can give its children (``cgroup.controllers``)."""
    try:
        with open(os.path.join(cgroup_dir, "cgroup.controllers")) as f:
            return set(f.read().split())
    except OSError:
        return set()


def parse_cpu_list(text: str) -> set[int]:
    """``"0-3,5"`` -> {0, 1, 2, 3, 5}; raises ValueError on bad syntax."""
    out: set[int] = set()
    text = text.strip()
    if not text:
        return out
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"invalid list {text!r}")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"invalid range {part!r} in {text!r}")
        out.update(range(a, b + 1))
    return out


def format_cpu_list(ids) -> str:
    """{0, 1, 2, 5} -> ``"0-2,5"``."""
    ids = sorted(set(ids))
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def own_cgroups(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """Controller -> cgroup path of a process (``""`` is the v2 entry)."""
    out: dict[str, str] = {}
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":
            out[""] = parts[2]
        for c in parts[1].split(","):
            if c:
                out[c] = parts[2]
    return out
