"""``pyrt-runtime`` as engines call it (runc's command line), on a busybox bundle.

Every test uses its own ``--root`` and bundle under ``tmp_path`` and deletes
(``--force``) what it created, so its cgroup and processes are gone when the
``no_leaks`` guard looks.  The runtime is started as a subprocess, as
conmon or containerd's shim start it.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from pyrt_core.runtime.state import OCI_VERSION
from pyrt_core.testing.lifecycle import read_until as _read_until  # the pty reader

RUNTIME = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def spec(args, *, terminal=False, namespaces=("mount", "pid", "ipc", "uts", "network"),
         hooks=None, annotations=None, devices_rules=None) -> dict:
    s = {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "hostname": "rt",
        "process": {"args": list(args), "env": [PATH, "HOME=/root"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0}, "terminal": terminal},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in namespaces]},
    }
    if devices_rules is not None:
        s["linux"]["resources"] = {"devices": devices_rules}
    if hooks:
        s["hooks"] = hooks
    if annotations:
        s["annotations"] = annotations
    return s


def run(argv, input=None, timeout=30, **kw) -> subprocess.CompletedProcess:
    """subprocess.run with stdout/stderr in files: a container's process inherits the
    runtime's stdio (as under conmon), so pipes would stay open after the runtime exits."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        r = subprocess.run(argv, input=input.encode() if input is not None else None,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=out, stderr=err, timeout=timeout, **kw)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, r.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


class Runtime:
    """pyrt-runtime with a private --root; remembers ids to delete at the end."""

    def __init__(self, tmp_path, rootfs):
        self.root = str(tmp_path / "state")
        self.bundle = os.path.dirname(rootfs)
        self.ids: list[str] = []
        self.global_args: list[str] = []

    def __call__(self, *args, input=None, check=False, timeout=30, **kw):
        argv = [RUNTIME, "--root", self.root, *self.global_args, *args]
        r = run(argv, input=input, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{args}: rc={r.returncode} {r.stderr}")
        return r

    def write_config(self, s: dict) -> None:
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(s, f)

    def create(self, cid, args, *extra, start=False, **spec_kw):
        self.write_config(spec(args, **spec_kw))
        self.ids.append(cid)
        self("create", "--bundle", self.bundle, *extra, cid, check=True)
        if start:
            self("start", cid, check=True)

    def state(self, cid) -> dict:
        r = self("state", cid, check=True)
        return json.loads(r.stdout)

    def ps(self, cid) -> list[int]:
        return json.loads(self("ps", "--format", "json", cid, check=True).stdout)

    def wait_status(self, cid, status, timeout=10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st["status"] == status or time.monotonic() > deadline:
                return st
            time.sleep(0.02)

    def record(self, cid) -> dict:
        with open(os.path.join(self.root, cid, "state.json")) as f:
            return json.load(f)

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid)


def _set_subreaper(on: bool) -> None:
    from pyrt_namespaces import syscalls

    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1 if on else 0, what="PR_SET_CHILD_SUBREAPER")


def _children() -> set[int]:
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                out.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def _reap_container_zombies() -> None:
    """Reap the children that are dead container processes (in another pid namespace),
    never the pyrt-runtime processes subprocess is waiting for."""
    mine = os.readlink("/proc/self/ns/pid")
    for pid in _children():
        try:
            with open(f"/proc/{pid}/stat") as f:
                dead = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            if dead and os.readlink(f"/proc/{pid}/ns/pid") != mine:
                os.waitpid(pid, os.WNOHANG)
        except (OSError, ChildProcessError):
            pass


class _Reaper(threading.Thread):
    """What conmon or containerd's shim do for the processes reparented to them: reap
    them as they die.  (A pid namespace's init cannot finish dying while a process of
    its namespace waits to be reaped by a parent outside it, so delete would hang.)"""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.01):
            _reap_container_zombies()


