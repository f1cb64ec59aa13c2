"""cgroup v1 on the host: the limits' *effects*, through the standalone API and
through the runtime (Executor + the namespaces plugin).

Each test makes its own cgroups under /pyrt/test-*, starts its own processes,
and removes / ends them (the no_leaks guard, pyrt_core.testing.leaks, checks).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from pyrt_core.runtime.config import DeviceRule, Resources

from pyrt_core.testing import machine  # noqa: E402

cgapi = machine.import_plugin_module("pyrt_cgroups.api", "pyrt-cgroups")
from pyrt_cgroups import detect  # noqa: E402

Cgroup = cgapi.Cgroup
MiB = 1 << 20
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
HOST = detect.find_hierarchies()

pytestmark = machine.needs("cgroup-v1")


def _name(what: str) -> str:
    return f"test-{what}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cgroups():
    """Cgroups made by the test; removed (with their processes) at the end."""
    made: list = []

    def make(what, resources=None, **kw):
        cg = Cgroup.create(_name(what), resources, **kw)
        made.append(cg)
        return cg

    yield make
    for cg in made:
        cg.remove()


@pytest.fixture
def procs():
    """Processes started by the test; killed (by pid) and reaped at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _cpu_ns(cg) -> int:
    with open(os.path.join(cg.paths["cpuacct"], "cpuacct.usage")) as f:
        return int(f.read())


def _busy(cg, procs):
    p = cg.popen([BUSYBOX, "sh", "-c", "while :; do :; done"])
    procs.append(p)
    return p


# -- memory ---------------------------------------------------------------------------------


def test_memory_hog_is_oom_killed_at_its_limit(cgroups, procs):
    r = Resources(memory_limit=32 * MiB)
    if os.path.exists(os.path.join(HOST.v1["memory"], "memory.memsw.limit_in_bytes")):
        r.memory_swap = 32 * MiB  # no swapping around the limit either
    cg = cgroups("oom", r)
    hog = cg.popen([sys.executable, "-S", "-c",
                    "b = []\nwhile True: b.append(b'x' * (1 << 20))"])
    procs.append(hog)
    rc = hog.wait(timeout=60)
    assert rc == -signal.SIGKILL, rc  # exit status 137 in a shell / pyrt
    assert 128 - rc == 137
    st = cg.stats()["memory"]
    assert cg.oom_killed() and st["oom_kill"] >= 1
    assert 28 * MiB <= st["max_usage"] <= 32 * MiB, st
    print(f"\nOOM: killed by SIGKILL (exit 137), oom_kill={st['oom_kill']}, "
          f"peak {st['max_usage'] / MiB:.1f} MiB of 32 MiB")


# -- cpu ------------------------------------------------------------------------------------


def _quota_held(cg, quota_ns: int, periods: int = 20) -> tuple[float, int]:
    """Wait (by the kernel's count, not the clock) until the cgroup ran ``periods`` more
    CFS periods; return the CPU time it used per period over them, as a fraction of
    its quota, and how many of them were throttled.  A busy machine can only lower the
    first figure: what it may not do is exceed the quota (a per-CPU slice of slack)."""
    def stat():
        with open(os.path.join(cg.paths["cpu"], "cpu.stat")) as f:
            return {k: int(v) for k, v in (line.split() for line in f)}

    s0, u0 = stat(), _cpu_ns(cg)
    deadline = time.monotonic() + 120  # a hang guard only
    while stat()["nr_periods"] < s0["nr_periods"] + periods:
        assert time.monotonic() < deadline, "the cgroup's CFS periods did not advance"
        time.sleep(0.05)
    s1, u1 = stat(), _cpu_ns(cg)
    n = s1["nr_periods"] - s0["nr_periods"]
    return (u1 - u0) / (n * quota_ns), s1["nr_throttled"] - s0["nr_throttled"]


