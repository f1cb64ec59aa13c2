"""Machine facts: the only reasons a test may skip in CI, a pytest plugin.

A skip hides whatever the test would have checked.  On a developer's machine that
lacks a tool that is convenient; in CI it can hide a regression (a plugin's own code
raising, turned into "not supported here").  So a test that depends on the machine
names the fact, through this module::

    from pyrt_core.testing import machine

    pytestmark = machine.needs("cgroup-v1")            # a skipif marker
    machine.skip_unless("loop-devices")                # in a test or fixture
    machine.skip_unless("distribution", "pyrt-cgroups")

Each fact has a probe of its own, written without the code under test (reading
``/proc``, a syscall, a file's existence), so a plugin that breaks cannot make its
own tests skip.  The reason of such a skip reads ``machine fact 'NAME': ...``.

In CI (environment ``CI`` set to ``true``, ``1`` or ``yes``), the plugin part of this
module turns every other skip into a failure ("a tool is not installed" is a broken
CI set-up, not a property of the machine), and re-runs the probe of a named fact:
a skip naming a fact this machine does not have fails too.

Opt in with ``pytest_plugins = ["pyrt_core.testing.machine"]`` in a top-level
``conftest.py`` (``pyrt_core.testing.fixtures`` does).
"""
from __future__ import annotations

import os

import pytest

PREFIX = "machine fact '"

# name -> (what the test needs, in words)
FACTS = {
    "root": "root privileges (uid 0)",
    "unprivileged": "an unprivileged user (the test checks what one may do)",
    "vm-tier": "the VM tier's kernel (scripts/test-vm: device-mapper, pure cgroup v2)",
    "device-mapper": "device-mapper in this kernel (/dev/mapper/control)",
    "cgroup-v1": "cgroup v1 controllers mounted",
    "cgroup2": "a cgroup2 mount",
    "cgroup-device-bpf": "cgroup device eBPF programs (BPF_PROG_TYPE_CGROUP_DEVICE attached on cgroup2)",
    "pids-controller": "the pids cgroup controller mounted",
    "overlayfs": "the overlay filesystem in this kernel",
    "btrfs": "the btrfs filesystem in this kernel",
    "loop-devices": "loop devices (/dev/loop-control)",
    "x86_64": "an x86_64 machine",
    "user-xattrs": "user.* extended attributes on the temporary directory's filesystem",
    "tmp-not-btrfs": "a temporary directory that is not on btrfs",
    "dynamic-python": "a dynamically linked Python interpreter (its ELF names a loader)",
    "distribution": "a distribution installed in this environment",
    "program": "a program on PATH",
    "journald": "a running systemd-journald (its socket /run/systemd/journal/socket)",
    "no-journald": "no running journald (the test checks what happens without one)",
    "crun-cgroups": "cgroups crun can manage: v1, v2, or hybrid without controllers on the "
                    "cgroup2 mount (crun refuses 'cgroups in hybrid mode')",
}

V1_CONTROLLERS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                  "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"}


