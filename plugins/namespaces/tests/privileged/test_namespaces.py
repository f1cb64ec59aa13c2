"""The namespaces plugin against the real kernel: effects seen from inside and outside.

Each test builds a RuntimeConfig by hand with Docker's defaults (mounts, devices,
masked and read-only paths, capabilities, namespaces), runs busybox commands in
it with a pipe as stdout/stderr, and always reaps what it started.
"""
from __future__ import annotations

import os
import signal
import socket
import time

import pluggy
import pytest

from pyrt_core import hookspecs
from pyrt_core.errors import ExecError, RuntimeError_
from pyrt_core.runtime.config import (
    Capabilities, Device, IdMapping, Mount, Namespace, ProcessConfig, Rlimit, RuntimeConfig,
    evolve,
)
from pyrt_core.runtime.spec_mounts import parse_mount_options
from pyrt_namespaces import caps, handle, plugin
from pyrt_namespaces import create as nscreate
from pyrt_namespaces import join as nsjoin

DEFAULT_NAMESPACES = ("mount", "pid", "ipc", "uts", "network", "cgroup")
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEVICES = [
    Device("/dev/null", "c", 1, 3), Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7), Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9), Device("/dev/tty", "c", 5, 0),
]
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def mount(dest, mtype, source, options):
    flags, prop, data = parse_mount_options(options)
    if mtype == "bind":
        flags |= parse_mount_options(["bind"])[0]
    return Mount(dest, mtype, source, flags, prop, data, tuple(options))


def docker_mounts():
    return [
        mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount("/dev/pts", "devpts", "devpts",
              ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]


def docker_config(rootfs, args, *, env=None, namespaces=DEFAULT_NAMESPACES, extra_mounts=(),
                   process=None, **overrides) -> RuntimeConfig:
    """A RuntimeConfig as Docker's defaults would make it (what the engine writes)."""
    default = frozenset(caps.DEFAULT_CAPS)
    proc = ProcessConfig(
        args=list(args),
        env=[PATH, "HOME=/root"] if env is None else env,
        capabilities=Capabilities(bounding=default, effective=default, permitted=default),
        **(process or {}),
    )
    cfg = RuntimeConfig(
        id="nstest",
        bundle=os.path.dirname(rootfs),
        root_path=rootfs,
        root_readonly=False,
        process=proc,
        hostname="pyrt-test",
        mounts=docker_mounts() + list(extra_mounts),
        namespaces=[Namespace(t) for t in namespaces],
        devices=list(DEVICES),
        masked_paths=list(MASKED_PATHS),
        readonly_paths=list(READONLY_PATHS),
    )
    return evolve(cfg, **overrides)


def own_children() -> list[str]:
    """Processes (zombies included) whose parent is this test process."""
    me = str(os.getpid())
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as f:
                    text = f.read()
            except OSError:
                continue
            if status_field(text, "PPid") == me:
                out.append(f"{pid} {status_field(text, 'Name')} {status_field(text, 'State')}")
    return out


@pytest.fixture(autouse=True)
def reaped():
    """Every process a test started, through the intermediate child, is reaped."""
    before = set(own_children())
    yield
    left = set(own_children()) - before
    assert not left, f"unreaped children: {sorted(left)}"


def read_all(fd) -> str:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks).decode()
        chunks.append(b)


class Run:
    """create + start + collect output + wait, reaping in every case."""

    def __init__(self, config, place=None):
        self.config = config
        self.placed = []
        self.r, w = os.pipe()
        self.null = os.open("/dev/null", os.O_RDONLY)
        try:
            self.proc = nscreate.create(config, (self.null, w, w), place or self.placed.append)
        except BaseException:
            os.close(self.r)
            raise
        finally:
            os.close(w)
            os.close(self.null)

    def finish(self) -> tuple[int, str]:
        try:
            self.proc.start()
            out = read_all(self.r)
            return self.proc.wait(), out
        finally:
            self.close()

    def close(self):
        self.proc.destroy()
        if self.r is not None:
            os.close(self.r)
            self.r = None


