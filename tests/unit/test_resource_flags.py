"""Docker-compatible resource flags -> OCI linux.resources (no root)."""
import argparse
import os
import stat

import pytest

from pyrt_core.cli import resource_flags as rf
from pyrt_core.containers.defaults import DEFAULT_DEVICE_RULES
from pyrt_core.errors import UsageError
from pyrt_core.containers import spec
from pyrt_core.runtime.spec import resources_from_spec

MiB = 1 << 20


class FakeStat:
    def __init__(self, mode, major, minor, uid=0, gid=6):
        self.st_mode, self.st_rdev = mode, os.makedev(major, minor)
        self.st_uid, self.st_gid = uid, gid


DEVICES = {
    "/dev/loop3": FakeStat(stat.S_IFBLK | 0o660, 7, 3),
    "/dev/sdb": FakeStat(stat.S_IFBLK | 0o660, 8, 16),
    "/dev/ttyUSB0": FakeStat(stat.S_IFCHR | 0o620, 188, 0, 0, 20),
    "/dev/null": FakeStat(stat.S_IFCHR | 0o666, 1, 3),
    "/dev/notadev": FakeStat(stat.S_IFREG | 0o644, 0, 0),
}


@pytest.fixture(autouse=True)
def fake_devices(monkeypatch):
    def fake_stat(path):
        if path not in DEVICES:
            raise FileNotFoundError(2, "No such file or directory", path)
        return DEVICES[path]

    monkeypatch.setattr(rf, "_stat", fake_stat)
    monkeypatch.setattr(rf, "host_cpu_count", lambda: 2)


def parse(*argv):
    p = argparse.ArgumentParser()
    rf.add_resource_flags(p)
    return rf.resources_from_args(p.parse_args(list(argv)))


def test_nothing_given():
    out = parse()
    assert (out.resources, out.devices, out.cgroup_parent) == ({}, [], None)


@pytest.mark.parametrize("text, n", [
    ("1024", 1024), ("10k", 10240), ("512m", 512 * MiB), ("1g", 1 << 30), ("2GB", 2 << 30),
    ("4MiB", 4 * MiB), ("1.5g", 3 << 29), ("7b", 7), ("64M", 64 * MiB), ("1 kb", 1024)])
def test_sizes(text, n):
    assert rf.parse_size(text) == n


@pytest.mark.parametrize("bad", ["10x", "", "m", "-1", "1.2.3g", "1e6", "12 mbb"])
def test_bad_sizes(bad):
    with pytest.raises(UsageError, match="invalid size: " + repr(bad).replace(".", r"\.")):
        rf.parse_size(bad)


def test_memory_10x_is_refused():
    with pytest.raises(UsageError, match="invalid size: '10x'"):
        parse("--memory", "10x")


def test_memory_flags():
    out = parse("-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--oom-kill-disable")
    assert out.resources == {"memory": {"limit": 64 * MiB, "swap": 128 * MiB,
                                        "reservation": 32 * MiB, "disableOOMKiller": True}}
    assert parse("-m", "64m", "--memory-swap", "-1").resources["memory"]["swap"] == -1


@pytest.mark.parametrize("argv, msg", [
    (["-m", "4m"], "minimum memory limit allowed is 6MiB"),
    (["--memory-swap", "128m"], "--memory-swap needs --memory"),
    (["-m", "64m", "--memory-swap", "32m"], "at least --memory"),
    (["-m", "64m", "--memory-reservation", "128m"], "must not be less than --memory-reservation"),
    (["--memory-reservation", "1m"], "minimum allowed is 6MiB"),
])
def test_memory_errors(argv, msg):
    with pytest.raises(UsageError, match=msg):
        parse(*argv)


def test_cpus():
    assert parse("--cpus", "0.5").resources == {"cpu": {"quota": 50000, "period": 100000}}
    assert parse("--cpus", "1.5").resources == {"cpu": {"quota": 150000, "period": 100000}}
    assert parse("--cpus", "0").resources == {}


