"""The v1 manager against fake cgroupfs trees: which file gets which value (no root)."""
import os

import pytest

from pyrt_core.testing import machine  # noqa: E402

machine.skip_unless("distribution", "pyrt-cgroups")

from pyrt_cgroups import Cgroup, CgroupError
from pyrt_cgroups.testing import fake_hybrid, fake_v1
from pyrt_cgroups.v1 import device_lines
from pyrt_core.errors import UsageError
from pyrt_core.runtime.config import DeviceRule, Resources

MiB = 1 << 20


@pytest.fixture
def v1(tmp_path):
    mountinfo, fs = fake_hybrid(tmp_path)
    fs.mountinfo = mountinfo
    fs.root = os.path.join(str(tmp_path), "cgroup")
    return fs


def create(fs, resources=None, name="c1", **kw):
    return Cgroup.create(name, resources, mountinfo=fs.mountinfo, fs=fs, **kw)


def test_creates_the_cgroup_in_every_hierarchy(v1):
    cg = create(v1)
    assert cg.manager == "cgroupfs-v1" and cg.path == "/pyrt/c1"
    assert cg.paths == {c: f"{v1.root}/{d}/pyrt/c1" for c, d in (
        ("cpuset", "cpuset"), ("cpu", "cpu,cpuacct"), ("cpuacct", "cpu,cpuacct"),
        ("memory", "memory"), ("devices", "devices"), ("freezer", "freezer"), ("blkio", "blkio"),
        ("pids", "pids"))}
    for d in cg.paths.values():
        assert os.path.isdir(d)
    assert not os.path.exists(f"{v1.root}/unified/pyrt")  # hybrid: controllers live in v1
    assert not os.path.exists(f"{v1.root}/systemd/pyrt")


def test_each_flag_writes_its_file(v1):
    r = Resources(memory_limit=64 * MiB, memory_reservation=32 * MiB, memory_swap=128 * MiB,
                  disable_oom_killer=True, cpu_shares=512, cpu_quota=50000, cpu_period=100000,
                  cpuset_cpus="1-2", cpuset_mems="0", blkio_weight=300,
                  blkio_throttle={"throttleReadBpsDevice": [(7, 0, 1048576)],
                                  "throttleWriteBpsDevice": [(7, 0, 2097152), (8, 16, 4096)],
                                  "throttleReadIOPSDevice": [(7, 0, 100)],
                                  "throttleWriteIOPSDevice": [(7, 0, 50)]},
                  pids_limit=20)
    create(v1, r)
    w = v1.written()
    p = "cgroup/{}/pyrt/c1/{}".format
    assert w[p("memory", "memory.limit_in_bytes")] == str(64 * MiB)
    assert w[p("memory", "memory.memsw.limit_in_bytes")] == str(128 * MiB)
    assert w[p("memory", "memory.soft_limit_in_bytes")] == str(32 * MiB)
    assert w[p("memory", "memory.oom_control")] == "1"
    assert w[p("cpu,cpuacct", "cpu.shares")] == "512"
    assert w[p("cpu,cpuacct", "cpu.cfs_period_us")] == "100000"
    assert w[p("cpu,cpuacct", "cpu.cfs_quota_us")] == "50000"
    assert w[p("cpuset", "cpuset.cpus")] == "1-2"
    assert w[p("cpuset", "cpuset.mems")] == "0"
    assert w[p("blkio", "blkio.bfq.weight")] == "300"
    assert v1.writes_to("blkio.throttle.read_bps_device") == ["7:0 1048576"]
    assert v1.writes_to("blkio.throttle.write_bps_device") == ["7:0 2097152", "8:16 4096"]
    assert v1.writes_to("blkio.throttle.read_iops_device") == ["7:0 100"]
    assert v1.writes_to("blkio.throttle.write_iops_device") == ["7:0 50"]
    assert w[p("pids", "pids.max")] == "20"


