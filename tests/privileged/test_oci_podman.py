"""podman drives pyrt's OCI runtime: ``podman --runtime pyrt`` with a private store.

podman 4 (apt ``podman``, with conmon) runs a real image (the busybox demo image built
offline by scripts/build-demo-image, pulled from its OCI layout into podman's private
store) with ``pyrt-runtime`` as its OCI runtime, declared the way a user does it: a
containers.conf with ``[engine.runtimes] pyrt = [PATH]`` and ``runtime_supports_json``
(so podman passes ``--log-format=json --log FILE``).  Everything podman keeps is private
to the test: ``--root``, ``--runroot``, ``--tmpdir``, the containers.conf
(``CONTAINERS_CONF``), the events log, the network configuration directory; the
runtime keeps its state under its default root.  Every container is removed after each
test, the images and the store's directory at the end, and
the cgroup podman makes for conmon (``libpod_parent/conmon``) is removed if the test
made it.

``PYRT_TEST_OCI_RUNTIME=runc`` runs the same tests against runc (to check the tests).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from oci_engine_helpers import (cgroup_dirs, cgroup_file, remove_cgroups, runtime_path, unmount_under,
                                wait_for)

PODMAN = shutil.which("podman")
RUNTIME = runtime_path()

pytestmark = [
    pytest.mark.skipif(PODMAN is None or shutil.which("conmon") is None,
                       reason="podman and conmon are not installed (apt-get install podman conmon)"),
    pytest.mark.skipif(RUNTIME is None, reason="pyrt-runtime is not installed"),
]

IMAGE = "localhost/pyrt-test/busybox:latest"
TRAP = ["sh", "-c", 'trap "exit 0" TERM; echo ready; sleep 100000 & wait']

CONTAINERS_CONF = """\
[containers]
# this machine's root lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be set
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
runtime = "pyrt"
runtime_supports_json = ["crun", "runc", "pyrt", "pyrt-runtime"]

[engine.runtimes]
pyrt = ["{runtime}"]