def run(config) -> tuple[int, str]:
    return Run(config).finish()


def sh(rootfs, script, **kw) -> tuple[int, str]:
    return run(docker_config(rootfs, ["sh", "-c", script], **kw))


def status_field(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in {text!r}")


# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------

def test_pid_1_and_only_own_processes(busybox_rootfs):
    code, out = sh(busybox_rootfs, "echo $$; ps -o pid,comm")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "1"
    pids = [int(line.split()[0]) for line in lines[2:]]
    assert pids and max(pids) <= 3, out  # sh and ps, nothing of the host's
    assert 1 in pids


def test_place_process_gets_host_pid_before_anything_runs(busybox_rootfs):
    seen = {}

    def place(pid):
        with open(f"/proc/{pid}/status") as f:
            seen["nspid"] = status_field(f.read(), "NSpid").split()
        seen["pid"] = pid

    r = Run(docker_config(busybox_rootfs, ["true"]), place=place)
    try:
        assert seen["pid"] == r.proc.pid
        assert seen["nspid"] == [str(r.proc.pid), "1"]  # host pid, then pid 1 inside
    finally:
        assert r.finish()[0] == 0


def test_hostname_is_set_and_host_keeps_its_own(busybox_rootfs):
    host = socket.gethostname()
    code, out = sh(busybox_rootfs, "hostname")
    assert (code, out.strip()) == (0, "pyrt-test")
    assert socket.gethostname() == host


def test_network_namespace_has_only_lo_and_it_is_up(busybox_rootfs):
    code, out = sh(busybox_rootfs, "ls /sys/class/net; echo ---; ip link show lo; "
                                   "ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; echo ping=$?")
    assert code == 0, out
    ifaces, rest = out.split("---\n")
    assert ifaces.split() == ["lo"]
    assert "UP" in rest.split("<")[1].split(">")[0].split(","), rest


def test_host_network_when_not_requested(busybox_rootfs):
    ns = tuple(n for n in DEFAULT_NAMESPACES if n != "network")
    code, out = sh(busybox_rootfs, "readlink /proc/self/ns/net", namespaces=ns)
    assert code == 0, out
    assert out.strip() == os.readlink("/proc/self/ns/net")


def test_namespaces_differ_from_the_host(busybox_rootfs):
    kinds = ["ipc", "uts", "net", "pid", "mnt", "cgroup"]
    code, out = sh(busybox_rootfs, "; ".join(f"readlink /proc/self/ns/{k}" for k in kinds))
    assert code == 0, out
    inside = out.split()
    for kind, link in zip(kinds, inside):
        assert link.startswith(kind + ":[")
        assert link != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert os.readlink("/proc/self/ns/user") in sh(busybox_rootfs, "readlink /proc/self/ns/user")[1]


def test_cgroup_namespace_root(busybox_rootfs):
    code, out = sh(busybox_rootfs, "cat /proc/self/cgroup; ls /sys/fs/cgroup")
    assert code == 0, out
    for line in out.splitlines():
        if line.count(":") >= 2:
            assert line.split(":", 2)[2] == "/", out  # the container's cgroup is its root
    assert "memory" in out.split()


def test_mounts_do_not_propagate_to_the_host(busybox_rootfs):
    def host_mounts():
        # Only what the container could add: other test sessions may mount meanwhile.
        kinds = {"proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2"}
        with open("/proc/self/mountinfo") as f:
            return {line for line in f if busybox_rootfs in line
                    or line.split(" - ")[1].split()[0] in kinds}

    before = host_mounts()
    r = Run(docker_config(busybox_rootfs, ["sh", "-c", "mount | wc -l"]))
    try:
        during = host_mounts()  # all container mounts exist now (created state)
        code, out = r.finish()
    finally:
        r.close()
    assert code == 0 and int(out) > 10, out
    assert during == before
    assert host_mounts() == before


def test_unshare_current_process_in_a_forked_child():
    host_name = socket.gethostname()
    host_uts = os.readlink("/proc/self/ns/uts")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            pm.register(plugin)
            assert pm.hook.pyrt_isolation_unshare(namespaces=["uts"]) is True
            socket.sethostname("unshared-child")
            os.write(w, f"{socket.gethostname()} {os.readlink('/proc/self/ns/uts')}".encode())
            os._exit(0)
        except BaseException:
            os._exit(1)
        finally:
            os._exit(2)
    os.close(w)
    out = read_all(r)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    name, uts = out.split()
    assert name == "unshared-child" and uts != host_uts
    assert socket.gethostname() == host_name
    assert os.readlink("/proc/self/ns/uts") == host_uts


# ---------------------------------------------------------------------------
# Root filesystem, /proc, /sys, /dev
# ---------------------------------------------------------------------------

def test_masked_paths_read_empty(busybox_rootfs):
    code, out = sh(busybox_rootfs, "wc -c < /proc/timer_list; ls -A /proc/acpi | wc -l; "
                                   "[ -e /proc/kcore ] && wc -c < /proc/kcore || echo 0")
    assert code == 0, out
    assert out.split() == ["0", "0", "0"]
    with open("/proc/timer_list") as f:
        assert f.read(10)  # not empty on the host: the container's view was masked


def test_proc_sys_is_read_only(busybox_rootfs):
    code, out = sh(busybox_rootfs, "echo other > /proc/sys/kernel/hostname; echo rc=$?; hostname")
    assert code == 0
    assert "rc=1" in out and "Read-only file system" in out, out
    assert out.split()[-1] == "pyrt-test"


def test_sys_is_read_only(busybox_rootfs):
    code, out = sh(busybox_rootfs, "cat /sys/class/net/lo/mtu > /tmp/mtu; "
                                   "cat /tmp/mtu > /sys/class/net/lo/mtu; echo rc=$?; "
                                   "mkdir /sys/fs/cgroup/x; echo rc=$?")
    assert out.count("rc=1") == 2, out
    assert "Read-only file system" in out


def test_dev_has_exactly_the_docker_nodes(busybox_rootfs):
    code, out = sh(busybox_rootfs, "ls -A /dev; echo ---; stat -c '%n %F %t:%T %a' "
                                   "/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; "
                                   "echo ---; echo hi > /dev/null && head -c 5 /dev/zero | wc -c; "
                                   "for l in ptmx fd stdin stderr; do readlink /dev/$l; done")
    assert code == 0, out
    listing, nodes, effects = out.split("---\n")
    expected = {"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
                "stdin", "stdout", "tty", "urandom", "zero"}
    if os.path.exists("/proc/kcore"):
        expected.add("core")
    assert set(listing.split()) == expected
    assert nodes.splitlines() == [
        "/dev/null character special file 1:3 666", "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666", "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666", "/dev/tty character special file 5:0 666",
    ]
    assert effects.split() == ["5", "pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/2"]


def test_read_only_root(busybox_rootfs):
    code, out = sh(busybox_rootfs, "touch /newfile; echo rc=$?; touch /dev/shm/ok && echo shm-ok",
                   root_readonly=True)
    assert "rc=1" in out and "Read-only file system" in out, out
    assert "shm-ok" in out
    assert not os.path.exists(os.path.join(busybox_rootfs, "newfile"))


def test_bind_volumes_rw_and_ro(busybox_rootfs, tmp_path):
    rw = tmp_path / "rw"
    ro = tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given").write_text("from host\n")
    (tmp_path / "single").write_text("one file\n")
    code, out = sh(busybox_rootfs,
                   "echo written > /data/rw/out; cat /data/ro/given; touch /data/ro/x; echo rc=$?; "
                   "cat /etc/single",
                   extra_mounts=[mount("/data/rw", "bind", str(rw), ["rbind", "rw"]),
                                 mount("/data/ro", "bind", str(ro), ["bind", "ro"]),
                                 mount("/etc/single", "bind", str(tmp_path / "single"), ["bind", "ro"])])
    assert code == 0, out
    assert (rw / "out").read_text() == "written\n"
    assert "from host" in out and "rc=1" in out and "Read-only file system" in out
    assert "one file" in out
    assert not (ro / "x").exists()


def test_bind_destination_symlink_cannot_escape_root(busybox_rootfs, tmp_path):
    # /escape -> / ... a symlink chain that points out of the root on the host
    os.symlink("../../../../../../../../tmp", os.path.join(busybox_rootfs, "escape"))
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "marker").write_text("m")
    code, out = sh(busybox_rootfs, "ls /tmp",
                   extra_mounts=[mount("/escape/pyrt-escape-test", "bind", str(vol), ["bind"])])
    assert code == 0, out
    assert "pyrt-escape-test" in out.split()  # landed in the container's /tmp
    assert not os.path.exists("/tmp/pyrt-escape-test")