def test_unset_fields_write_nothing(v1):
    create(v1, Resources())
    names = {os.path.basename(p) for p, _ in v1.writes}
    assert names <= {"cpuset.cpus", "cpuset.mems"}  # only the cpuset inheritance


def test_cpuset_is_copied_down_before_anything_joins(v1):
    cg = create(v1, Resources(pids_limit=5))
    parent = f"{v1.root}/cpuset/pyrt"
    assert open(f"{parent}/cpuset.cpus").read() == "0-3"
    assert open(f"{parent}/cpuset.mems").read() == "0"
    assert open(f"{cg.paths['cpuset']}/cpuset.cpus").read() == "0-3"
    # the parent is filled before the child
    order = [p for p, _ in v1.writes if p.endswith("cpuset.cpus")]
    assert order == ["cgroup/cpuset/pyrt/cpuset.cpus", "cgroup/cpuset/pyrt/c1/cpuset.cpus"]


def test_memory_swap_write_order(v1):
    """memsw must stay >= limit at every moment: raise memsw first when growing."""
    cg = create(v1, Resources(memory_limit=64 * MiB, memory_swap=128 * MiB))
    seq = [os.path.basename(p) for p, _ in v1.writes if "memory.memsw" in p or "memory.limit" in p]
    # current limit is unlimited, which is >= 128MiB: the limit goes first
    assert seq == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    v1.writes.clear()
    cg.update(Resources(memory_limit=256 * MiB, memory_swap=512 * MiB))
    seq = [os.path.basename(p) for p, _ in v1.writes]
    assert seq == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    v1.writes.clear()
    cg.update(Resources(memory_limit=-1))
    assert v1.written()["cgroup/memory/pyrt/c1/memory.memsw.limit_in_bytes"] == "-1"
    assert v1.written()["cgroup/memory/pyrt/c1/memory.limit_in_bytes"] == "-1"


def test_pids_unlimited(v1):
    create(v1, Resources(pids_limit=-1))
    assert v1.writes_to("pids.max") == ["max"]


def test_devices_deny_all_then_rules_in_order(v1):
    rules = [DeviceRule(False), DeviceRule(True, "c", None, None, "m"),
             DeviceRule(True, "c", 1, 3, "rwm"), DeviceRule(True, "c", 136, None, "rwm"),
             DeviceRule(False, "c", 1, 3, "w")]
    create(v1, Resources(devices=rules))
    writes = [(os.path.basename(p), v) for p, v in v1.writes if "devices." in p]
    assert writes == [("devices.deny", "a"), ("devices.allow", "c *:* m"),
                      ("devices.allow", "c 1:3 rwm"), ("devices.allow", "c 136:* rwm"),
                      ("devices.deny", "c 1:3 w")]


def test_device_lines_special_cases():
    # rules that do not start with a whole deny/allow are laid over deny-all
    assert device_lines([DeviceRule(True, "b", 7, 0, "r")]) == [
        ("devices.deny", "a"), ("devices.allow", "b 7:0 r")]
    # allow-all first: nothing is denied before it
    assert device_lines([DeviceRule(True, "a"), DeviceRule(False, "c", 5, 1, "rwm")]) == [
        ("devices.allow", "a"), ("devices.deny", "c 5:1 rwm")]
    # a partial 'a' rule has no v1 form: written for c and b
    assert device_lines([DeviceRule(False), DeviceRule(True, "a", None, None, "m")]) == [
        ("devices.deny", "a"), ("devices.allow", "c *:* m"), ("devices.allow", "b *:* m")]
    assert device_lines([]) == []


def test_add_moves_the_pid_into_each_hierarchy_once(v1):
    cg = create(v1)
    cg.add(4242)
    procs = [p for p, v in v1.writes if p.endswith("cgroup.procs") and v == "4242"]
    assert len(procs) == 7  # cpu and cpuacct share a directory
    assert cg.pids() == [4242]