@pytest.fixture
def rt(tmp_path, busybox_rootfs):
    """The test process is a child subreaper while it runs, as conmon and containerd's
    shim are: the containers' processes are reparented to it and reaped here."""
    r = Runtime(tmp_path, busybox_rootfs)
    _set_subreaper(True)
    reaper = _Reaper()
    reaper.start()
    try:
        yield r
    finally:
        r.cleanup()
        reaper.stop.set()
        reaper.join()
        _reap_container_zombies()
        _set_subreaper(False)


def _cgroup_dirs(rt, cid) -> list[str]:
    rec = rt.record(cid)["resources"]
    return sorted(set((rec.get("paths") or {}).values()))


# -- lifecycle and state ------------------------------------------------------------------

def test_create_start_state_kill_delete(rt, tmp_path):
    pidfile = tmp_path / "init.pid"
    rt.create("life", ["sleep", "100"], "--pid-file", str(pidfile),
              annotations={"org.example.k": "v"})
    st = rt.state("life")
    assert st["status"] == "created"
    assert st["ociVersion"] == OCI_VERSION and st["id"] == "life"
    assert st["pid"] == int(pidfile.read_text()) > 0
    assert st["bundle"] == rt.bundle and st["rootfs"] == os.path.join(rt.bundle, "rootfs")
    assert st["annotations"] == {"org.example.k": "v"} and st["owner"] == ""
    created = datetime.datetime.fromisoformat(st["created"][:26] + "+00:00")
    assert abs(created.timestamp() - time.time()) < 60
    rt("start", "life", check=True)
    assert rt.state("life")["status"] == "running"
    r = rt("start", "life")
    assert r.returncode == 1 and "running" in r.stderr
    rt("kill", "life", "KILL", check=True)
    st = rt.wait_status("life", "stopped")
    assert st["status"] == "stopped" and st["pid"] == 0
    rt("delete", "life", check=True)
    r = rt("state", "life")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_init_is_in_its_cgroups_joined_by_itself_on_v1(rt):
    # cgroup v1: the init moves itself into every hierarchy (a self-move skips the
    # kernel's RCU wait); v2: the runtime places it.  Either way its cgroups are the
    # container's before it runs anything.
    from pyrt_cgroups import detect

    rt.create("selfjoin", ["sleep", "100"])
    rec = rt.record("selfjoin")
    assert rec["resources"].get("self_join", False) is (detect.find_hierarchies().version == 1)
    with open(f"/proc/{rec['pid']}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    path = rec["resources"]["path"]
    by_controller = {c: p for _, ctrls, p in lines for c in ctrls.split(",") if c}
    for controller in rec["resources"]["paths"]:
        assert by_controller[controller] == path, (controller, lines)
    rt("delete", "--force", "selfjoin", check=True)


def test_create_imports_neither_pluggy_nor_attrs_once_hooks_are_recorded(rt, tmp_path):
    # the first create in a fresh cache loads every plugin with pluggy (and records the
    # hooks); the next ones call the recorded implementations (pyrt_core.hookcall), with
    # nothing heavy imported: the runtime's latency (docs/oci-runtime.md, benchmark)
    rt.write_config(spec(["true"]))
    heavy = ("pluggy", "attr", "attrs", "inspect", "typing", "re", "enum", "json", "socket",
             "hashlib", "argparse", "importlib.metadata")
    code = ("import sys\nfrom pyrt_core.runtime import cli\n"
            "rc = cli.main(sys.argv[1:])\n"
            f"print(rc, [m for m in {heavy!r} if m in sys.modules])\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    loaded = []
    for cid in ("lean1", "lean2"):
        rt.ids.append(cid)
        r = run([sys.executable, "-c", code, "--root", rt.root, "create", "--bundle",
                 rt.bundle, cid], env=env)
        assert r.stdout.startswith("0 "), r.stdout + r.stderr
        loaded.append(r.stdout.split(" ", 1)[1].strip())
        # start calls the isolation plugin's pyrt_isolation_start from the plan create
        # kept in the state: no plugin record read, nothing heavy imported
        r = run([sys.executable, "-c", code, "--root", rt.root, "start", cid], env=env)
        assert r.stdout.startswith("0 "), r.stdout + r.stderr
        loaded.append(r.stdout.split(" ", 1)[1].strip())
        rt("delete", "--force", cid, check=True)
    assert "'pluggy'" in loaded[0]
    assert loaded[1:] == ["[]", "[]", "[]"]


def test_signals_by_number_name_and_prefix(rt):
    # sh is pid 1 of its namespace: only signals it handles reach it
    rt.create("sigs", ["sh", "-c", "trap 'echo usr1 >> /tmp/got' USR1; "
                                   "trap 'echo hup >> /tmp/got' HUP; "
                                   "trap 'exit 0' TERM; while :; do sleep 0.05; done"], start=True)
    got = os.path.join(rt.bundle, "rootfs", "tmp", "got")
    rt("kill", "sigs", "SIGUSR1", check=True)
    rt("kill", "sigs", "1", check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(got) and len(open(got).read().split()) == 2:
            break
        time.sleep(0.05)
    assert sorted(open(got).read().split()) == ["hup", "usr1"]
    rt("kill", "sigs", check=True)  # default SIGTERM
    assert rt.wait_status("sigs", "stopped")["status"] == "stopped"
    r = rt("kill", "sigs", "KILL")
    assert r.returncode == 1 and "container not running" in r.stderr


def test_bad_signal_and_unknown_id(rt):
    rt.create("badsig", ["sleep", "100"], start=True)
    for bad in ("NOPE", "0", "99", "SIGFOO"):
        r = rt("kill", "badsig", bad)
        assert r.returncode == 1 and "invalid signal" in r.stderr, bad
    assert rt.state("badsig")["status"] == "running"
    for cmd in (["state"], ["start"], ["kill"], ["delete"], ["pause"], ["resume"], ["ps"],
                ["exec", "--process", "/nonexistent"], ["update", "--pids-limit", "5"],
                ["events", "--stats"]):
        r = rt(*cmd, "no-such-id")
        assert r.returncode == 1, (cmd, r.stderr)
        assert r.stderr.count("\n") == 1
        if cmd[0] != "exec":
            assert "container no-such-id does not exist" in r.stderr, (cmd, r.stderr)


def test_delete_running_refused_force_twice(rt):
    rt.create("del", ["sleep", "100"], start=True)
    pid = rt.state("del")["pid"]
    cgroups = _cgroup_dirs(rt, "del")
    r = rt("delete", "del")
    assert r.returncode == 1 and "not stopped" in r.stderr
    assert rt.state("del")["status"] == "running"
    rt("delete", "--force", "del", check=True)
    assert not os.path.exists(f"/proc/{pid}/ns") or not _alive(pid)
    assert not any(os.path.exists(d) for d in cgroups)
    assert rt("delete", "--force", "del").returncode == 0  # harmless (containerd)
    r = rt("delete", "del")
    assert r.returncode == 1 and "does not exist" in r.stderr


def _alive(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_delete_created_container_and_create_failure_leaves_nothing(rt, tmp_path):
    rt.create("made", ["sleep", "100"])
    pid = rt.state("made")["pid"]
    rt("delete", "made", check=True)  # as runc: a created container may be deleted
    assert not _alive(pid)
    # a bundle with no config / a bad config: rc 1, no state, no cgroup
    empty = tmp_path / "empty"
    empty.mkdir()
    r = rt("create", "--bundle", str(empty), "broken")
    assert r.returncode == 1 and "config.json" in r.stderr
    with open(os.path.join(rt.bundle, "config.json"), "w") as f:
        f.write("{not json")
    r = rt("create", "--bundle", rt.bundle, "broken")
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, "broken"))
    # a pid file that cannot be written: the created init and its cgroup are undone
    rt.write_config(spec(["sleep", "100"]))
    rt.ids.append("nopid")
    r = rt("create", "--bundle", rt.bundle, "--pid-file", str(empty), "nopid")  # a directory
    assert r.returncode == 1 and "pid file" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, "nopid"))
    assert not any(os.path.exists(os.path.join(h, "pyrt", "pyrt-nopid"))
                   for h in _cgroup_hierarchies())
    assert rt("list", "-q").stdout.split() == []