# ---------------------------------------------------------------------------
# Process: capabilities, identity, cwd, PATH, exit codes
# ---------------------------------------------------------------------------

def test_capabilities_are_dockers_14(busybox_rootfs):
    code, out = sh(busybox_rootfs, "cat /proc/self/status")
    assert code == 0, out
    for key in ("CapBnd", "CapEff", "CapPrm"):
        names = caps.from_mask(caps.parse_status_mask(status_field(out, key)))
        assert sorted(names) == sorted(caps.DEFAULT_CAPS), key
    assert caps.parse_status_mask(status_field(out, "CapAmb")) == 0
    assert status_field(out, "NoNewPrivs") == "0"


def test_no_new_privileges(busybox_rootfs):
    code, out = sh(busybox_rootfs, "grep NoNewPrivs /proc/self/status",
                   process={"no_new_privileges": True})
    assert (code, out.split()) == (0, ["NoNewPrivs:", "1"])


def test_user_and_groups(busybox_rootfs):
    code, out = sh(busybox_rootfs, "id; grep CapEff /proc/self/status",
                   process={"uid": 1000, "gid": 1000, "additional_gids": [2000]})
    assert code == 0, out
    ident = out.splitlines()[0]
    assert ident.startswith("uid=1000(user) gid=1000(user) groups=")
    assert "2000(extra)" in ident
    assert caps.parse_status_mask(out.split()[-1]) == 0  # non-root: no effective caps