def _mounts():
    """(mount point, fstype, super options) of this mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            out.append((parts[4], parts[sep + 1], parts[sep + 3] if len(parts) > sep + 3 else ""))
    return out


def _v1_controllers() -> set[str]:
    out = set()
    for _, fstype, opts in _mounts():
        if fstype == "cgroup":
            out |= set(opts.split(",")) & V1_CONTROLLERS
    return out


def _cgroup2_mount() -> str | None:
    for mp, fstype, _ in _mounts():
        if fstype == "cgroup2":
            return mp
    return None


def _filesystem(name: str) -> bool:
    def listed():
        with open("/proc/filesystems") as f:
            return any(line.split()[-1:] == [name] for line in f)

    if listed():
        return True
    if os.geteuid() == 0:  # a module not loaded yet (the VM tier's kernel)
        import subprocess

        subprocess.run(["modprobe", name], capture_output=True, check=False)
        return listed()
    return False


def _pids_controller() -> bool:
    if "pids" in _v1_controllers():
        return True
    mp = _cgroup2_mount()
    try:
        with open(os.path.join(mp, "cgroup.controllers")) as f:
            return "pids" in f.read().split()
    except (OSError, TypeError):
        return False


def _user_xattrs() -> bool:
    import tempfile

    with tempfile.NamedTemporaryFile() as f:
        try:
            os.setxattr(f.name, "user.pyrt-probe", b"1")
            return True
        except OSError:
            return False


def _tmp_not_btrfs() -> bool:
    import ctypes
    import tempfile

    class Statfs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 112)]

    buf = Statfs()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.statfs(os.fsencode(tempfile.gettempdir()), ctypes.byref(buf)) != 0:
        return True
    return buf.f_type & 0xFFFFFFFF != 0x9123683E  # BTRFS_SUPER_MAGIC


def _dynamic_python() -> bool:
    import struct
    import sys

    with open(os.path.realpath(sys.executable), "rb") as f:
        data = f.read(1 << 16)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return True  # not a 64-bit ELF: nothing this fact could excuse
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    return any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3  # PT_INTERP
               for i in range(phnum))


def _distribution(name: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _cgroup_device_bpf() -> bool:
    """Load a cgroup device program that allows everything and attach it to a fresh
    cgroup of the cgroup2 mount (then detach and remove both): written here with bare
    syscalls, independent of the cgroups plugin whose filter the tests check."""
    import ctypes
    import struct
    import uuid

    nr = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
    mp = _cgroup2_mount()
    if nr is None or mp is None or os.geteuid() != 0:
        return nr is None  # an architecture this probe does not know: never a reason to skip
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def bpf(cmd, attr: bytes) -> int:
        buf = ctypes.create_string_buffer(attr.ljust(128, b"\0"), 128)
        return libc.syscall(ctypes.c_long(nr), ctypes.c_long(cmd), buf, ctypes.c_uint(128))

    insns = ctypes.create_string_buffer(bytes.fromhex("b700000001000000" "9500000000000000"))
    lic = ctypes.create_string_buffer(b"GPL")
    BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
    CGROUP_DEVICE_PROG, CGROUP_DEVICE_ATTACH = 15, 6
    prog = bpf(BPF_PROG_LOAD, struct.pack("=IIQQ", CGROUP_DEVICE_PROG, 2, ctypes.addressof(insns),
                                          ctypes.addressof(lic)))
    if prog < 0:
        return False
    cg = os.path.join(mp, f"pyrt-bpf-probe-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(cg)
    except OSError:
        os.close(prog)
        return False
    try:
        fd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
        try:
            attr = struct.pack("=III", fd, prog, CGROUP_DEVICE_ATTACH)
            if bpf(BPF_PROG_ATTACH, attr) != 0:
                return False
            bpf(BPF_PROG_DETACH, attr)
            return True
        finally:
            os.close(fd)
    finally:
        os.close(prog)
        os.rmdir(cg)


def _journald() -> bool:
    import stat

    try:
        return stat.S_ISSOCK(os.stat("/run/systemd/journal/socket").st_mode)
    except OSError:
        return False


def _crun_cgroups() -> bool:
    """crun's own check: a hybrid hierarchy (cgroup2 at /sys/fs/cgroup/unified beside v1)
    whose cgroup2 mount has a controller is refused."""
    if _cgroup2_mount() == "/sys/fs/cgroup" or not _v1_controllers():
        return True
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as f:
            return not f.read().split()
    except OSError:
        return True


_PROBES = {
    "root": lambda: os.geteuid() == 0,
    "unprivileged": lambda: os.geteuid() != 0,
    "vm-tier": lambda: os.environ.get("PYRT_IN_VM") == "1",
    "device-mapper": lambda: os.path.exists("/dev/mapper/control"),
    "cgroup-v1": lambda: bool(_v1_controllers()),
    "cgroup2": lambda: _cgroup2_mount() is not None,
    "cgroup-device-bpf": _cgroup_device_bpf,
    "pids-controller": _pids_controller,
    "overlayfs": lambda: _filesystem("overlay"),
    "btrfs": lambda: _filesystem("btrfs"),
    "loop-devices": lambda: os.path.exists("/dev/loop-control"),
    "x86_64": lambda: os.uname().machine == "x86_64",
    "user-xattrs": _user_xattrs,
    "tmp-not-btrfs": _tmp_not_btrfs,
    "dynamic-python": _dynamic_python,
    "distribution": _distribution,
    "program": lambda name: __import__("shutil").which(name) is not None,
    "journald": lambda: _journald(),
    "no-journald": lambda: not _journald(),
    "crun-cgroups": lambda: _crun_cgroups(),
}
_cache: dict[tuple[str, str | None], bool] = {}


def has(name: str, arg: str | None = None) -> bool:
    """Whether this machine has the fact ``name`` (``arg``: the distribution's name)."""
    if name not in FACTS:
        raise KeyError(f"unknown machine fact {name!r} (known: {', '.join(sorted(FACTS))})")
    key = (name, arg)
    if key not in _cache:
        probe = _PROBES[name]
        _cache[key] = bool(probe(arg) if arg is not None else probe())
    return _cache[key]


def reason(name: str, arg: str | None = None, detail: str = "") -> str:
    """The skip reason naming the fact (what the hook of this plugin recognises)."""
    label = f"{name}={arg}" if arg else name
    what = (f"the distribution {arg} installed" if name == "distribution" else
            f"the program {arg} on PATH" if name == "program" else FACTS[name])
    return f"{PREFIX}{label}': needs {what}, which this machine lacks" + (f"; {detail}" if detail else "")


def needs(name: str, arg: str | None = None, detail: str = ""):
    """A ``skipif`` marker: skip unless this machine has the fact."""
    return pytest.mark.skipif(not has(name, arg), reason=reason(name, arg, detail))


def skip_unless(name: str, arg: str | None = None, detail: str = "") -> None:
    """Skip the running test (or fixture) unless this machine has the fact."""
    if not has(name, arg):
        try:  # reported at the test's location, not this line's
            exc = pytest.skip.Exception(reason(name, arg, detail), allow_module_level=True,
                                        _use_item_location=True)
        except TypeError:  # a pytest without that keyword
            exc = pytest.skip.Exception(reason(name, arg, detail), allow_module_level=True)
        raise exc


def import_plugin_module(module: str, distribution: str):
    """Import ``module`` of ``distribution``: skip (a machine fact) when that distribution
    is not installed; when it is, a failing import is an error, never a skip."""
    skip_unless("distribution", distribution)
    import importlib

    return importlib.import_module(module)


# -- the plugin: skips in CI ---------------------------------------------------------------------
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _why_not_allowed(text: str) -> str | None:
    """None when a skip with this reason is allowed in CI, else why not."""
    if not text.startswith(PREFIX):
        return ("skipped in CI without naming a machine fact (pyrt_core.testing.machine: "
                "machine.skip_unless / machine.needs)")
    label = text[len(PREFIX):].split("'", 1)[0]
    name, _, arg = label.partition("=")
    if name not in FACTS:
        return f"skipped in CI for an unknown machine fact {name!r}"
    if has(name, arg or None):
        return f"skipped in CI for the machine fact {label!r}, but this machine has it"
    return None


def _skip_text(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(getattr(longrepr, "longrepr", longrepr))
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


def _enforce(report) -> None:
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    text = _skip_text(report.longrepr)
    why = _why_not_allowed(text)
    if why:
        report.outcome = "failed"
        report.longrepr = f"{why}: {text}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _enforce(outcome.get_result())


def pytest_report_header(config):
    if in_ci():
        return "CI: a skip must name a machine fact this machine lacks (pyrt_core.testing.machine)"
    return None