def _cgroup_hierarchies() -> list[str]:
    base = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        return [base]
    return [os.path.join(base, h) for h in os.listdir(base)]


def test_systemd_cgroup_refused(rt):
    rt.write_config(spec(["true"]))
    r = rt("--systemd-cgroup", "create", "--bundle", rt.bundle, "sd")
    assert r.returncode == 1 and "--systemd-cgroup is not supported" in r.stderr
    assert r.stderr.count("\n") == 1
    assert not os.path.exists(os.path.join(rt.root, "sd"))


def test_version():
    r = subprocess.run([RUNTIME, "--version"], capture_output=True, text=True, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("pyrt-runtime version ") and lines[1] == f"spec: {OCI_VERSION}"


# -- logging -----------------------------------------------------------------------------

def test_log_format_json_error_line_and_debug(rt, tmp_path):
    log = tmp_path / "log.json"
    rt.global_args = ["--log", str(log), "--log-format", "json"]
    r = rt("state", "ghost")
    assert r.returncode == 1 and "does not exist" in r.stderr
    rt.create("logged", ["sleep", "100"], start=True)
    r = rt("kill", "logged", "BOGUS")
    assert r.returncode == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["level"] for x in lines] == ["error", "error"]  # no debug without --debug
    assert "ghost does not exist" in lines[0]["msg"] and "invalid signal" in lines[1]["msg"]
    for x in lines:
        datetime.datetime.fromisoformat(x["time"][:26] + "+00:00")
    rt.global_args += ["--debug"]
    rt("state", "logged", check=True)
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "debug" and "state logged" in last["msg"]
    text_log = tmp_path / "log.txt"
    rt.global_args = ["--log", str(text_log)]
    rt("state", "ghost")
    assert text_log.read_text().startswith("time=") and "level=error" in text_log.read_text()