def test_ambient_capability_for_a_non_root_user(busybox_rootfs):
    c = frozenset({"CAP_NET_BIND_SERVICE"})
    cfg = docker_config(busybox_rootfs, ["sh", "-c", "grep CapEff /proc/self/status"],
                        process={"uid": 1000, "gid": 1000})
    cfg.process.capabilities = Capabilities(bounding=c, effective=c, permitted=c,
                                            inheritable=c, ambient=c)
    code, out = run(cfg)
    assert code == 0, out
    assert caps.from_mask(caps.parse_status_mask(out.split()[-1])) == ["CAP_NET_BIND_SERVICE"]


def test_new_session_and_terminal(busybox_rootfs):
    script = "cut -d' ' -f6,7 /proc/self/stat; test -t 0 && echo tty || echo notty"
    code, out = sh(busybox_rootfs, script)  # a pipe: no controlling terminal
    assert (code, out.split()) == (0, ["1", "0", "notty"])  # own session, led by pid 1

    master, slave = os.openpty()
    try:
        cfg = docker_config(busybox_rootfs, ["sh", "-c", script], process={"terminal": True})
        p = nscreate.create(cfg, (slave, slave, slave), lambda pid: None)
        try:
            os.close(slave)
            slave = None
            p.start()
            chunks = []
            while True:
                try:
                    b = os.read(master, 4096)
                except OSError:  # EIO: the terminal's last user is gone
                    break
                if not b:
                    break
                chunks.append(b)
            assert p.wait() == 0
        finally:
            p.destroy()
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    out = b"".join(chunks).decode().split()
    assert out[0] == "1" and out[1] != "0" and out[2] == "tty", out


