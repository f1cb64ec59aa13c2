"""The runtime's config types (plain classes, not attrs: see runtime/config.py's docstring):
value equality, immutability and hashing of the frozen ones, evolve, and a lean import."""
from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from pyrt_core.runtime import lifecycle
from pyrt_core.runtime.config import (
    Capabilities, Device, DeviceRule, Hook, Hooks, IdMapping, Mount, Namespace, ProcessConfig,
    Resources, Rlimit, RuntimeConfig, evolve,
)
from pyrt_core.runtime.seccomp_config import SeccompArg, SeccompConfig, SeccompRule

FROZEN = [
    lambda: Mount("/proc", "proc", "proc", 6, 0, "", ("nosuid", "nodev")),
    lambda: Namespace("pid"),
    lambda: IdMapping(0, 1000, 1),
    lambda: Device("/dev/null", "c", 1, 3),
    lambda: Rlimit("RLIMIT_NOFILE", 1024, 1024),
    lambda: Hook("/bin/true", ("true",), ("A=1",), 5),
    lambda: SeccompArg(0, 1, 0, "SCMP_CMP_EQ"),
    lambda: SeccompRule(("mkdir",), "SCMP_ACT_ERRNO", 28, (SeccompArg(0, 1, 0, "SCMP_CMP_EQ"),)),
    lambda: SeccompConfig("SCMP_ACT_ALLOW", None, ("SCMP_ARCH_X86_64",), (),
                          (SeccompRule(("mkdir",), "SCMP_ACT_KILL"),)),
]
MUTABLE = [
    lambda: Capabilities(bounding=frozenset({"CAP_CHOWN"})),
    lambda: ProcessConfig(["sh"], env=["PATH=/bin"], rlimits=[Rlimit("RLIMIT_NOFILE", 1, 2)]),
    lambda: Hooks(poststart=[Hook("/bin/true")]),
    lambda: DeviceRule(False, "a", None, None, "rwm"),
    lambda: Resources(memory_limit=1 << 20, devices=[DeviceRule(False)]),
    lambda: RuntimeConfig("c", "/b", "/b/rootfs", False, ProcessConfig(["sh"]),
                          mounts=[Mount("/proc", "proc", "proc")], hooks=Hooks()),
]


@pytest.mark.parametrize("make", FROZEN + MUTABLE)
def test_equal_by_value_and_repr(make):
    a, b = make(), make()
    assert a is not b and a == b and not a != b
    field = a.__slots__[0]
    other = evolve(a, **{field: "something else"})
    assert other != a and a != other
    assert a != (getattr(a, field),)  # a tuple of the values is not the object
    assert repr(a).startswith(f"{type(a).__name__}({field}={getattr(a, field)!r}, ")
    assert copy.deepcopy(a) == a and pickle.loads(pickle.dumps(a)) == a


@pytest.mark.parametrize("make", FROZEN)
def test_frozen_types_are_immutable_and_hashable(make):
    a = make()
    field = a.__slots__[0]
    with pytest.raises(AttributeError, match="immutable"):
        setattr(a, field, "x")
    with pytest.raises(AttributeError, match="immutable"):
        delattr(a, field)
    with pytest.raises(AttributeError):
        a.not_a_field = 1
    assert hash(a) == hash(make()) and len({a, make()}) == 1
    assert hash(evolve(a, **{field: "x"})) != hash(a)


@pytest.mark.parametrize("make", MUTABLE)
def test_define_types_are_mutable_and_unhashable(make):
    a = make()
    field = a.__slots__[-1]
    setattr(a, field, "changed")
    assert getattr(a, field) == "changed" and a != make()
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(AttributeError):
        a.not_a_field = 1  # __slots__: no typo'd fields


def test_same_values_different_types_are_not_equal():
    assert IdMapping(0, 0, 1) != Rlimit(0, 0, 1)
    assert DeviceRule(True, "c", 1, 3) != Device("/dev/null", "c", 1, 3)
    assert Capabilities() != Hooks()


def test_init_signatures_and_fresh_defaults():
    # positional order and defaults as the attrs classes had them
    d = Device("/dev/x", "b", 8, 1)
    assert (d.file_mode, d.uid, d.gid) == (0o666, 0, 0)
    m = Mount("/d", "bind", "/s")
    assert (m.flags, m.propagation, m.data, m.options, m.is_bind) == (0, 0, "", (), False)
    assert Namespace("net").path is None
    assert DeviceRule(True) == DeviceRule(True, "a", None, None, "rwm")
    p1, p2 = ProcessConfig(["a"]), ProcessConfig(["a"])
    p1.env.append("X=1")
    p1.rlimits.append(Rlimit("RLIMIT_CORE", 0, 0))
    assert p2.env == [] and p2.rlimits == [] and p2.cwd == "/" and p2.umask is None
    c1 = RuntimeConfig("c", "/b", "/r", False, p1)
    c2 = RuntimeConfig("c", "/b", "/r", False, p1)
    c1.mounts.append(m)
    c1.hooks.poststop.append(Hook("/x"))
    c1.resources.devices.append(DeviceRule(False))
    c1.sysctl["a"] = "b"
    assert c2.mounts == [] and c2.hooks == Hooks() and c2.resources == Resources()
    assert c2.sysctl == {} and c2.resources.devices == []
    with pytest.raises(TypeError):
        Mount("/d", "bind")  # source is required
    with pytest.raises(TypeError):
        Hook("/x", bogus=1)