# -- exec --------------------------------------------------------------------------------

def test_exec_waits_and_returns_the_exit_code(rt):
    rt.create("ex", ["sleep", "100"], start=True)
    r = rt("exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert r.returncode == 7 and r.stdout == "out\n" and "err" in r.stderr
    r = rt("exec", "--cwd", "/tmp", "-e", "FOO=bar", "-u", "1000:1000", "ex",
           "sh", "-c", "id -u; id -g; pwd; echo $FOO; hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "1000", "/tmp", "bar", "rt"]
    # in the container's pid namespace: pid 1 is the init
    r = rt("exec", "ex", "cat", "/proc/1/cmdline")
    assert r.stdout.split("\0")[0] == "sleep"
    assert rt("exec", "ex", "--", "sh", "-c", "exit 3").returncode == 3
    r = rt("exec", "ex", "nonexistent-command")
    assert r.returncode == 127 and "nonexistent-command" in r.stderr


def test_exec_process_file_detached_pid_file(rt, tmp_path):
    rt.create("exd", ["sleep", "100"], start=True)
    init = rt.state("exd")["pid"]
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": ["sh", "-c", "echo $X > /tmp/x; exec sleep 100"],
                                "env": [PATH, "X=from-file"], "cwd": "/",
                                "user": {"uid": 0, "gid": 0}}))
    pidfile = tmp_path / "exec.pid"
    rt("exec", "--process", str(proc), "--detach", "--pid-file", str(pidfile), "exd", check=True)
    pid = int(pidfile.read_text())
    assert _alive(pid)
    for ns in ("pid", "mnt", "net", "uts", "ipc"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/{init}/ns/{ns}")
    with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{init}/cgroup") as b:
        assert a.read() == b.read()
    deadline = time.monotonic() + 10
    target = os.path.join(rt.bundle, "rootfs", "tmp", "x")
    while not os.path.exists(target) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert open(target).read() == "from-file\n"
    assert sorted(rt.ps("exd")) == sorted([init, pid])
    rt("delete", "--force", "exd", check=True)
    assert not _alive(pid)


def test_exec_bad_input(rt, tmp_path):
    rt.create("exbad", ["sleep", "100"], start=True)
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    r = rt("exec", "--process", str(bad), "exbad")
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    bad.write_text(json.dumps({"args": []}))
    r = rt("exec", "--process", str(bad), "exbad")
    assert r.returncode == 1 and "process.args" in r.stderr
    r = rt("exec", "exbad")
    assert r.returncode == 1 and "needs a command" in r.stderr
    r = rt("exec", "-u", "root", "exbad", "true")
    assert r.returncode == 1 and "--user" in r.stderr
    rt("kill", "exbad", "KILL", check=True)
    rt.wait_status("exbad", "stopped")
    r = rt("exec", "exbad", "true")
    assert r.returncode == 1 and "container not running" in r.stderr


def test_exec_tty_through_console_socket(rt, tmp_path):
    rt.create("extty", ["sleep", "100"], start=True)
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    try:
        p = subprocess.Popen([RUNTIME, "--root", rt.root, "exec", "-t", "--console-socket",
                              sock_path, "extty", "sh", "-c",
                              "tty; test -t 0 && test -t 1 && echo is-a-tty; echo done"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        srv.settimeout(10)
        conn, _ = srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 64, 1)
        master = fds[0]
        try:
            out = _read_until(master, b"done")
        finally:
            rc = p.wait(timeout=10)
            os.close(master)
        assert rc == 0, p.stderr.read()
        assert b"/dev/pts/" in out and b"is-a-tty" in out and b"done" in out
    finally:
        srv.close()


def test_create_with_console_socket(rt, tmp_path):
    sock_path = str(tmp_path / "init-console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(10)
    master = None
    try:
        # a config that denies every device (as podman and containerd write it, then allow
        # some): the runtime still allows the pty, as runc
        rt.write_config(spec(["sh", "-c", "tty; test -t 0 && echo is-a-tty; echo done"],
                             terminal=True, devices_rules=[{"allow": False, "access": "rwm"}]))
        rt.ids.append("ctty")
        r = rt("create", "--bundle", rt.bundle, "--console-socket", sock_path, "ctty")
        assert r.returncode == 0, r.stderr
        conn, _ = srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 64, 1)
        master = fds[0]
        rt("start", "ctty", check=True)
        out = _read_until(master, b"done")
        assert b"/dev/pts/0" in out and b"is-a-tty" in out, out
        # terminal without a console socket and no tty as stdin: refused
        r = rt("create", "--bundle", rt.bundle, "ctty2")
        assert r.returncode == 1 and "console-socket" in r.stderr
        rt.write_config(spec(["true"]))
        r = rt("create", "--bundle", rt.bundle, "--console-socket", sock_path, "ctty3")
        assert r.returncode == 1 and "terminal" in r.stderr
    finally:
        srv.close()
        if master is not None:
            os.close(master)


# -- preserve-fds ------------------------------------------------------------------------

def test_preserve_fds_create_and_exec(rt):
    r_fd, w_fd = os.pipe()
    try:
        rt.write_config(spec(["sh", "-c", "echo from-init >&3; exec sleep 100"]))
        rt.ids.append("pfd")
        # the write end becomes fd 3 of the runtime (and of the container's process)
        def as_fd3():
            os.dup2(w_fd, 3)

        r = run([RUNTIME, "--root", rt.root, "create", "--bundle", rt.bundle,
                 "--preserve-fds", "1", "pfd"], preexec_fn=as_fd3, close_fds=False)
        assert r.returncode == 0, r.stderr
        rt("start", "pfd", check=True)
        r = run([RUNTIME, "--root", rt.root, "exec", "--preserve-fds", "1", "pfd",
                 "sh", "-c", "echo from-exec >&3"], preexec_fn=as_fd3, close_fds=False)
        assert r.returncode == 0, r.stderr
        # without --preserve-fds, fd 3 is closed in the process
        r = run([RUNTIME, "--root", rt.root, "exec", "pfd", "sh", "-c", "echo leaked >&3"],
                preexec_fn=as_fd3, close_fds=False)
        assert r.returncode != 0
        os.close(w_fd)
        w_fd = None
        rt("delete", "--force", "pfd", check=True)
        data = os.read(r_fd, 4096)
        assert sorted(data.decode().split()) == ["from-exec", "from-init"]
    finally:
        os.close(r_fd)
        if w_fd is not None:
            os.close(w_fd)


def test_preserve_fds_not_open_is_refused(rt):
    rt.write_config(spec(["true"]))
    r = rt("create", "--bundle", rt.bundle, "--preserve-fds", "40", "pfdbad")
    assert r.returncode == 1 and "not open" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, "pfdbad"))