def test_cwd_and_umask(busybox_rootfs):
    code, out = sh(busybox_rootfs, "pwd; umask", process={"cwd": "/tmp", "umask": 0o027})
    assert (code, out.split()) == (0, ["/tmp", "0027"])


def test_path_lookup_uses_the_process_env(busybox_rootfs):
    tools = os.path.join(busybox_rootfs, "opt/tools")
    os.makedirs(tools)
    with open(os.path.join(tools, "mytool"), "w") as f:
        f.write("#!/bin/sh\necho mytool ran with PATH=$PATH\n")
    os.chmod(os.path.join(tools, "mytool"), 0o755)
    code, out = run(docker_config(busybox_rootfs, ["mytool"], env=["PATH=/opt/tools:/bin"]))
    assert (code, out.strip()) == (0, "mytool ran with PATH=/opt/tools:/bin")
    # sh is in the caller's PATH and in the container's /bin, but not in this PATH
    with pytest.raises(ExecError) as e:
        run(docker_config(busybox_rootfs, ["sh", "-c", "true"], env=["PATH=/opt/tools"]))
    assert e.value.exit_code == 127


def test_exit_code_propagates(busybox_rootfs):
    assert sh(busybox_rootfs, "exit 42")[0] == 42


def test_killed_from_outside_gives_137(busybox_rootfs):
    r = Run(docker_config(busybox_rootfs, ["sleep", "60"]))
    try:
        r.proc.start()
        r.proc.kill(signal.SIGTERM)  # pid 1 without a handler: ignored
        time.sleep(0.05)
        assert r.proc.poll() is None
        r.proc.kill(signal.SIGKILL)
        assert r.proc.wait() == 137
        r.proc.kill(signal.SIGKILL)  # already reaped: no error, no stray signal
    finally:
        r.close()


def test_missing_command_is_127(busybox_rootfs):
    with pytest.raises(ExecError) as e:
        run(docker_config(busybox_rootfs, ["no-such-command"]))
    assert e.value.exit_code == 127
    assert "no-such-command" in str(e.value) and "not found" in str(e.value)
    with pytest.raises(ExecError) as e:
        run(docker_config(busybox_rootfs, ["/bin/nope"]))
    assert e.value.exit_code == 127


def test_not_executable_is_126(busybox_rootfs):
    path = os.path.join(busybox_rootfs, "bin/notexec")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho should not run\n")
    os.chmod(path, 0o644)
    for args in (["/bin/notexec"], ["notexec"]):
        with pytest.raises(ExecError) as e:
            run(docker_config(busybox_rootfs, args))
        assert e.value.exit_code == 126, args
        assert "permission denied" in str(e.value).lower()


def test_missing_cwd_fails_at_create(busybox_rootfs):
    with pytest.raises(RuntimeError_) as e:
        run(docker_config(busybox_rootfs, ["true"], process={"cwd": "/does/not/exist"}))
    assert "/does/not/exist" in str(e.value)
    assert not isinstance(e.value, ExecError)


def test_setup_failure_is_reported_and_reaped(busybox_rootfs):
    cfg = docker_config(busybox_rootfs, ["true"],
                        extra_mounts=[mount("/bad", "nosuchfs", "x", [])])
    with pytest.raises(RuntimeError_) as e:
        run(cfg)
    assert "mounting /bad" in str(e.value) and "nosuchfs" in str(e.value)
    # the autouse `reaped` fixture checks that the failure path reaped both