def test_evolve():
    cfg = RuntimeConfig("c", "/b", "/r", False, ProcessConfig(["sh"]), hostname="h")
    new = evolve(cfg, hostname="other", no_pivot=True)
    assert (new.hostname, new.no_pivot, cfg.hostname, cfg.no_pivot) == ("other", True, "h", False)
    assert new.process is cfg.process and evolve(cfg) == cfg and evolve(cfg) is not cfg
    hook = Hook("/bin/true", ("true",))
    assert evolve(hook, timeout=3) == Hook("/bin/true", ("true",), (), 3)
    with pytest.raises(TypeError, match="no field nosuch"):
        evolve(hook, nosuch=1)


def test_resources_is_empty():
    assert Resources().is_empty()
    assert Resources(devices=[DeviceRule(False)]).is_empty()
    assert not Resources(pids_limit=10).is_empty()
    assert not Resources(memory_swappiness=0).is_empty()
    assert not Resources(blkio_throttle={"throttleReadBpsDevice": [(8, 0, 1)]}).is_empty()


def test_hooks_record_is_json_ready():
    cfg = RuntimeConfig("c", "/b", "/r", False, ProcessConfig(["sh"]), hooks=Hooks(
        prestart=[Hook("/p")], poststop=[Hook("/bin/x", ("x", "-v"), ("A=1",), 2)]))
    assert lifecycle._hooks_record(cfg) == {
        "poststop": [{"path": "/bin/x", "args": ["x", "-v"], "env": ["A=1"], "timeout": 2}]}


def test_import_loads_no_heavy_module():
    """The runtime imports these on every create: no attrs (~30 ms here) nor what it
    pulls in."""
    heavy = ("attr", "attrs", "typing", "re", "enum", "inspect", "json", "dataclasses",
             "hashlib", "pluggy")
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "import pyrt_core.runtime.config, pyrt_core.runtime.seccomp_config\n"
            "import pyrt_core.runtime.spec, pyrt_core.runtime.spec_seccomp\n"
            f"print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {heavy!r}),"
            f" sorted(m for m in before if m.split('.')[0] in {heavy!r}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.stdout.strip() == "[] []", r.stdout + r.stderr


def test_types_import_no_conversion():
    """The types (config, seccomp_config) stand alone: the spec conversion (spec,
    spec_mounts, spec_seccomp) imports them, never the other way round (no cycle)."""
    code = ("import sys\n"
            "import pyrt_core.runtime.config, pyrt_core.runtime.seccomp_config\n"
            "print(sorted(m for m in sys.modules if m.startswith('pyrt_core.runtime.spec')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def _spec_with(linux_extra: dict, namespaces=("pid", "mount", "time")) -> dict:
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["true"], "cwd": "/"},
            "linux": {"namespaces": [{"type": t} for t in namespaces], **linux_extra}}


def test_time_offsets_from_spec():
    from pyrt_core.runtime.spec import from_spec

    cfg = from_spec(_spec_with({"timeOffsets": {"monotonic": {"secs": -5, "nanosecs": 7},
                                                "boottime": {"secs": 3600}}}), "c", "/b")
    assert cfg.time_offsets == {"monotonic": (-5, 7), "boottime": (3600, 0)}
    assert from_spec(_spec_with({}), "c", "/b").time_offsets == {}


@pytest.mark.parametrize("offsets,namespaces,why", [
    ({"realtime": {"secs": 1}}, ("time",), "the clocks are monotonic and boottime"),
    ({"boottime": {"secs": "1"}}, ("time",), "secs must be an integer"),
    ({"boottime": {"secs": 1, "nanosecs": 10**9}}, ("time",), "nanosecs one from 0"),
    ({"boottime": {"sec": 1}}, ("time",), "an object with secs and nanosecs"),
    ({"boottime": {"secs": 1}}, ("pid",), "needs a new time namespace"),
    ([], ("time",), "must be an object"),
])
def test_time_offsets_bad_input(offsets, namespaces, why):
    from pyrt_core.errors import UsageError
    from pyrt_core.runtime.spec import from_spec

    with pytest.raises(UsageError, match=why):
        from_spec(_spec_with({"timeOffsets": offsets}, namespaces), "c", "/b")
