"""cgroup v2 in the VM: the limits' *effects*, mirroring privileged/test_cgroups_host.py
(v1 on the host) through the pyrt-cgroups plugin on a pure cgroup2 hierarchy.

The standalone API (``pyrt_cgroups.api.Cgroup``) for each controller, then
``pyrt run`` end to end (namespaces plugin, overlay driver, cgroups plugin).
Code runs 10-30x slower under TCG: few tests, generous time windows.
Each test makes its own cgroups under /pyrt/test-* and removes them; the
no_leaks guard checks.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest

from pyrt_core.runtime.config import DeviceRule, Resources

pytestmark = pytest.mark.vm

MiB = 1 << 20
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
HOG = "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done"  # doubles a shell string until killed
BUSY = "while :; do :; done"


@pytest.fixture(scope="module", autouse=True)
def _pure_v2():
    from pyrt_cgroups import detect

    host = detect.find_hierarchies()
    if host.mode != "v2":
        pytest.fail(f"the VM should have a pure cgroup v2 hierarchy, found {host.mode}")


def _name(what: str) -> str:
    return f"test-{what}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cgroups():
    """Cgroups made by the test (standalone API); removed with their processes at the end."""
    from pyrt_cgroups.api import Cgroup

    made: list = []

    def make(what, resources=None):
        cg = Cgroup.create(_name(what), resources)
        assert cg.manager == "cgroupfs-v2"
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
        p.wait(timeout=30)


def _read(cg, name: str) -> str:
    with open(os.path.join(cg.paths["unified"], name)) as f:
        return f.read()


def _kv(cg, name: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in _read(cg, name).splitlines())}


def _usage_usec(cg) -> int:
    return _kv(cg, "cpu.stat")["usage_usec"]


# -- memory ---------------------------------------------------------------------------------


def test_memory_hog_is_oom_killed_at_its_limit(cgroups, procs):
    cg = cgroups("oom", Resources(memory_limit=32 * MiB, memory_swap=32 * MiB))  # no swap either
    assert _read(cg, "memory.max").strip() == str(32 * MiB)
    assert _read(cg, "memory.swap.max").strip() == "0"
    hog = cg.popen([BUSYBOX, "sh", "-c", HOG])
    procs.append(hog)
    rc = hog.wait(timeout=120)
    assert rc == -signal.SIGKILL, rc  # exit status 137 in a shell / pyrt
    events = _kv(cg, "memory.events")
    st = cg.stats()["memory"]
    assert events["oom_kill"] >= 1 and cg.oom_killed() and st["oom_kill"] == events["oom_kill"]
    assert 24 * MiB <= st["max_usage"] <= 32 * MiB, st
    print(f"\nOOM: killed by SIGKILL (exit 137), memory.events oom_kill={events['oom_kill']}, "
          f"memory.peak {st['max_usage'] / MiB:.1f} MiB of 32 MiB")


# -- cpu ------------------------------------------------------------------------------------


def test_cpu_max_holds_a_busy_loop_near_half_a_cpu(cgroups, procs):
    cg = cgroups("cpu", Resources(cpu_quota=50000, cpu_period=100000))  # --cpus 0.5
    assert _read(cg, "cpu.max").split() == ["50000", "100000"]
    procs.append(cg.popen([BUSYBOX, "sh", "-c", BUSY]))
    procs.append(cg.popen([BUSYBOX, "sh", "-c", BUSY]))  # two CPUs wanted: throttled for sure
    # by the kernel's count of periods, not the clock (emulation and load only lower the
    # CPU time per period; exceeding the quota is what must not happen)
    k0 = _kv(cg, "cpu.stat")
    deadline = time.monotonic() + 300  # a hang guard only
    while _kv(cg, "cpu.stat")["nr_periods"] < k0["nr_periods"] + 20:
        assert time.monotonic() < deadline, "the cgroup's CFS periods did not advance"
        time.sleep(0.1)
    k1 = _kv(cg, "cpu.stat")
    periods = k1["nr_periods"] - k0["nr_periods"]
    used = (k1["usage_usec"] - k0["usage_usec"]) / (periods * 50000)
    st = cg.stats()["cpu"]
    print(f"\ncpu.max 50000 100000: the busy loops used {used:.2f} of the quota per period "
          f"(throttled {k1['nr_throttled'] - k0['nr_throttled']}/{periods} periods)")
    assert used <= 1.25, used
    assert k1["nr_throttled"] > k0["nr_throttled"]
    assert st["nr_throttled"] > 0 and st["quota"] == 50000 and st["period"] == 100000
    cg.update(Resources(cpu_quota=-1))  # lifted in place
    assert _read(cg, "cpu.max").split() == ["max", "100000"]


def test_cpuset_pins_to_one_cpu(cgroups, procs):
    from pyrt_cgroups import detect

    with open("/sys/fs/cgroup/cpuset.cpus.effective") as f:
        cpus = sorted(detect.parse_cpu_list(f.read()))
    cg = cgroups("cpuset", Resources(cpuset_cpus=str(cpus[-1])))
    p = cg.popen([BUSYBOX, "sleep", "60"])
    procs.append(p)
    assert os.sched_getaffinity(p.pid) == {cpus[-1]}
    assert _read(cg, "cpuset.cpus.effective").strip() == str(cpus[-1])


# -- pids -----------------------------------------------------------------------------------


def test_pids_max_stops_forks(cgroups, procs, tmp_path):
    cg = cgroups("pids", Resources(pids_limit=10))
    err = open(tmp_path / "err", "w+")
    script = "i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i+1)); done; wait"
    sh = cg.popen([BUSYBOX, "sh", "-c", script], stderr=err)
    procs.append(sh)

    def refused_text():
        err.seek(0)
        text = err.read()
        return text if ("can't fork" in text or "Resource temporarily unavailable" in text) else ""

    deadline = time.monotonic() + 60  # the shell reports the refused fork a moment after it
    while time.monotonic() < deadline and not refused_text():
        time.sleep(0.1)
    text = refused_text()
    members = cg.pids()
    sleepers = [p for p in members if p != sh.pid]
    st = cg.stats()["pids"]
    refused = _kv(cg, "pids.events")["max"]
    cg.kill_all()
    sh.wait(timeout=30)
    err.close()
    assert text, "the shell never reported a refused fork"
    # the shell and 9 sleeps made 10: the 10th sleep was refused (the shell may
    # have exited on the error since)
    assert len(sleepers) == 9 and len(members) <= 10, members
    assert st["limit"] == 10 and refused > 0
    print(f"\npids.max 10: {len(members)} processes, {refused} fork(s) refused (pids.events max)")


# -- io -------------------------------------------------------------------------------------


@pytest.fixture
def loop_device(vm_scratch):
    img = os.path.join(vm_scratch, f"disk-{uuid.uuid4().hex[:8]}.img")
    with open(img, "wb") as f:
        f.truncate(16 * MiB)
    r = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dev = r.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)
        os.unlink(img)


def _dd(dev):
    return [BUSYBOX, "dd", "if=/dev/zero", f"of={dev}", "bs=64k", "count=32", "oflag=direct"]


def test_io_max_wbps_slows_direct_writes(cgroups, procs, loop_device):
    st = os.stat(loop_device)
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    cg = cgroups("io", Resources(blkio_throttle={"throttleWriteBpsDevice": [(major, minor, MiB)]}))
    assert f"{major}:{minor} rbps=max wbps={MiB} riops=max wiops=max" in _read(cg, "io.max")
    t0 = time.monotonic()
    dd = cg.popen(_dd(loop_device), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(dd)
    assert dd.wait(timeout=120) == 0
    limited = time.monotonic() - t0
    written = cg.stats()["blkio"]["write_bytes"]
    print(f"\nio.max wbps=1MiB: 2 MiB written in {limited:.2f}s ({2 / limited:.2f} MiB/s); "
          f"io.stat wbytes {written / MiB:.1f} MiB")
    # 2 MiB at 1 MiB/s (the first slice may pass at once): a rate limit is a minimum
    # duration, which emulation and load only lengthen (bench/cgroup_effects.py compares
    # with an unthrottled write)
    assert limited >= 1.4
    assert written >= 2 * MiB


# -- freezer --------------------------------------------------------------------------------


def test_cgroup_freeze_stops_progress(cgroups, procs, tmp_path):
    counter = tmp_path / "counter"
    cg = cgroups("freeze")
    procs.append(cg.popen([BUSYBOX, "sh", "-c", f"while :; do printf . >> {counter}; done"]))

    def value():  # the counter is the file's size: it never shrinks
        try:
            return os.stat(counter).st_size
        except FileNotFoundError:
            return 0

    deadline = time.monotonic() + 30
    while value() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value() > 0
    cg.freeze()
    assert cg.state == "FROZEN"
    assert _read(cg, "cgroup.freeze").strip() == "1" and _kv(cg, "cgroup.events")["frozen"] == 1
    a, ua = value(), _usage_usec(cg)
    time.sleep(1.5)
    b, ub = value(), _usage_usec(cg)
    assert a == b and ua == ub
    cg.thaw()
    assert cg.state == "THAWED"
    deadline = time.monotonic() + 30
    while value() == b and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value() > b


# -- devices: the eBPF filter -----------------------------------------------------------------


def _sh(cg, procs, script):
    p = cg.popen([BUSYBOX, "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 stdin=subprocess.DEVNULL, text=True)
    procs.append(p)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


def test_ebpf_device_filter_denies_and_allows(cgroups, procs, vm_scratch):
    rules = [DeviceRule(False),                         # deny all
             DeviceRule(True, "c", 1, 5, "rwm"),        # /dev/zero
             DeviceRule(True, "c", 1, 3, "r")]          # /dev/null, read only
    cg = cgroups("devices", Resources(devices=rules))
    rc, out, err = _sh(cg, procs, "echo x > /dev/null")
    assert rc != 0 and "Operation not permitted" in err, (rc, err)
    rc, out, err = _sh(cg, procs, "head -c 4 /dev/zero | wc -c; cat /dev/null && echo read-ok")
    assert rc == 0 and out.split() == ["4", "read-ok"], (rc, out, err)
    rc, out, err = _sh(cg, procs, "cat /dev/full")
    assert rc != 0 and "Operation not permitted" in err, (rc, err)
    # the same command outside the cgroup works: the effect is the cgroup's
    assert subprocess.run([BUSYBOX, "sh", "-c", "echo x > /dev/null"]).returncode == 0

    # update to Docker's defaults: the new program replaces the old one
    from pyrt_core.containers.defaults import DEFAULT_DEVICE_RULES

    cg.update(Resources(devices=[DeviceRule(**r) for r in DEFAULT_DEVICE_RULES]))
    node = os.path.join(vm_scratch, f"loopnode-{uuid.uuid4().hex[:8]}")
    try:
        rc, out, err = _sh(cg, procs,
                           "echo x > /dev/null && head -c 2 /dev/zero | wc -c && "
                           "head -c 2 /dev/urandom | wc -c && echo x > /dev/full; echo rc=$?;"
                           f"mknod {node} b 7 0 && echo mknod-ok; head -c 1 {node}; echo rc=$?")
        lines = out.split()
        assert lines[:2] == ["2", "2"], (out, err)
        assert "rc=1" in lines[2]  # /dev/full opens; the write fails with ENOSPC, not EPERM
        assert "No space left" in err
        assert "mknod-ok" in lines  # b *:* m: mknod is allowed ...
        assert lines[-1] == "rc=1" and err.count("Operation not permitted") == 1, (out, err)  # ... use is not
    finally:
        if os.path.exists(node):
            os.unlink(node)


# -- end to end: pyrt run -------------------------------------------------------------------------


def test_pyrt_run_memory_limit_oom_exit_137(demo_cli, demo_image):
    r = demo_cli("run", "--rm", "-m", "32m", demo_image, "sh", "-c", HOG, timeout=300)
    assert r.returncode == 137, (r.returncode, r.stdout, r.stderr)
    assert not os.path.exists("/sys/fs/cgroup/pyrt") or not any(
        e.is_dir() for e in os.scandir("/sys/fs/cgroup/pyrt"))


def test_pyrt_run_limits_and_default_devices(demo_cli, demo_image, tmp_path):
    """A running container: its cgroup's files seen from the VM, Docker's default
    device rules (eBPF) seen from inside it."""
    script = ("trap 'exit 0' TERM; cat /proc/self/cgroup; "
              "echo x > /dev/null && echo null-ok; "
              "mknod /tmp/loopnode b 7 0 && echo mknod-ok; head -c 1 /tmp/loopnode; echo loop-rc=$?; "
              "echo ready; sleep 600 & wait")
    err = open(tmp_path / "stderr", "w+")
    p = subprocess.Popen(demo_cli.argv("run", "--rm", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20",
                                       demo_image, "sh", "-c", script),
                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(300, p.kill)
    watchdog.start()
    try:
        out = []
        for line in p.stdout:
            out.append(line.strip())
            if line.strip() == "ready":
                break
        assert out[-1:] == ["ready"], (out, open(tmp_path / "stderr").read())
        cgs = [e.path for e in os.scandir("/sys/fs/cgroup/pyrt") if e.name.startswith("pyrt-")]
        assert len(cgs) == 1, cgs
        files = {f: open(os.path.join(cgs[0], f)).read().split()
                 for f in ("memory.max", "cpu.max", "pids.max", "cgroup.procs")}
        p.send_signal(signal.SIGTERM)  # passed on to the container: the trap ends it
        rest, _ = p.communicate(timeout=120)
    finally:
        watchdog.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    err.seek(0)
    stderr = err.read()
    err.close()
    assert p.returncode == 0, (p.returncode, out, rest, stderr)
    assert files["memory.max"] == [str(64 * MiB)] and files["pids.max"] == ["20"], files
    assert files["cpu.max"] == ["50000", "100000"] and files["cgroup.procs"], files
    assert "0::/" in out  # at the root of its own cgroup namespace
    assert "null-ok" in out and "mknod-ok" in out and "loop-rc=1" in out, out
    assert "Operation not permitted" in stderr, stderr
    assert not os.path.exists(cgs[0])  # released with the container
