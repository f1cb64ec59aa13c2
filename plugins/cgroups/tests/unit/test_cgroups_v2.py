"""The v2 manager against a fake unified tree: conversions and files (no root)."""
import os

import pytest

from pyrt_core.testing import machine  # noqa: E402

machine.skip_unless("distribution", "pyrt-cgroups")

from pyrt_cgroups import Cgroup, CgroupError, ebpf, v2
from pyrt_cgroups.testing import fake_v2
from pyrt_core.errors import UsageError
from pyrt_core.runtime.config import DeviceRule, Resources

MiB = 1 << 20


@pytest.fixture
def tree(tmp_path, monkeypatch):
    mountinfo, fs = fake_v2(tmp_path)
    fs.mountinfo = mountinfo
    fs.root = os.path.join(str(tmp_path), "cgroup")
    fs.attached = []
    monkeypatch.setattr(ebpf, "attach", lambda d, rules: fs.attached.append((d, list(rules))))
    return fs


def create(fs, resources=None, name="c1", **kw):
    return Cgroup.create(name, resources, mountinfo=fs.mountinfo, fs=fs, **kw)


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000), (512, 20)])
def test_shares_to_weight(shares, weight):
    assert v2.shares_to_weight(shares) == weight


@pytest.mark.parametrize("blkio, io", [(10, 1), (500, 4950), (1000, 10000), (100, 910)])
def test_blkio_to_io_weight(blkio, io):
    assert v2.blkio_to_io_weight(blkio) == io


@pytest.mark.parametrize("mem, total, want", [
    (64 * MiB, 128 * MiB, 64 * MiB), (64 * MiB, 64 * MiB, 0), (64 * MiB, -1, -1),
    (64 * MiB, None, None), (None, -1, -1)])
def test_swap_is_total_minus_memory(mem, total, want):
    assert v2.swap_max(mem, total) == want


def test_io_max_lines_group_by_device():
    lines = v2.io_max_lines({"throttleReadBpsDevice": [(8, 0, 1048576)],
                             "throttleWriteBpsDevice": [(8, 0, 2097152), (7, 1, 10)],
                             "throttleWriteIOPSDevice": [(8, 0, 0)]})
    assert lines == ["8:0 rbps=1048576 wbps=2097152 wiops=max", "7:1 wbps=10"]


def test_controllers_enabled_on_the_way_down(tree):
    cg = create(tree)
    assert cg.manager == "cgroupfs-v2" and cg.paths == {"unified": f"{tree.root}/pyrt/c1"}
    sc = [(p, v) for p, v in tree.writes if p.endswith("subtree_control")]
    assert sc == [("cgroup/cgroup.subtree_control", "+cpuset +cpu +io +memory +pids"),
                  ("cgroup/pyrt/cgroup.subtree_control", "+cpuset +cpu +io +memory +pids")]
    assert open(f"{tree.root}/pyrt/c1/cgroup.controllers").read().split() == \
        ["cpu", "cpuset", "io", "memory", "pids"]


def test_each_flag_writes_its_file(tree):
    r = Resources(memory_limit=64 * MiB, memory_reservation=32 * MiB, memory_swap=96 * MiB,
                  cpu_shares=1024, cpu_quota=50000, cpu_period=100000, cpuset_cpus="0-1",
                  cpuset_mems="0", blkio_weight=500,
                  blkio_throttle={"throttleWriteBpsDevice": [(7, 0, 1048576)],
                                  "throttleReadIOPSDevice": [(7, 0, 100)]},
                  pids_limit=50)
    create(tree, r)
    w = {os.path.basename(p): v for p, v in tree.writes if "/c1/" in p}
    assert w["memory.max"] == str(64 * MiB)
    assert w["memory.low"] == str(32 * MiB)
    assert w["memory.swap.max"] == str(32 * MiB)
    assert w["cpu.weight"] == "39"
    assert w["cpu.max"] == "50000 100000"
    assert w["cpuset.cpus"] == "0-1" and w["cpuset.mems"] == "0"
    assert w["io.weight"] == "default 4950"
    assert tree.writes_to("io.max") == ["7:0 wbps=1048576 riops=100"]
    assert w["pids.max"] == "50"