def test_rlimits(busybox_rootfs):
    code, out = sh(busybox_rootfs, "ulimit -n; ulimit -Hn",
                   process={"rlimits": [Rlimit("RLIMIT_NOFILE", 1024, 2048)]})
    assert (code, out.split()) == (0, ["1024", "2048"])
    hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[1]
    with pytest.raises(RuntimeError_) as e:
        sh(busybox_rootfs, "true",
           process={"rlimits": [Rlimit("RLIMIT_NOFILE", hard + 1, hard + 1)]})
    assert "RLIMIT_NOFILE" in str(e.value)


def test_namespaced_sysctl(busybox_rootfs):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        host = f.read()
    code, out = sh(busybox_rootfs, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
                   sysctl={"net.ipv4.ip_unprivileged_port_start": "80"})
    assert (code, out.strip()) == (0, "80")
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        assert f.read() == host
    with pytest.raises(RuntimeError_, match="not in a separate kernel namespace"):
        sh(busybox_rootfs, "true", sysctl={"vm.swappiness": "1"})


def test_created_process_waits_for_start(busybox_rootfs, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    r = Run(docker_config(busybox_rootfs, ["touch", "/v/ran"],
                          extra_mounts=[mount("/v", "bind", str(vol), ["bind"])]))
    try:
        time.sleep(0.05)
        assert not (vol / "ran").exists()
        assert r.proc.poll() is None
        assert r.finish()[0] == 0
    finally:
        r.close()
    assert (vol / "ran").exists()


def test_destroy_before_start(busybox_rootfs):
    r = Run(docker_config(busybox_rootfs, ["true"]))
    pid = r.proc.pid
    r.close()
    assert r.proc.wait() == 137
    assert not os.path.exists(f"/proc/{pid}")


def test_detached_start_through_a_fifo(busybox_rootfs, tmp_path):
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo, 0o600)
    r = Run(docker_config(busybox_rootfs, ["sh", "-c", "echo started"]))
    try:
        r.proc.detach_start(fifo)
        time.sleep(0.05)
        assert r.proc.poll() is None
        handle.start_fifo(fifo)
        assert read_all(r.r) == "started\n"
        assert r.proc.wait() == 0
        with pytest.raises(RuntimeError_, match="not running"):
            handle.start_fifo(fifo)
    finally:
        r.close()
    # exec errors of a detached start show in the exit status (a missing command is
    # refused by create already, as runc: see the test below; a file that cannot be
    # executed is found out by execve)
    r = Run(docker_config(busybox_rootfs, ["/etc/passwd"]))
    try:
        r.proc.detach_start(fifo)
        handle.start_fifo(fifo)
        assert r.proc.wait() == 126
    finally:
        r.close()


def test_detached_start_reports_exec_errors_through_a_status_fifo(busybox_rootfs, tmp_path):
    fifo, status = str(tmp_path / "exec.fifo"), str(tmp_path / "status.fifo")
    os.mkfifo(fifo, 0o600)
    os.mkfifo(status, 0o600)
    r = Run(docker_config(busybox_rootfs, ["/etc/passwd"]))
    try:
        r.proc.detach_start(fifo, status)
        with pytest.raises(ExecError) as e:
            handle.start_fifo(fifo, status)
        assert e.value.exit_code == 126 and "/etc/passwd" in str(e.value)
        assert r.proc.wait() == 126
    finally:
        r.close()
    # a command that is not there fails the create itself (127), as runc's does:
    # engines such as podman map only a create error to 127
    for args in (["no-such-command"], ["/bin/no-such-command"]):
        with pytest.raises(ExecError) as e:
            Run(docker_config(busybox_rootfs, args))
        assert e.value.exit_code == 127 and "no-such-command" in str(e.value)
    # (the autouse `reaped` fixture checks that nothing was left unreaped)
    r = Run(docker_config(busybox_rootfs, ["sh", "-c", "echo ok"]))
    try:
        r.proc.detach_start(fifo, status)
        handle.start_fifo(fifo, status)  # returns once the exec happened
        assert read_all(r.r) == "ok\n"
        assert r.proc.wait() == 0
    finally:
        r.close()