@pytest.mark.parametrize("argv, msg", [
    (["--cpus", "-1"], "range of CPUs is from 0.01 to 2.00"),
    (["--cpus", "3"], "only 2 CPUs"),
    (["--cpus", "abc"], "not a number"),
    (["--cpus", "1/2"], "not a number"),
    (["--cpus", "nan"], "not a number"),
    (["--cpus", "0.001"], "minimum is 0.01"),
    (["--cpus", "1", "--cpu-quota", "50000"], "conflicting options"),
    (["--cpus", "1", "--cpu-period", "50000"], "conflicting options"),
    (["--cpu-quota", "500"], "at least 1000"),
    (["--cpu-quota", "-2"], "--cpu-quota"),
    (["--cpu-period", "999"], "1000 to 1000000"),
    (["--cpu-shares", "1"], "2 to 262144"),
    (["--cpu-shares", "x"], "not an integer"),
    (["--cpuset-cpus", "0-"], "--cpuset-cpus"),
    (["--cpuset-mems", "3-1"], "--cpuset-mems"),
])
def test_cpu_errors(argv, msg):
    with pytest.raises(UsageError, match=msg):
        parse(*argv)


def test_cpu_flags():
    out = parse("-c", "512", "--cpu-period", "50000", "--cpu-quota", "25000",
                "--cpuset-cpus", "0-1", "--cpuset-mems", "0")
    assert out.resources == {"cpu": {"shares": 512, "period": 50000, "quota": 25000,
                                     "cpus": "0-1", "mems": "0"}}
    assert parse("--cpu-quota", "-1").resources == {"cpu": {"quota": -1}}


def test_block_io():
    out = parse("--blkio-weight", "300", "--device-read-bps", "/dev/loop3:1mb",
                "--device-write-bps", "/dev/loop3:2m", "--device-write-bps", "/dev/sdb:512k",
                "--device-read-iops", "/dev/loop3:100", "--device-write-iops", "/dev/sdb:50")
    assert out.resources == {"blockIO": {
        "weight": 300,
        "throttleReadBpsDevice": [{"major": 7, "minor": 3, "rate": MiB}],
        "throttleWriteBpsDevice": [{"major": 7, "minor": 3, "rate": 2 * MiB},
                                   {"major": 8, "minor": 16, "rate": 512 * 1024}],
        "throttleReadIOPSDevice": [{"major": 7, "minor": 3, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 50}]}}


@pytest.mark.parametrize("argv, msg", [
    (["--blkio-weight", "5"], "10 to 1000"),
    (["--device-read-bps", "/dev/loop3"], "expected PATH:RATE"),
    (["--device-read-bps", "loop3:1m"], "bad format for device path"),
    (["--device-read-bps", "/dev/loop3:1x"], "invalid size"),
    (["--device-read-iops", "/dev/loop3:1m"], "not an integer"),
    (["--device-write-bps", "/dev/ttyUSB0:1m"], "not a block device"),
    (["--device-write-bps", "/dev/nope:1m"], "No such file"),
])
def test_block_io_errors(argv, msg):
    with pytest.raises(UsageError, match=msg):
        parse(*argv)


def test_pids_limit():
    assert parse("--pids-limit", "100").resources == {"pids": {"limit": 100}}
    assert parse("--pids-limit", "-1").resources == {"pids": {"limit": -1}}
    assert parse("--pids-limit", "0").resources == {"pids": {"limit": -1}}
    with pytest.raises(UsageError, match="--pids-limit"):
        parse("--pids-limit", "many")