def test_freeze_thaw(v1):
    cg = create(v1)
    assert cg.state == "THAWED"
    cg.freeze()
    assert cg.state == "FROZEN" and v1.writes_to("freezer.state") == ["FROZEN"]
    cg.thaw()
    assert cg.state == "THAWED"


def test_freeze_times_out_and_thaws(v1, monkeypatch):
    cg = create(v1)
    real_write = v1.write

    def stuck(path, value):  # the kernel never reaches FROZEN
        real_write(path, "FREEZING" if value == "FROZEN" else value)

    monkeypatch.setattr(v1, "write", stuck)
    with pytest.raises(CgroupError, match="did not become FROZEN"):
        cg.freeze(timeout=0.05)
    assert cg.state == "THAWED"


def test_stats_and_oom(v1):
    cg = create(v1, Resources(memory_limit=32 * MiB, pids_limit=9))
    d = cg.paths["memory"]
    open(f"{d}/memory.usage_in_bytes", "w").write("1048576")
    open(f"{d}/memory.oom_control", "w").write("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    open(f"{d}/memory.limit_in_bytes", "w").write(str(32 * MiB))
    open(f"{cg.paths['cpuacct']}/cpuacct.usage", "w").write("123456789")
    open(f"{cg.paths['cpu']}/cpu.stat", "w").write("nr_periods 10\nnr_throttled 4\nthrottled_time 99\n")
    s = cg.stats()
    assert s["memory"]["usage"] == 1048576 and s["memory"]["limit"] == 32 * MiB
    assert s["memory"]["oom_kill"] == 2 and cg.oom_killed()
    assert s["memory"]["swap_limit"] is None  # unlimited reads as None
    assert s["cpu"]["usage_ns"] == 123456789
    assert (s["cpu"]["nr_periods"], s["cpu"]["nr_throttled"], s["cpu"]["throttled_ns"]) == (10, 4, 99)
    assert s["pids"] == {"current": 0, "limit": 9}
    assert s["freezer"] == {"state": "THAWED"}


def test_record_round_trip_and_remove(v1):
    cg = create(v1, Resources(pids_limit=3))
    rec = cg.record()
    assert rec["manager"] == "cgroupfs-v1" and rec["path"] == "/pyrt/c1"
    assert rec["paths"] == cg.paths
    again = Cgroup.from_record(rec, mountinfo=v1.mountinfo, fs=v1)
    assert again.paths == cg.paths
    again.remove()
    for d in cg.paths.values():
        assert not os.path.exists(d)
    # pyrt's own parent goes with its last child
    for h in ("cpuset", "memory", "pids", "cpu,cpuacct"):
        assert not os.path.exists(f"{v1.root}/{h}/pyrt")
    again.remove()  # twice is fine (crash recovery may repeat it)


def test_parent_kept_while_another_cgroup_uses_it(v1):
    a = create(v1, name="a")
    b = create(v1, name="b")
    a.remove()
    assert os.path.isdir(f"{v1.root}/memory/pyrt") and b.exists()
    b.remove()
    assert not os.path.exists(f"{v1.root}/memory/pyrt")


def test_custom_parent_is_kept_when_it_existed(v1):
    os.mkdir(f"{v1.root}/memory/mine")
    v1.populate(f"{v1.root}/memory/mine")
    cg = create(v1, name="job", parent="/mine")
    assert cg.path == "/mine/job"
    cg.remove()
    assert os.path.isdir(f"{v1.root}/memory/mine")  # not ours: left alone
    assert not os.path.exists(f"{v1.root}/pids/mine")  # made by us: removed


def test_record_outside_cgroup_mounts_is_refused(v1, tmp_path):
    cg = create(v1)
    rec = cg.record()
    rec["paths"]["memory"] = str(tmp_path)
    with pytest.raises(CgroupError, match="not inside a cgroup mount"):
        Cgroup.from_record(rec, mountinfo=v1.mountinfo, fs=v1)
    rec = cg.record()
    rec["paths"]["memory"] = v1.root + "/memory/../../x"
    with pytest.raises(CgroupError, match="not inside a cgroup mount"):
        Cgroup.from_record(rec, mountinfo=v1.mountinfo, fs=v1)
    cg.remove()


def test_existing_cgroup_is_refused(v1):
    cg = create(v1)
    with pytest.raises(CgroupError, match="already exists"):
        create(v1)
    cg.remove()


def test_failure_while_setting_removes_what_was_made(v1):
    # a kernel without pids.max in children
    real_populate = v1.populate

    def populate(path, root=False):
        real_populate(path, root)
        if "/pids/" in path:
            os.unlink(os.path.join(path, "pids.max"))

    v1.populate = populate
    with pytest.raises(CgroupError, match="pids.max"):
        create(v1, Resources(pids_limit=4))
    for h in ("cpuset", "memory", "pids"):
        assert not os.path.exists(f"{v1.root}/{h}/pyrt")


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("r, msg", [
    (Resources(memory_limit=4 * MiB), "minimum allowed is 6MiB"),
    (Resources(memory_reservation=1 * MiB), "minimum allowed is 6MiB"),
    (Resources(memory_limit=64 * MiB, memory_reservation=128 * MiB), "reservation"),
    (Resources(memory_swap=64 * MiB), "needs a memory limit"),
    (Resources(memory_limit=64 * MiB, memory_swap=32 * MiB), "at least the memory limit"),
    (Resources(cpu_shares=1), "cpu shares"),
    (Resources(cpu_period=500), "cpu period"),
    (Resources(cpu_quota=999), "cpu quota"),
    (Resources(cpuset_cpus="0-7"), "requested CPUs are not available - requested 0-7, available: 0-3"),
    (Resources(cpuset_mems="1"), "memory nodes are not available"),
    (Resources(cpuset_cpus="x"), "invalid cpuset"),
    (Resources(blkio_weight=5), "blkio weight"),
    (Resources(devices=[DeviceRule(True, "x")]), "device rule type"),
    (Resources(devices=[DeviceRule(True, "c", 1, 3, "rwx")]), "device rule access"),
])
def test_invalid_values_are_refused_before_anything_is_made(v1, r, msg):
    with pytest.raises(UsageError, match=msg):
        create(v1, r)
    assert v1.writes == [] and not os.path.exists(f"{v1.root}/memory/pyrt")


def test_missing_controller_is_refused(tmp_path):
    mountinfo, fs = fake_v1(tmp_path, controllers=("cpuset", "cpu,cpuacct", "memory"))
    with pytest.raises(UsageError, match="--pids-limit: this host has no pids cgroup controller"):
        Cgroup.create("c", Resources(pids_limit=10), mountinfo=mountinfo, fs=fs)
    with pytest.raises(UsageError, match="no blkio cgroup controller"):
        Cgroup.create("c", Resources(blkio_weight=100), mountinfo=mountinfo, fs=fs)
    assert fs.writes == []


def test_device_rules_without_a_devices_controller_are_refused(tmp_path):
    # as runc: the devices cgroup is a hard requirement when rules deny something
    mountinfo, fs = fake_v1(tmp_path, controllers=("cpuset", "cpu,cpuacct", "memory", "pids"))
    with pytest.raises(UsageError, match="no devices cgroup controller"):
        Cgroup.create("c", Resources(devices=[DeviceRule(False)]), mountinfo=mountinfo, fs=fs)
    assert fs.writes == []
    allow_all = Resources(devices=[DeviceRule(True)])  # --privileged: nothing to enforce
    Cgroup.create("c", allow_all, mountinfo=mountinfo, fs=fs).remove()


def test_swap_without_swap_accounting_is_refused(v1):
    os.unlink(f"{v1.root}/memory/memory.memsw.limit_in_bytes")
    with pytest.raises(UsageError, match="swapaccount"):
        create(v1, Resources(memory_limit=64 * MiB, memory_swap=128 * MiB))