# ---------------------------------------------------------------------------
# User namespace
# ---------------------------------------------------------------------------

def test_user_namespace_mapping(busybox_rootfs):
    maps = [IdMapping(0, 100000, 65536)]
    cfg = docker_config(busybox_rootfs,
                        ["sh", "-c", "id; cat /proc/self/uid_map /proc/self/gid_map; "
                                     "echo x > /dev/null && echo null-ok; ls /sys/class/net"],
                        namespaces=DEFAULT_NAMESPACES + ("user",),
                        uid_mappings=maps, gid_mappings=maps)
    r = Run(cfg)
    try:
        with open(f"/proc/{r.proc.pid}/status") as f:
            assert status_field(f.read(), "Uid").split() == ["100000"] * 4  # host view
        code, out = r.finish()
    finally:
        r.close()
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2].split() == ["0", "100000", "65536"]
    assert lines[3] == "null-ok" and lines[4] == "lo"


def test_user_namespace_with_host_network_binds_sys(busybox_rootfs):
    # sysfs may only be mounted by the owner of the network namespace: runc's fallback
    maps = [IdMapping(0, 100000, 65536)]
    ns = tuple(n for n in DEFAULT_NAMESPACES if n != "network") + ("user",)
    code, out = sh(busybox_rootfs, "ls /sys/class/net; touch /sys/x; echo rc=$?",
                   namespaces=ns, uid_mappings=maps, gid_mappings=maps)
    assert code == 0, out
    assert set(out.split()[:-1]) >= set(os.listdir("/sys/class/net")) - {"bonding_masters"}
    assert "rc=1" in out and "Read-only file system" in out


def test_rootfs_propagation_is_applied(busybox_rootfs):
    from pyrt_core.runtime.config import MS_REC, MS_SHARED

    code, out = sh(busybox_rootfs, "cat /proc/self/mountinfo",
                   rootfs_propagation=MS_SHARED | MS_REC)
    assert code == 0, out
    root = [line for line in out.splitlines() if line.split()[4] == "/"]
    assert len(root) == 1 and "shared:" in root[0], out


# ---------------------------------------------------------------------------
# Join (exec) and the plugin hooks
# ---------------------------------------------------------------------------

@pytest.fixture
def pm():
    m = pluggy.PluginManager(hookspecs.PROJECT)
    m.add_hookspecs(hookspecs)
    m.register(plugin)
    return m


def test_self_join_hands_the_record_to_the_init_and_reports_its_failure(busybox_rootfs, pm):
    # place_process(pid, self_join=True) returning a record: the init gets it over the
    # channel and calls join_resources with it (here: writes it to a pipe) before anything
    # else; a join that raises fails create with the stage named and no process left.
    null = os.open("/dev/null", os.O_RDWR)
    r, w = os.pipe()
    offered = []
    # children of the session's fixtures (a registry another plugin's tests started) are
    # not this test's
    earlier = {p for p in os.listdir("/proc") if p.isdigit() and _is_child_of_us(int(p))}

    def place(pid, self_join=False):
        offered.append(self_join)
        return {"manager": "test", "n": 1}

    def join_ok(todo):
        os.write(w, repr(todo).encode())

    try:
        container = pm.hook.pyrt_isolation_create(
            config=docker_config(busybox_rootfs, ["true"]), stdio=(null, null, null),
            place_process=place, join_resources=join_ok)
        assert offered == [True]
        assert os.read(r, 100) == repr({"manager": "test", "n": 1}).encode()
        container.destroy()

        def join_fails(todo):
            raise OSError(13, "Permission denied")

        with pytest.raises(RuntimeError_, match="joining the container's cgroups: .*denied"):
            pm.hook.pyrt_isolation_create(
                config=docker_config(busybox_rootfs, ["true"]), stdio=(null, null, null),
                place_process=place, join_resources=join_fails)
        assert not [p for p in os.listdir("/proc")
                    if p.isdigit() and p not in earlier and _is_child_of_us(int(p))]
    finally:
        for fd in (null, r, w):
            os.close(fd)