def test_quota_alone_and_unlimited(tree):
    cg = create(tree, Resources(cpu_quota=-1, cpu_period=200000, memory_limit=-1))
    w = {os.path.basename(p): v for p, v in tree.writes if "/c1/" in p}
    assert w["cpu.max"] == "max 200000"
    assert w["memory.max"] == "max" and w["memory.swap.max"] == "max"
    cg.update(Resources(cpu_quota=25000))
    assert tree.writes_to("cpu.max")[-1] == "25000"


def test_bfq_weight_preferred(tree):
    real = tree.populate

    def populate(path, root=False):
        real(path, root)
        if not root and path.endswith("c1"):
            open(os.path.join(path, "io.bfq.weight"), "w").write("default 100")

    tree.populate = populate
    create(tree, Resources(blkio_weight=300))
    assert tree.writes_to("io.bfq.weight") == ["300"] and tree.writes_to("io.weight") == []


def test_devices_go_to_the_ebpf_filter(tree):
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rwm")]
    cg = create(tree, Resources(devices=rules))
    assert tree.attached == [(cg.paths["unified"], rules)]
    assert not any("devices." in p for p, _ in tree.writes)


def test_freeze_uses_cgroup_freeze_and_events(tree):
    cg = create(tree)
    cg.freeze()
    assert tree.writes_to("cgroup.freeze") == ["1"] and cg.state == "FROZEN"
    cg.thaw()
    assert cg.state == "THAWED"


def test_oom_from_memory_events_and_stats(tree):
    cg = create(tree, Resources(memory_limit=32 * MiB))
    d = cg.paths["unified"]
    open(f"{d}/memory.events", "w").write("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    open(f"{d}/cpu.stat", "w").write("usage_usec 2000\nuser_usec 1500\nsystem_usec 500\n"
                                     "nr_periods 7\nnr_throttled 3\nthrottled_usec 10\n")
    open(f"{d}/io.stat", "w").write("7:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
    open(f"{d}/memory.current", "w").write("4096")
    s = cg.stats()
    assert cg.oom_killed() and s["memory"]["oom_kill"] == 1
    assert s["memory"]["usage"] == 4096 and s["memory"]["limit"] == 32 * MiB
    assert s["cpu"]["usage_ns"] == 2_000_000 and s["cpu"]["nr_throttled"] == 3
    assert s["cpu"]["quota"] is None and s["cpu"]["period"] == 100000
    assert s["blkio"] == {"read_bytes": 4096, "write_bytes": 8192, "read_ios": 1, "write_ios": 2}
    assert s["pids"] == {"current": 0, "limit": None}


def test_remove_takes_the_pyrt_parent(tree):
    cg = create(tree)
    cg.remove()
    assert not os.path.exists(f"{tree.root}/pyrt")
    assert os.path.isdir(tree.root)


def test_oom_kill_disable_refused_on_v2(tree):
    with pytest.raises(UsageError, match="not available with cgroup v2"):
        create(tree, Resources(memory_limit=64 * MiB, disable_oom_killer=True))
    assert tree.writes == []


def test_missing_v2_controller_is_refused(tmp_path):
    mountinfo, fs = fake_v2(tmp_path, controllers=("cpu", "memory"))
    with pytest.raises(UsageError, match="io controller is not available"):
        Cgroup.create("c", Resources(blkio_weight=100), mountinfo=mountinfo, fs=fs)
    with pytest.raises(UsageError, match="pids controller"):
        Cgroup.create("c", Resources(pids_limit=5), mountinfo=mountinfo, fs=fs)


def test_cpuset_beyond_host_is_refused(tree):
    with pytest.raises(UsageError, match="requested CPUs are not available - requested 4, available: 0-3"):
        create(tree, Resources(cpuset_cpus="4"))


def test_controller_not_delegated_is_an_error(tree):
    """A parent that cannot enable a controller (e.g. it holds processes)."""
    real = tree.write

    def write(path, value):
        if path.endswith("cgroup.subtree_control") and "pids" in value:
            raise CgroupError(f"cannot write {value!r} to {path}: Device or resource busy")
        real(path, value)

    tree.write = write
    with pytest.raises(CgroupError, match="pids controller is not enabled"):
        create(tree, Resources(pids_limit=5))
    assert not os.path.exists(f"{tree.root}/pyrt")