def test_device():
    out = parse("--device", "/dev/ttyUSB0", "--device", "/dev/loop3:/dev/xvda:r",
                "--device", "/dev/sdb:rw")
    assert out.devices == [
        {"path": "/dev/ttyUSB0", "type": "c", "major": 188, "minor": 0, "fileMode": 0o620,
         "uid": 0, "gid": 20},
        {"path": "/dev/xvda", "type": "b", "major": 7, "minor": 3, "fileMode": 0o660, "uid": 0, "gid": 6},
        {"path": "/dev/sdb", "type": "b", "major": 8, "minor": 16, "fileMode": 0o660, "uid": 0, "gid": 6},
    ]
    assert out.resources["devices"] == [
        {"allow": True, "type": "c", "major": 188, "minor": 0, "access": "rwm"},
        {"allow": True, "type": "b", "major": 7, "minor": 3, "access": "r"},
        {"allow": True, "type": "b", "major": 8, "minor": 16, "access": "rw"},
    ]


@pytest.mark.parametrize("bad, msg", [
    ("/dev/loop3:/x:rwx", "permissions"), ("/dev/notadev", "not a device node"),
    ("/dev/nope", "No such file"), ("dev/null", "absolute"), ("/a:/b:r:x", "expected HOST"),
    ("/dev/null:rel", "absolute")])
def test_device_errors(bad, msg):
    with pytest.raises(UsageError, match=msg):
        parse("--device", bad)


def test_cgroup_parent():
    assert parse("--cgroup-parent", "/tenants/a/").cgroup_parent == "/tenants/a"
    assert parse("--cgroup-parent", "tenants").cgroup_parent == "/tenants"
    for bad in ("/", "../x", "a.slice:b:c"):
        with pytest.raises(UsageError, match="--cgroup-parent"):
            parse("--cgroup-parent", bad)
    assert spec.cgroups_path("abc") == "pyrt-abc"
    assert spec.cgroups_path("abc", "/tenants/a") == "/tenants/a/pyrt-abc"


def test_merge_resources_appends_device_rules_and_nodes():
    linux = {"resources": {"devices": [dict(r) for r in DEFAULT_DEVICE_RULES]},
             "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}],
             "cgroupsPath": "pyrt-abc"}
    out = parse("-m", "64m", "--pids-limit", "10", "--device", "/dev/loop3:/dev/null:r",
                "--cgroup-parent", "/t")
    spec.merge_resources(linux, out.resources, out.devices)
    linux["cgroupsPath"] = spec.cgroups_path("abc", out.cgroup_parent)
    assert linux["resources"]["memory"] == {"limit": 64 * MiB}
    assert linux["resources"]["pids"] == {"limit": 10}
    assert linux["resources"]["devices"][:len(DEFAULT_DEVICE_RULES)] == list(DEFAULT_DEVICE_RULES)
    assert linux["resources"]["devices"][-1] == {"allow": True, "type": "b", "major": 7, "minor": 3,
                                                 "access": "r"}
    assert linux["devices"] == [{"path": "/dev/null", "type": "b", "major": 7, "minor": 3,
                                 "fileMode": 0o660, "uid": 0, "gid": 6}]
    assert linux["cgroupsPath"] == "/t/pyrt-abc"
    # and the core reads the result back into Resources
    r = resources_from_spec(linux["resources"])
    assert r.memory_limit == 64 * MiB and r.pids_limit == 10 and r.devices[-1].major == 7


def test_flags_reach_the_runtime_config():
    out = parse("--cpus", "0.5", "--device-write-bps", "/dev/loop3:1mb", "--memory-swap", "-1",
                "-m", "32m")
    r = resources_from_spec(out.resources)
    assert (r.cpu_quota, r.cpu_period) == (50000, 100000)
    assert r.blkio_throttle == {"throttleWriteBpsDevice": [(7, 3, MiB)]}
    assert (r.memory_limit, r.memory_swap) == (32 * MiB, -1)


def test_flags_are_plain_strings_so_errors_are_ours():
    p = argparse.ArgumentParser()
    rf.add_resource_flags(p)
    a = p.parse_args(["--cpus", "-1", "--memory-swap", "-1", "--cpu-quota", "-1"])
    assert (a.cpus, a.memory_swap, a.cpu_quota) == ("-1", "-1", "-1")