# -- ps, list, kill --all ---------------------------------------------------------------

def test_ps_json_and_table_and_kill_all(rt):
    # no pid namespace: the children are not killed with the init, only by --all
    rt.create("many", ["sh", "-c", "sleep 1000 & sleep 1000 & wait"], start=True,
              namespaces=("mount", "ipc", "uts", "network"))
    init = rt.state("many")["pid"]
    deadline = time.monotonic() + 10
    while len(rt.ps("many")) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = rt.ps("many")
    assert init in pids and len(pids) == 3
    table = rt("ps", "many", check=True).stdout.splitlines()
    assert "PID" in table[0].split() and len(table) == 4
    rt("kill", "--all", "many", "KILL", check=True)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(_alive(p) for p in pids)
    assert rt.wait_status("many", "stopped")["status"] == "stopped"
    for p in pids:  # in our pid namespace, so the fixture's reaper leaves them: reap them here
        try:
            os.waitpid(p, 0)
        except ChildProcessError:
            pass


def test_list_formats(rt):
    rt.create("la", ["sleep", "100"], start=True)
    rt.create("lb", ["sleep", "100"])
    assert rt("list", "-q", check=True).stdout.split() == ["la", "lb"]
    js = json.loads(rt("list", "--format", "json", check=True).stdout)
    assert [(s["id"], s["status"]) for s in js] == [("la", "running"), ("lb", "created")]
    assert all(s["pid"] > 0 and s["bundle"] == rt.bundle for s in js)
    table = rt("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [line.split()[0] for line in table[1:]] == ["la", "lb"]
    r = rt("list", "--format", "yaml")
    assert r.returncode == 1 and "invalid format" in r.stderr


# -- pause, resume, update, events ----------------------------------------------------------

def _frozen(rt, cid) -> bool:
    for d in _cgroup_dirs(rt, cid):
        for f, want in (("freezer.state", "FROZEN"), ("cgroup.freeze", "1")):
            p = os.path.join(d, f)
            if os.path.exists(p):
                return open(p).read().strip() == want
    raise AssertionError("no freezer file")


def test_pause_resume(rt):
    rt.create("pz", ["sleep", "100"], start=True)
    rt("pause", "pz", check=True)
    assert rt.state("pz")["status"] == "paused" and _frozen(rt, "pz")
    r = rt("exec", "pz", "true")
    assert r.returncode == 1 and "paused" in r.stderr
    r = rt("delete", "pz")
    assert r.returncode == 1 and "not stopped" in r.stderr
    rt("resume", "pz", check=True)
    assert rt.state("pz")["status"] == "running" and not _frozen(rt, "pz")
    r = rt("resume", "pz")
    assert r.returncode == 1 and "not paused" in r.stderr
    rt("pause", "pz", check=True)
    rt("delete", "--force", "pz", check=True)  # a paused container is killed and thawed
    assert rt("state", "pz").returncode == 1


def test_pause_stopped_refused(rt):
    rt.create("pzs", ["true"], start=True)
    rt.wait_status("pzs", "stopped")
    r = rt("pause", "pzs")
    assert r.returncode == 1 and "container not running" in r.stderr


def _read_limit(rt, cid, v1: str, v2: str) -> str:
    for d in _cgroup_dirs(rt, cid):
        for f in (v2, v1):
            p = os.path.join(d, f)
            if os.path.exists(p):
                return open(p).read().strip()
    raise AssertionError(f"no {v1}/{v2}")


def test_update_resources_file_stdin_and_flags(rt, tmp_path):
    rt.create("up", ["sleep", "100"], start=True)
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"pids": {"limit": 42}}))
    rt("update", "--resources", str(res), "up", check=True)
    assert _read_limit(rt, "up", "pids.max", "pids.max") == "42"
    rt("update", "--resources", "-", "up", input=json.dumps({"pids": {"limit": 43}}), check=True)
    assert _read_limit(rt, "up", "pids.max", "pids.max") == "43"
    rt("update", "--memory", "64m", "--pids-limit", "44", "up", check=True)
    assert _read_limit(rt, "up", "pids.max", "pids.max") == "44"
    assert _read_limit(rt, "up", "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    r = rt("update", "--resources", "-", "up", input="[1, 2]")
    assert r.returncode == 1 and "JSON object" in r.stderr
    r = rt("update", "--memory", "lots", "up")
    assert r.returncode == 1 and "--memory" in r.stderr


def test_events_stats_one_line(rt):
    rt.create("ev", ["sleep", "100"], start=True)
    r = rt("events", "--stats", "ev", check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == "ev"
    assert ev["data"]["pids"]["current"] >= 1


# -- features ------------------------------------------------------------------------------

def test_features_json(rt):
    f = json.loads(rt("features", check=True).stdout)
    assert f["ociVersionMin"] == "1.0.0" and f["ociVersionMax"] == OCI_VERSION
    assert "poststart" in f["hooks"] and "poststop" in f["hooks"]
    assert {"bind", "rbind", "ro", "nosuid", "rprivate"} <= set(f["mountOptions"])
    linux = f["linux"]
    assert {"mount", "pid", "network", "ipc", "uts", "user", "cgroup"} <= set(linux["namespaces"])
    assert "CAP_SYS_ADMIN" in linux["capabilities"]
    assert linux["cgroup"]["systemd"] is False and linux["cgroup"]["v2"] is True
    import importlib.util

    has_seccomp = importlib.util.find_spec("pyrt_core.runtime.seccomp_config") is not None
    assert linux["seccomp"]["enabled"] is has_seccomp
    assert linux["apparmor"] == {"enabled": False} and linux["selinux"] == {"enabled": False}


# -- hooks -------------------------------------------------------------------------------

def test_poststart_and_poststop_hooks(rt, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    log = tmp_path / "log.json"

    def hook(name):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{name}"]}

    hooks = {"poststart": [{"path": "/bin/false"}, hook("poststart")],
             "poststop": [hook("poststop")]}
    rt.global_args = ["--log", str(log), "--log-format", "json"]
    rt.create("hk", ["sleep", "100"], hooks=hooks)
    assert not (out / "poststart").exists()
    r = rt("start", "hk")
    assert r.returncode == 0, r.stderr  # a failing poststart hook is a warning
    st = json.loads((out / "poststart").read_text())
    assert st["id"] == "hk" and st["status"] == "running" and st["pid"] > 0
    warn = json.loads(log.read_text().splitlines()[-1])
    assert warn["level"] == "warning" and "/bin/false" in warn["msg"]
    assert not (out / "poststop").exists()
    rt("delete", "--force", "hk", check=True)
    st = json.loads((out / "poststop").read_text())
    assert st["id"] == "hk" and st["status"] == "stopped"
