"""containerd drives pyrt's OCI runtime: ``ctr run --runc-binary pyrt-runtime``.

The test starts its own containerd 1.6 (apt ``containerd``) from a small config: private
root and state directories and a private socket, the CRI plugin disabled.  The busybox
demo image (built offline by scripts/build-demo-image) is imported from an oci-archive
made with skopeo, unpacked with the ``native`` snapshotter, and run through containerd's
runc shim (``io.containerd.runc.v2``) with ``pyrt-runtime`` as its runc binary.  The
shim calls the runtime with ``--root DIR --log BUNDLE/log.json --log-format json`` before
every command; ``--runc-root`` and ``--fifo-dir`` keep the runtime's state and ctr's
FIFOs in the test's directory too.

At the end every task and container is deleted, containerd is stopped, whatever is
still mounted under its directories is unmounted, and the namespace's cgroup (ctr puts
containers in ``/<namespace>/<id>``) and the shared directories containerd creates
under /run/containerd are removed when the test made them.

``PYRT_TEST_OCI_RUNTIME=runc`` runs the same tests against runc (to check the tests).
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from oci_engine_helpers import (cgroup_dirs, cgroup_file, remove_cgroups, runtime_path, unmount_under,
                                wait_for)

CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")
SKOPEO = shutil.which("skopeo")
RUNTIME = runtime_path()

pytestmark = [
    pytest.mark.skipif(not (CONTAINERD and CTR and shutil.which("containerd-shim-runc-v2")),
                       reason="containerd is not installed (apt-get install containerd)"),
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (apt-get install skopeo)"),
    pytest.mark.skipif(RUNTIME is None, reason="pyrt-runtime is not installed"),
]

NAMESPACE = "pyrt-oci-test"
IMAGE = "docker.io/pyrt-test/busybox:latest"
TRAP = ["sh", "-c", 'trap "exit 0" TERM; echo ready; sleep 100000 & wait']
SHARED_RUN = "/run/containerd"  # containerd 1.6 puts shim sockets in /run/containerd/s

CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
"""