def _is_child_of_us(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def test_join_a_running_container(busybox_rootfs, pm):
    earlier = {c.split()[0] for c in own_children()}  # the session fixtures' (a registry)
    null = os.open("/dev/null", os.O_RDWR)
    container = pm.hook.pyrt_isolation_create(
        config=docker_config(busybox_rootfs, ["sleep", "60"]), stdio=(null, null, null),
        place_process=lambda pid: None, join_resources=None)
    try:
        container.start()
        r, w = os.pipe()
        try:
            proc = ProcessConfig(args=["sh", "-c", "hostname; echo $$; ps -o pid,comm; pwd; id -u"],
                                 env=[PATH], cwd="/tmp", uid=1000, gid=1000)
            joined = pm.hook.pyrt_isolation_join(
                pid=container.pid, namespaces=list(DEFAULT_NAMESPACES), process=proc,
                stdio=(null, w, w))
        finally:
            os.close(w)
        try:
            out = read_all(r)
            assert joined.wait() == 0, out
        finally:
            joined.destroy()
            os.close(r)
        lines = out.splitlines()
        assert lines[0] == "pyrt-test"
        assert 1 < int(lines[1]) < 10  # in the container's pid namespace, not pid 1
        assert any(line.split() == ["1", "sleep"] for line in lines[2:]), out
        assert lines[-2:] == ["/tmp", "1000"]
        for _ in range(20):  # a fast failure must still be reaped (it once raced the pid report)
            with pytest.raises(ExecError) as e:
                pm.hook.pyrt_isolation_join(pid=container.pid, namespaces=list(DEFAULT_NAMESPACES),
                                            process=ProcessConfig(args=["missing"], env=[PATH]),
                                            stdio=(null, null, null))
            assert e.value.exit_code == 127
        left = [c for c in own_children() if c.split()[0] not in earlier]
        assert [c for c in left if c.split()[0] != str(container.pid)] == []  # only the container
    finally:
        container.kill(signal.SIGKILL)
        for child in own_children():  # a leaked zombie would keep the dying init waiting
            if child.split()[0] != str(container.pid) and child.endswith("(zombie)"):
                os.waitpid(int(child.split()[0]), 0)
        assert container.wait() == 137
        container.destroy()
        os.close(null)


def test_join_a_user_namespace_container(busybox_rootfs):
    maps = [IdMapping(0, 100000, 65536)]
    cfg = docker_config(busybox_rootfs, ["sleep", "60"],
                        namespaces=DEFAULT_NAMESPACES + ("user",), uid_mappings=maps,
                        gid_mappings=maps)
    r = Run(cfg)
    try:
        r.proc.start()
        rr, w = os.pipe()
        try:
            joined = nsjoin.join(r.proc.pid, list(DEFAULT_NAMESPACES) + ["user"],
                                ProcessConfig(args=["sh", "-c", "id -u; cat /proc/self/uid_map"],
                                              env=[PATH]), (None, w, w))
        finally:
            os.close(w)
        try:
            out = read_all(rr)
            assert joined.wait() == 0
        finally:
            joined.destroy()
            os.close(rr)
        assert out.split() == ["0", "0", "100000", "65536"]
    finally:
        r.close()


def test_plugin_info(pm):
    info = {}
    for part in pm.hook.pyrt_info():
        info.update(part)
    ns = info["namespaces"]
    assert {"mount", "pid", "network", "ipc", "uts", "user", "cgroup"} <= set(ns["available"])
    assert ns["user namespaces"] is True
    assert ns["version"]