def test_cpu_quota_holds_a_busy_loop_near_half_a_cpu(cgroups, procs):
    cg = cgroups("cpu", Resources(cpu_quota=50000, cpu_period=100000))  # --cpus 0.5
    _busy(cg, procs)
    _busy(cg, procs)  # two loops want two CPUs: throttled however busy the machine is
    used, throttled = _quota_held(cg, 50_000_000)
    print(f"\n--cpus 0.5: the busy loops used {used:.2f} of the quota per period; "
          f"{throttled} periods throttled (bench/cgroup_effects.py measures the share)")
    assert used <= 1.25
    assert throttled > 0 and cg.stats()["cpu"]["nr_throttled"] > 0


def test_cpuset_pins_to_one_cpu(cgroups, procs):
    cpus = sorted(detect.parse_cpu_list(open(os.path.join(HOST.v1["cpuset"], "cpuset.effective_cpus")).read()))
    cg = cgroups("cpuset", Resources(cpuset_cpus=str(cpus[-1])))
    p = cg.popen([BUSYBOX, "sleep", "30"])
    procs.append(p)
    assert os.sched_getaffinity(p.pid) == {cpus[-1]}


# -- pids -----------------------------------------------------------------------------------


def test_pids_limit_stops_a_fork_bomb(cgroups, procs, tmp_path):
    cg = cgroups("pids", Resources(pids_limit=10))
    err = open(tmp_path / "err", "w+")
    script = "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; wait"
    sh = cg.popen([BUSYBOX, "sh", "-c", script], stderr=err)
    procs.append(sh)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and cg.stats()["pids"]["current"] < 10:
        time.sleep(0.05)
    time.sleep(0.3)
    st = cg.stats()["pids"]
    with open(os.path.join(cg.paths["pids"], "pids.events")) as f:
        refused = int(f.read().split()[1])
    assert st["current"] == 10 and st["limit"] == 10
    assert refused > 0
    cg.kill_all()
    sh.wait(timeout=10)
    err.seek(0)
    text = err.read()
    assert "can't fork" in text or "Resource temporarily unavailable" in text, text
    print(f"\n--pids-limit 10: {st['current']} processes, {refused} forks refused")


# -- devices --------------------------------------------------------------------------------