class Containerd:
    def __init__(self, base: str):
        self.base = base
        self.root = os.path.join(base, "root")
        self.state = os.path.join(base, "state")
        self.sock = os.path.join(base, "containerd.sock")
        self.runc_root = os.path.join(base, "runtime-root")
        self.fifo_dir = os.path.join(base, "fifo")
        self.config = os.path.join(base, "config.toml")
        self.log = os.path.join(base, "containerd.log")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(root=self.root, state=self.state, sock=self.sock))
        self.proc = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([CONTAINERD, "--config", self.config], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        wait_for(lambda: self.proc.poll() is not None or self.ctr("version").returncode == 0,
                 timeout=30, what="containerd to serve")
        if self.proc.poll() is not None:
            raise AssertionError(f"containerd exited {self.proc.returncode}: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=20) -> str:
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def ctr(self, *args, check=False, timeout=120, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run([CTR, "-a", self.sock, "-n", NAMESPACE] + list(args), capture_output=True,
                           text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def run_args(self, *opts) -> list[str]:
        """``ctr run`` options that make the runc shim use pyrt-runtime, privately."""
        return ["run", "--snapshotter", "native", "--runc-binary", RUNTIME,
                "--runc-root", self.runc_root, "--fifo-dir", self.fifo_dir, *opts]

    def tasks(self) -> dict[str, str]:
        out = {}
        for line in self.ctr("task", "ls", check=True).stdout.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = f[2]
        return out

    def containers(self) -> list[str]:
        return self.ctr("container", "ls", "-q", check=True).stdout.split()

    def runtime(self, *args) -> subprocess.CompletedProcess:
        """The runtime itself, on the state the shim made (``--root RUNC_ROOT/NAMESPACE``)."""
        return subprocess.run([RUNTIME, "--root", os.path.join(self.runc_root, NAMESPACE), *args],
                              capture_output=True, text=True, timeout=60)

    def clean_containers(self) -> None:
        for cid, status in self.tasks().items():
            if status != "STOPPED":
                self.ctr("task", "kill", "-s", "SIGKILL", cid)
                try:
                    wait_for(lambda: self.tasks().get(cid) in (None, "STOPPED"), timeout=15,
                             what=f"task {cid} to stop")
                except AssertionError:
                    pass
            self.ctr("task", "delete", "-f", cid)
        for cid in self.containers():
            self.ctr("container", "rm", cid)


@pytest.fixture(scope="module")
def containerd_daemon(tmp_path_factory, demo_layout):
    """A containerd of the test's own, with the busybox demo image imported as ``IMAGE``."""
    base = str(tmp_path_factory.mktemp("containerd"))
    shared_existed = {d for d in ("", "s", "fifo", "runc")
                      if os.path.isdir(os.path.join(SHARED_RUN, d))}
    cgroups_existed = cgroup_dirs(NAMESPACE)
    cd = Containerd(base)
    try:
        archive = os.path.join(base, "busybox-oci.tar")
        subprocess.run([SKOPEO, "--insecure-policy", "copy", "-q", f"oci:{demo_layout}:latest",
                        f"oci-archive:{archive}:{IMAGE}"], check=True, capture_output=True)
        cd.start()
        cd.ctr("images", "import", "--snapshotter", "native", archive, check=True)
        assert IMAGE in cd.ctr("images", "ls", "-q", check=True).stdout.split()
        yield cd
    finally:
        try:
            if cd.proc and cd.proc.poll() is None:
                cd.clean_containers()
                cd.ctr("images", "rm", IMAGE)
        finally:
            cd.stop()
            unmount_under(base)
            remove_cgroups(cgroup_dirs(NAMESPACE) - cgroups_existed)
            # empty ones only, and only if we made them; the shims remove their sockets
            # as they exit, after their task was deleted
            ours = [os.path.join(SHARED_RUN, d) for d in ("s", "fifo", "runc", "")
                    if d not in shared_existed]
            deadline = time.monotonic() + 15
            while ours and time.monotonic() < deadline:
                for d in list(ours):
                    try:
                        os.rmdir(d)
                        ours.remove(d)
                    except FileNotFoundError:
                        ours.remove(d)
                    except OSError:
                        pass
                if ours:
                    time.sleep(0.1)
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def containerd(containerd_daemon):
    """The daemon; after the test its tasks and containers are deleted, and the
    namespace's parent cgroup (made by the runtime for ``/NAMESPACE/ID``) is removed
    once empty.  A container's own cgroup left behind is the runtime's leak: the
    no_leaks guard reports it."""
    before = cgroup_dirs(NAMESPACE)
    yield containerd_daemon
    containerd_daemon.clean_containers()
    made = cgroup_dirs(NAMESPACE) - before
    remove_cgroups({p for p in made if os.path.basename(p) == NAMESPACE})


# -- ctr run --rm ---------------------------------------------------------------------


def test_run_rm_output_and_exit_code(containerd):
    r = containerd.ctr(*containerd.run_args("--rm"), IMAGE, "once",
                       "sh", "-c", "echo hello from containerd; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                       "ls /proc | grep -c '^[0-9]'; exit 3")
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "hello from containerd"
    assert lines[1].startswith("sh -c echo")  # the container's own pid namespace
    assert int(lines[2]) <= 5
    assert containerd.containers() == []
    r = containerd.ctr(*containerd.run_args("--rm"), IMAGE, "ok", "true")
    assert r.returncode == 0, r.stderr


def test_run_env_and_cwd(containerd):
    r = containerd.ctr(*containerd.run_args("--rm", "--env", "GREETING=hi there", "--cwd", "/tmp"),
                       IMAGE, "envs", "sh", "-c", 'echo "$GREETING"; pwd; id -u')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hi there", "/tmp", "0"]


def test_run_failure_reported_through_the_json_log(containerd):
    """A command that is not there: the runtime's error reaches ctr (through the shim,
    which reads the last error of ``--log`` in json) and nothing is left running."""
    r = containerd.ctr(*containerd.run_args("--rm"), IMAGE, "broken", "/no/such/command")
    assert r.returncode != 0
    assert "/no/such/command" in r.stderr, r.stderr
    assert containerd.tasks() == {}


# -- run -d, task exec / ps / kill / delete ----------------------------------------------


def test_detached_exec_kill_delete(containerd):
    containerd.ctr(*containerd.run_args("-d"), IMAGE, "web", *TRAP, check=True)
    wait_for(lambda: containerd.tasks().get("web") == "RUNNING", what="the task to run")
    # the runtime's own view of the container the shim created
    st = json.loads(containerd.runtime("state", "web").stdout)
    assert st["status"] == "running" and st["id"] == "web" and st["pid"] > 0
    # exec: output, exit code, the container's pid namespace
    r = containerd.ctr("task", "exec", "--exec-id", "e1", "web",
                       "sh", "-c", "echo in exec; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 5")
    assert r.returncode == 5, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "in exec"
    assert out[1].startswith("sh -c trap")
    r = containerd.ctr("task", "exec", "--exec-id", "e2", "--cwd", "/tmp", "--user", "1000", "web",
                       "sh", "-c", "echo $(pwd) $(id -u)")
    assert (r.returncode, r.stdout.strip()) == (0, "/tmp 1000"), r.stderr
    # ps: the shim asks the runtime (ps --format json) for the container's pids
    r = containerd.ctr("task", "ps", "web", check=True)
    pids = [int(line.split()[0]) for line in r.stdout.splitlines()[1:] if line.split()]
    assert st["pid"] in pids and len(pids) >= 2  # sh and its sleep
    # kill (SIGTERM) reaches the trap: the task stops with 0
    containerd.ctr("task", "kill", "web", check=True)
    wait_for(lambda: containerd.tasks().get("web") == "STOPPED", timeout=20, what="the task to stop")
    r = containerd.ctr("task", "delete", "web", check=True)
    assert "exit" not in r.stderr  # ctr warns only about a non-zero exit status
    assert containerd.runtime("state", "web").returncode != 0  # the runtime deleted it
    containerd.ctr("container", "rm", "web", check=True)
    assert containerd.containers() == []


def test_kill_sigkill_exit_status(containerd):
    containerd.ctr(*containerd.run_args("-d"), IMAGE, "stubborn", "sleep", "100000", check=True)
    wait_for(lambda: containerd.tasks().get("stubborn") == "RUNNING", what="the task to run")
    containerd.ctr("task", "kill", "-s", "SIGKILL", "stubborn", check=True)
    wait_for(lambda: containerd.tasks().get("stubborn") == "STOPPED", timeout=20, what="the task to stop")
    r = containerd.ctr("task", "delete", "stubborn", check=True)
    assert "exit code 137" in r.stderr, r.stderr
    containerd.ctr("container", "rm", "stubborn", check=True)


def test_kill_all(containerd):
    """``task kill --all``: the runtime's ``kill --all`` reaches every process."""
    # the init survives SIGTERM (a handler) and waits for both sleeps: only a signal to
    # every process lets it finish (with 7)
    containerd.ctr(*containerd.run_args("-d"), IMAGE, "group", "sh", "-c",
                   'trap ":" TERM; sleep 100000 & a=$!; sleep 100000 & b=$!; '
                   'wait $a; wait $b; exit 7', check=True)
    wait_for(lambda: containerd.tasks().get("group") == "RUNNING", what="the task to run")
    wait_for(lambda: len(containerd.ctr("task", "ps", "group").stdout.splitlines()) >= 4,
             what="the sleeps to start")
    containerd.ctr("task", "kill", "--all", "-s", "SIGTERM", "group", check=True)
    wait_for(lambda: containerd.tasks().get("group") == "STOPPED", timeout=20, what="the task to stop")
    r = containerd.ctr("task", "delete", "group", check=True)
    assert "exit code 7" in r.stderr, r.stderr
    containerd.ctr("container", "rm", "group", check=True)


def test_force_delete_running(containerd):
    containerd.ctr(*containerd.run_args("-d"), IMAGE, "many", "sh", "-c",
                   "sleep 100000 & sleep 100000 & sleep 100000", check=True)
    wait_for(lambda: containerd.tasks().get("many") == "RUNNING", what="the task to run")
    r = containerd.ctr("task", "delete", "--force", "many")
    assert r.returncode == 0, r.stderr
    assert "many" not in containerd.tasks()
    containerd.ctr("container", "rm", "many", check=True)


def test_pause_resume(containerd):
    containerd.ctr(*containerd.run_args("-d"), IMAGE, "frozen", *TRAP, check=True)
    wait_for(lambda: containerd.tasks().get("frozen") == "RUNNING", what="the task to run")
    r = containerd.ctr("task", "pause", "frozen")
    assert r.returncode == 0, r.stderr
    assert containerd.tasks()["frozen"] == "PAUSED"
    r = containerd.ctr("task", "resume", "frozen")
    assert r.returncode == 0, r.stderr
    assert containerd.tasks()["frozen"] == "RUNNING"
    containerd.ctr("task", "kill", "frozen", check=True)
    wait_for(lambda: containerd.tasks().get("frozen") == "STOPPED", timeout=20, what="the task to stop")


# -- a terminal ------------------------------------------------------------------------


def test_run_tty(containerd):
    """``ctr run -t`` (the runtime gets ``--console-socket`` from the shim) driven from
    a pty the test holds."""
    master, slave = os.openpty()

    def ctty():
        os.setsid()
        fcntl.ioctl(0, __import__("termios").TIOCSCTTY, 0)

    p = subprocess.Popen([CTR, "-a", containerd.sock, "-n", NAMESPACE,
                          *containerd.run_args("--rm", "-t"), IMAGE, "tty1",
                          "sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; exit 4"],
                         stdin=slave, stdout=slave, stderr=slave, preexec_fn=ctty, close_fds=True)
    os.close(slave)
    buf = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
            elif p.poll() is not None:
                break
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
        os.close(master)
    text = buf.decode(errors="replace").replace("\r", "")
    assert rc == 4, text
    assert "/dev/pts/" in text or "/dev/console" in text, text
    assert "stdin-is-a-tty" in text, text


def test_resources(containerd):
    """ctr's limits reach pyrt's cgroups plugin in the cgroup ctr asks for (/NAMESPACE/ID)."""
    containerd.ctr(*containerd.run_args("-d", "--memory-limit", str(64 << 20), "--cpus", "0.5"),
                   IMAGE, "limited", *TRAP, check=True)
    wait_for(lambda: containerd.tasks().get("limited") == "RUNNING", what="the task to run")
    pid = json.loads(containerd.runtime("state", "limited").stdout)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"/{NAMESPACE}/limited" in f.read()
    v1 = os.path.isdir("/sys/fs/cgroup/memory")
    mem = "memory.limit_in_bytes" if v1 else "memory.max"
    assert cgroup_file(pid, "memory", mem) == str(64 << 20)
    if v1:
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    else:
        assert cgroup_file(pid, "cpu", "cpu.max").split()[0] == "50000"
    containerd.ctr("task", "kill", "limited", check=True)
    wait_for(lambda: containerd.tasks().get("limited") == "STOPPED", timeout=20, what="the task to stop")