[network]
network_config_dir = "{networks}"
"""


class Podman:
    def __init__(self, base: str, runtime: str):
        self.base = base
        self.root = os.path.join(base, "root")
        self.runroot = os.path.join(base, "run")
        self.tmpdir = os.path.join(base, "tmp")
        os.makedirs(self.tmpdir)
        self.conf = os.path.join(base, "containers.conf")
        with open(self.conf, "w") as f:
            f.write(CONTAINERS_CONF.format(events=os.path.join(base, "events.log"), runtime=runtime,
                                           networks=os.path.join(base, "networks")))
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        self.argv = [PODMAN, "--root", self.root, "--runroot", self.runroot, "--tmpdir", self.tmpdir,
                     "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--runtime", "pyrt"]

    def __call__(self, *args, check=False, timeout=120, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv + list(args), capture_output=True, text=True, env=self.env,
                           timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def popen(self, *args, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv + list(args), env=self.env, **kw)

    def container_ids(self) -> list[str]:
        return self("ps", "-aq", "--no-trunc").stdout.split()

    def running(self) -> bool:
        """Whether a podman process of this store still runs."""
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except (OSError, ValueError):
                continue
            if argv[0].endswith(b"podman") and self.root.encode() in argv:
                return True
        return False

    def wait_idle(self) -> None:
        """Wait until no podman process of this store runs any more: conmon's exit command
        (`podman container cleanup`) may still hold the store's overlay mount after the
        CLI returned."""
        wait_for(lambda: not self.running(), what="podman's exit commands")


@pytest.fixture(scope="module")
def podman_store(tmp_path_factory, demo_layout):
    """A private podman store holding the busybox demo image as ``IMAGE``."""
    base = str(tmp_path_factory.mktemp("podman"))
    pm = Podman(base, RUNTIME)
    existed = cgroup_dirs("libpod_parent")
    try:
        iid = pm("pull", "-q", f"oci:{demo_layout}:latest", check=True).stdout.split()[-1]
        pm("tag", iid, IMAGE, check=True)
        yield pm
    finally:
        pm("rm", "-af", "-t", "0")
        pm("rmi", "-af")  # (not `system reset`: it also removes the machine's podman networks)
        unmount_under(base)
        remove_cgroups(cgroup_dirs("libpod_parent") - existed)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def podman(podman_store):
    """The store; after the test every container is gone (podman rm -f) and the cgroup
    podman made for conmon during the test (if any) is removed."""
    before = cgroup_dirs("libpod_parent")
    yield podman_store
    podman_store.wait_idle()
    ids = podman_store.container_ids()
    if ids:
        podman_store("rm", "-f", "-t", "0", *ids)
    made = cgroup_dirs("libpod_parent") - before
    # conmon's own cgroup is podman's, and so is libpod_parent when podman made it for
    # this test (a fresh machine's first podman run); a container's (libpod-ID) is the
    # runtime's and must already be gone: the leak guard reports it if not
    remove_cgroups({p for p in made if os.path.basename(p) == "conmon"})
    podman_store.wait_idle()
    for top in {p for p in made if os.path.basename(p) == "libpod_parent"}:
        try:
            os.rmdir(top)  # only when empty: a leaked libpod-ID below keeps it, and is reported
        except OSError:
            pass


def inspect(pm, name) -> dict:
    return json.loads(pm("inspect", "--type", "container", name, check=True).stdout)[0]


# -- run --rm -------------------------------------------------------------------------


def test_run_rm_output_and_isolation(podman):
    r = podman("run", "--rm", "--network", "none", "--hostname", "box", IMAGE,
               "sh", "-c", "echo hello from $(hostname); id -u; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
               "ls /proc | grep -c '^[0-9]'")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "hello from box"
    assert lines[1] == "0"
    assert lines[2].startswith("sh -c ")        # the container's own pid namespace
    assert int(lines[3]) <= 5
    assert podman.container_ids() == []         # --rm removed it


def _conmon_argv(cid: str) -> list[str]:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0")]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "conmon" and cid in argv:
            return argv
    return []


def test_runtime_is_pyrt_with_json_log(podman):
    """podman really uses pyrt-runtime (``info``, conmon's ``-r``), and passes it
    ``--log FILE --log-format json`` (``runtime_supports_json``)."""
    info = json.loads(podman("info", "--format", "json", check=True).stdout)
    oci = info["host"]["ociRuntime"]
    assert oci["name"] == "pyrt"
    assert os.path.realpath(oci["path"]) == os.path.realpath(RUNTIME)
    cid = podman("run", "-d", "--name", "logged", IMAGE, *TRAP, check=True).stdout.strip()
    argv = _conmon_argv(cid)
    assert argv, "no conmon for the container"
    assert os.path.realpath(argv[argv.index("-r") + 1]) == os.path.realpath(RUNTIME)
    runtime_args = []  # conmon's "--runtime-arg X" and "--runtime-arg=X"
    for i, a in enumerate(argv):
        if a == "--runtime-arg":
            runtime_args.append(argv[i + 1])
        elif a.startswith("--runtime-arg="):
            runtime_args.append(a.split("=", 1)[1])
    joined = " ".join(runtime_args).replace("=", " ")
    assert "--log-format json" in joined, runtime_args
    assert "--log " in joined, runtime_args
    podman("rm", "-f", "-t", "0", "logged", check=True)


def test_runtime_by_path(podman):
    """The one-off form: ``podman --runtime /abs/path/pyrt-runtime`` (no containers.conf entry)."""
    argv = list(podman.argv)
    argv[argv.index("--runtime") + 1] = RUNTIME
    env = dict(podman.env)
    del env["CONTAINERS_CONF"]  # podman's defaults, the flags of the machine's rlimits instead
    r = subprocess.run(argv + ["run", "--rm", "--network", "none", "--ulimit", "nofile=20000:20000",
                               "--ulimit", "nproc=1000:1000", IMAGE, "echo", "by path"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert (r.returncode, r.stdout) == (0, "by path\n"), r.stderr


def test_exit_codes_propagate(podman):
    assert podman("run", "--rm", IMAGE, "sh", "-c", "exit 3").returncode == 3
    assert podman("run", "--rm", IMAGE, "false").returncode == 1
    # death by a signal (sent from outside: pid 1 of a pid namespace ignores its own): 128 + N
    fg = podman.popen("run", "--rm", "--name", "victim", IMAGE, "sleep", "100000",
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: podman("inspect", "-f", "{{.State.Status}}", "victim").stdout.strip()
                 == "running", what="the container to run")
        podman("kill", "-s", "KILL", "victim", check=True)
        assert fg.wait(timeout=30) == 137
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()
    assert podman.container_ids() == []


def test_missing_command_exit_127(podman):
    """A command that is not there: 127 (docker's code), with the runtime's message.  podman
    maps only an error of ``create`` that says "no such file or directory" to 127: the
    runtime must find the command before ``create`` returns, as runc does."""
    r = podman("run", "--rm", IMAGE, "/no/such/command")
    assert "/no/such/command" in r.stderr
    assert r.returncode == 127, (r.returncode, r.stderr)


def test_run_env_workdir_user(podman):
    r = podman("run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp", "-u", "1000:1000", IMAGE,
               "sh", "-c", 'echo "$GREETING"; pwd; id -u; id -g')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hi there", "/tmp", "1000", "1000"]


def test_run_stdin(podman):
    r = podman("run", "--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z", input="piped through\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "PIPED THROUGH\n"


def test_run_tty(podman):
    """``run -t``: podman (conmon) passes ``--console-socket`` and gets the pty master."""
    r = podman("run", "--rm", "-t", IMAGE, "sh", "-c", "tty; test -t 1 && echo is-a-tty; exit 4",
               stdin=subprocess.DEVNULL)
    assert r.returncode == 4, r.stderr
    out = r.stdout.replace("\r", "").splitlines()
    assert out[0].startswith("/dev/pts/") or out[0] == "/dev/console", out
    assert "is-a-tty" in out


# -- run -d, exec, stop, rm -----------------------------------------------------------


def test_detached_exec_stop_rm(podman):
    cid = podman("run", "-d", "--name", "web", IMAGE, *TRAP, check=True).stdout.strip()
    assert len(cid) == 64
    wait_for(lambda: "ready" in podman("logs", "web").stdout, timeout=20, what="the container")
    st = inspect(podman, "web")["State"]
    assert st["Status"] == "running" and st["Pid"] > 0
    # exec: output, exit code, same pid namespace as the container's init
    r = podman("exec", "web", "sh", "-c", "echo in exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
    assert r.returncode == 5, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "in exec"
    assert out[1].startswith("sh -c trap")
    r = podman("exec", "-e", "X=1", "-w", "/tmp", "-u", "1000", "web", "sh", "-c", 'echo $X $(pwd) $(id -u)')
    assert (r.returncode, r.stdout.strip()) == (0, "1 /tmp 1000"), r.stderr
    r = podman("exec", "-i", "web", "cat", input="via exec stdin\n")
    assert (r.returncode, r.stdout) == (0, "via exec stdin\n"), r.stderr
    assert podman("exec", "web", "/no/such/command").returncode == 127
    # exec -t: the runtime's exec gets --console-socket
    r = podman("exec", "-t", "web", "sh", "-c", "tty; exit 6", stdin=subprocess.DEVNULL)
    assert r.returncode == 6, r.stderr
    assert r.stdout.replace("\r", "").strip().startswith("/dev/pts/"), r.stdout
    # stop: SIGTERM reaches the trap (exit 0: killed at the time-out it would be 137)
    podman("stop", "-t", "20", "web", check=True)
    st = inspect(podman, "web")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 0
    podman("rm", "web", check=True)
    assert podman.container_ids() == []


def test_stop_escalates_to_sigkill(podman):
    """A process that ignores SIGTERM (``sleep`` as pid 1) is killed after the time-out."""
    podman("run", "-d", "--name", "stubborn", IMAGE, "sleep", "100000", check=True)
    wait_for(lambda: inspect(podman, "stubborn")["State"]["Status"] == "running", what="running")
    podman("stop", "-t", "1", "stubborn", check=True)
    st = inspect(podman, "stubborn")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    podman("rm", "stubborn", check=True)


def test_kill_signal_and_wait(podman):
    podman("run", "-d", "--name", "k", IMAGE, "sh", "-c",
           'trap "exit 42" USR1; echo ready; while :; do sleep 0.1; done', check=True)
    wait_for(lambda: "ready" in podman("logs", "k").stdout, what="the container")
    podman("kill", "-s", "USR1", "k", check=True)
    r = podman("wait", "k", check=True)
    assert r.stdout.strip() == "42"
    podman("rm", "k", check=True)


def test_rm_force_running(podman):
    podman("run", "-d", "--name", "gone", IMAGE, "sleep", "100000", check=True)
    wait_for(lambda: inspect(podman, "gone")["State"]["Status"] == "running", what="running")
    podman("rm", "-f", "-t", "0", "gone", check=True)
    assert podman.container_ids() == []


def test_create_then_start_attach(podman):
    podman("create", "--name", "later", IMAGE, "echo", "started later", check=True)
    assert inspect(podman, "later")["State"]["Status"] == "created"
    r = podman("start", "-a", "later")
    assert (r.returncode, r.stdout.strip()) == (0, "started later"), r.stderr
    podman("rm", "later", check=True)


def test_pause_unpause(podman):
    podman("run", "-d", "--name", "p", IMAGE, *TRAP, check=True)
    wait_for(lambda: "ready" in podman("logs", "p").stdout, what="the container")
    r = podman("pause", "p")
    assert r.returncode == 0, r.stderr
    assert inspect(podman, "p")["State"]["Status"] == "paused"
    r = podman("unpause", "p")
    assert r.returncode == 0, r.stderr
    assert inspect(podman, "p")["State"]["Status"] == "running"
    podman("stop", "p", check=True)
    podman("rm", "p", check=True)


def test_resources_cgroups_path_and_update(podman):
    """podman's resource flags reach pyrt's cgroups plugin through config.json, in the
    cgroup podman asks for (cgroupsPath /libpod_parent/libpod-ID); ``podman update``
    changes them through the runtime."""
    cid = podman("run", "-d", "--name", "limited", "--memory", "64m", "--pids-limit", "50",
                 IMAGE, *TRAP, check=True).stdout.strip()
    wait_for(lambda: "ready" in podman("logs", "limited").stdout, what="the container")
    pid = inspect(podman, "limited")["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"libpod-{cid}" in f.read()
    if os.path.isdir("/sys/fs/cgroup/memory"):
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    else:
        assert cgroup_file(pid, "memory", "memory.max") == str(64 << 20)
    assert cgroup_file(pid, "pids", "pids.max") == "50"
    # podman update: the runtime's `update --resources FILE` on the running container
    r = podman("update", "--memory", "128m", "--cpus", "0.5", "limited")
    assert r.returncode == 0, r.stderr
    if os.path.isdir("/sys/fs/cgroup/memory"):
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(128 << 20)
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    else:
        assert cgroup_file(pid, "memory", "memory.max") == str(128 << 20)
        assert cgroup_file(pid, "cpu", "cpu.max").split()[0] == "50000"
    assert cgroup_file(pid, "pids", "pids.max") == "50"  # untouched
    podman("stop", "limited", check=True)
    podman("rm", "limited", check=True)