def test_denied_device_cannot_be_opened(cgroups, procs):
    rules = [DeviceRule(False),                         # deny all
             DeviceRule(True, "c", 1, 5, "rwm"),        # /dev/zero
             DeviceRule(True, "c", 1, 3, "r")]          # /dev/null, read only
    cg = cgroups("devices", Resources(devices=rules))
    listing = cg.stats()["devices"]["list"]
    assert sorted(listing) == ["c 1:3 r", "c 1:5 rwm"]

    def run(script):
        p = cg.popen([BUSYBOX, "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     stdin=subprocess.DEVNULL, text=True)
        procs.append(p)
        out, err = p.communicate(timeout=10)
        return p.returncode, out, err

    rc, out, err = run("echo x > /dev/null")
    assert rc != 0 and "Operation not permitted" in err
    rc, out, err = run("head -c 4 /dev/zero | wc -c")
    assert (rc, out.strip()) == (0, "4")
    rc, out, err = run("cat /dev/null && echo read-ok")
    assert rc == 0 and "read-ok" in out
    rc, out, err = run("cat /dev/full")
    assert rc != 0 and "Operation not permitted" in err
    # the same command outside the cgroup works: the effect is the cgroup's
    assert subprocess.run([BUSYBOX, "sh", "-c", "echo x > /dev/null"]).returncode == 0


# -- freezer --------------------------------------------------------------------------------


def test_paused_cgroup_makes_no_progress(cgroups, procs, tmp_path):
    counter = tmp_path / "counter"
    cg = cgroups("freezer")
    p = cg.popen([BUSYBOX, "sh", "-c", f"while :; do printf . >> {counter}; done"])
    procs.append(p)

    def value():  # the counter is the file's size: it never shrinks
        try:
            return os.stat(counter).st_size
        except FileNotFoundError:
            return 0

    time.sleep(0.3)
    assert value() > 0
    cg.freeze()
    assert cg.state == "FROZEN"
    a, ua = value(), _cpu_ns(cg)
    time.sleep(1.0)
    b, ub = value(), _cpu_ns(cg)
    assert a == b and ua == ub
    cg.thaw()
    assert cg.state == "THAWED"
    deadline = time.monotonic() + 30  # progress again, however long a busy machine takes
    while value() == b and time.monotonic() < deadline:
        time.sleep(0.05)
    assert value() > b


# -- block I/O ------------------------------------------------------------------------------


@pytest.fixture
def loop_device(tmp_path):
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(64 * MiB)
    machine.skip_unless("loop-devices")
    r = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot attach a loop device: {r.stderr.strip()}"
    dev = r.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def test_device_write_bps_slows_direct_writes(cgroups, procs, loop_device):
    st = os.stat(loop_device)
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    cg = cgroups("blkio", Resources(blkio_throttle={"throttleWriteBpsDevice": [(major, minor, MiB)]}))
    t0 = time.monotonic()
    dd = cg.popen(["dd", "if=/dev/zero", f"of={loop_device}", "bs=64k", "count=64", "oflag=direct"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(dd)
    assert dd.wait(timeout=60) == 0
    elapsed = time.monotonic() - t0
    written = cg.stats()["blkio"]["write_bytes"]
    print(f"\n--device-write-bps 1mb: 4 MiB written in {elapsed:.2f}s "
          f"({4 / elapsed:.2f} MiB/s); blkio counted {written / MiB:.1f} MiB")
    # a rate limit is a minimum duration: a busy machine can only make it longer (the
    # unthrottled write for comparison is in bench/cgroup_effects.py)
    assert elapsed >= 2.8
    assert written >= 4 * MiB


# -- the standalone API on a plain host process ------------------------------------------------


def test_standalone_api_limits_a_plain_host_process(procs):
    before = {h: os.path.isdir(os.path.join(mp, "pyrt")) for h, mp in HOST.v1.items()}
    p = subprocess.Popen([BUSYBOX, "sh", "-c", "while :; do :; done"])  # started outside any limit
    procs.append(p)
    cg = Cgroup.create(_name("api"), Resources(cpu_quota=20000, cpu_period=100000, pids_limit=5))
    try:
        cg.add(p.pid)
        assert cg.pids() == [p.pid]
        with open(f"/proc/{p.pid}/cgroup") as f:
            lines = f.read()
        assert f":memory:{cg.path}\n" in lines and f":pids:{cg.path}\n" in lines
        used, throttled = _quota_held(cg, 20_000_000, periods=10)
        assert used <= 1.25 and throttled > 0, (used, throttled)
        cg.update(Resources(cpu_quota=-1))
        assert cg.stats()["cpu"]["quota"] is None
        rec = cg.record()
        again = Cgroup.from_record(rec)
        assert again.pids() == [p.pid]
    finally:
        cg.remove()  # kills what is in it
    assert p.wait(timeout=10) == -signal.SIGKILL
    for h, mp in HOST.v1.items():
        assert not os.path.exists(mp + cg.path)
        if not before[h]:
            assert not os.path.exists(os.path.join(mp, "pyrt"))


def test_remove_kills_only_members(cgroups, procs):
    outsider = subprocess.Popen([BUSYBOX, "sleep", "30"])
    procs.append(outsider)
    cg = cgroups("kill")
    inside = [cg.popen([BUSYBOX, "sleep", "30"]) for _ in range(3)]
    procs.extend(inside)
    cg.kill_all()
    for p in inside:
        assert p.wait(timeout=10) == -signal.SIGKILL
    assert outsider.poll() is None


# -- v2 code on the host's controller-less unified hierarchy ---------------------------------


def test_v2_manager_and_ebpf_device_filter_on_the_unified_hierarchy(procs):
    """The hybrid host's cgroup2 mount has no controllers, but the v2 manager's
    create / add / freeze / kill / remove and the eBPF device filter work there."""
    machine.skip_unless("cgroup2")
    # probed with bare syscalls, not with the plugin's code: where the kernel takes a
    # cgroup device program, the plugin failing to attach one fails this test
    machine.skip_unless("cgroup-device-bpf")
    from pyrt_cgroups.v2 import V2Manager

    view = detect.Hierarchies(unified=HOST.unified)
    m = V2Manager(view, "/" + _name("v2"))
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 5, "rwm"), DeviceRule(True, "c", 1, 3, "r")]
    m.create()
    try:
        m.set(Resources(devices=rules))

        def run(script):
            p = subprocess.Popen([BUSYBOX, "sh", "-c", script], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                 preexec_fn=lambda: m.add(os.getpid()))
            procs.append(p)
            out, err = p.communicate(timeout=10)
            return p.returncode, out, err

        rc, out, err = run("echo x > /dev/null")
        assert rc != 0 and "Operation not permitted" in err
        rc, out, err = run("head -c 3 /dev/zero | wc -c; cat /dev/null && echo ok")
        assert rc == 0 and out.split() == ["3", "ok"]
        # update: a new program replaces the old one
        m.set(Resources(devices=[DeviceRule(True, "a")]))
        rc, out, err = run("echo x > /dev/null && echo ok")
        assert rc == 0 and out.strip() == "ok"
        # freeze and kill through cgroup.freeze / cgroup.kill
        sleeper = subprocess.Popen([BUSYBOX, "sleep", "30"], preexec_fn=lambda: m.add(os.getpid()))
        procs.append(sleeper)
        m.freeze()
        assert m.freezer_state() == "FROZEN"
        m.thaw()
        m.kill_all()
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        m.destroy()
    assert not os.path.exists(m.paths["unified"])


# -- through the runtime ----------------------------------------------------------------------


@pytest.fixture
def executor():
    from pyrt_core.plugins import make_plugin_manager
    from pyrt_core.runtime.executor import Executor

    machine.skip_unless("distribution", "pyrt-namespaces")
    pm = make_plugin_manager()
    names = {r.name for r in pm.records if r.status == "loaded"}
    assert {"namespaces", "cgroups"} <= names, [(r.name, r.status) for r in pm.records]
    return Executor(pm)


def _config(rootfs, tmp_path, args, resources):
    from pyrt_core.containers import defaults
    from pyrt_core.runtime.spec import from_spec

    cid = uuid.uuid4().hex
    spec = {
        "ociVersion": "1.0.2",
        "process": {"args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "root": {"path": rootfs},
        "hostname": "cg",
        "mounts": defaults.default_mounts(),
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "cgroup")],
                  "resources": {"devices": [dict(r) for r in defaults.DEFAULT_DEVICE_RULES], **resources},
                  "devices": [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666}
                              for p, ma, mi in defaults.DEFAULT_DEVICES],
                  "cgroupsPath": f"pyrt-{cid}"},
    }
    return from_spec(spec, cid, str(tmp_path))


def test_container_oom_through_the_executor(executor, busybox_rootfs, tmp_path):
    """pyrt's runtime path: validate -> create (place_process -> apply) -> run -> release."""
    config = _config(busybox_rootfs, tmp_path,
                     ["sh", "-c", "cat /proc/self/cgroup; x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done"],
                     {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}, "pids": {"limit": 20}})
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o644)
    seen = {}

    def started(pid, record):
        seen["record"] = dict(record)
        mem = record["paths"]["memory"]
        seen["limit"] = int(open(os.path.join(mem, "memory.limit_in_bytes")).read())
        seen["pids.max"] = open(os.path.join(record["paths"]["pids"], "pids.max")).read().strip()
        seen["member"] = pid in [int(x) for x in open(os.path.join(mem, "cgroup.procs")).read().split()]
        seen["devices"] = open(os.path.join(record["paths"]["devices"], "devices.list")).read().split("\n")

    try:
        code = executor.run(config, (0, out, out), on_started=started)
    finally:
        os.close(out)
    rec = seen["record"]
    assert rec["manager"] == "cgroupfs-v1" and rec["path"] == f"/pyrt/pyrt-{config.id}"
    assert seen["limit"] == 32 * MiB and seen["pids.max"] == "20" and seen["member"]
    assert "c 1:3 rwm" in seen["devices"] and "a *:* rwm" not in seen["devices"]
    assert code == 137
    # the container saw itself at the root of its cgroup namespace
    text = (tmp_path / "out").read_text()
    assert ":memory:/\n" in text, text
    # released: gone from every hierarchy
    for d in rec["paths"].values():
        assert not os.path.exists(d)
