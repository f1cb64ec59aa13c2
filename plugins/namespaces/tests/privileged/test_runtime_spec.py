"""Runtime-spec features of the namespaces plugin against the real kernel: hooks run
as real scripts, domainname, personality, no-pivot, joining a mount namespace by
path, the default devices, and the console opened inside the container."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from pyrt_core.errors import RuntimeError_
from pyrt_core.runtime.config import Hook, Hooks, Namespace
from pyrt_core.testing import machine
from pyrt_core.testing.lifecycle import read_until as _read_until
from pyrt_namespaces import mounts
from test_namespaces import (  # noqa: F401 - the fixture is used by every test here
    DEFAULT_NAMESPACES, Run, docker_config, mount, reaped, sh,
)


def shell_hook(script: str, timeout: int | None = None) -> Hook:
    return Hook("/bin/sh", ("sh", "-c", script), ("PATH=/usr/bin:/bin",), timeout)


def ns_of(pid, name: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


# -- hooks -------------------------------------------------------------------------------

def test_create_hooks_run_in_order_with_the_state_and_in_their_namespaces(busybox_rootfs, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    record = ('cat > {d}/{p}.json; readlink /proc/self/ns/mnt > {d}/{p}.mnt; '
              'echo {p} >> {d}/order')
    hooks = Hooks(
        prestart=[shell_hook(record.format(d=out, p="prestart"))],
        create_runtime=[shell_hook(record.format(d=out, p="createRuntime"))],
        create_container=[shell_hook(record.format(d=out, p="createContainer"))],
        # runs after pivot_root: its path and files are the container's
        start_container=[shell_hook("cat > /hooks/startContainer.json; echo startContainer "
                                    ">> /hooks/order")],
    )
    cfg = docker_config(busybox_rootfs, ["sh", "-c", "echo user >> /hooks/order"], hooks=hooks,
                        annotations={"a": "b"},
                        extra_mounts=[mount("/hooks", "bind", str(out), ["rbind", "rw"])])
    r = Run(cfg)
    try:
        pid = r.proc.pid
        assert (out / "order").read_text().split() == ["prestart", "createRuntime", "createContainer"]
        for phase in ("prestart", "createRuntime"):
            state = json.loads((out / f"{phase}.json").read_text())
            assert state == {"ociVersion": "1.0.2", "id": "nstest", "status": "creating",
                             "pid": pid, "bundle": cfg.bundle, "annotations": {"a": "b"}}
            # the runtime's namespace, not the container's
            assert (out / f"{phase}.mnt").read_text().strip() == ns_of("self", "mnt")
        inside = json.loads((out / "createContainer.json").read_text())
        assert (inside["status"], inside["pid"]) == ("creating", 1)  # pid 1 in its pid namespace
        assert (out / "createContainer.mnt").read_text().strip() == ns_of(pid, "mnt")
        assert not (out / "startContainer.json").exists()
        code, _ = r.finish()
        assert code == 0
    finally:
        r.close()
    assert (out / "order").read_text().split() == [
        "prestart", "createRuntime", "createContainer", "startContainer", "user"]
    started = json.loads((out / "startContainer.json").read_text())
    assert (started["status"], started["pid"], started["id"]) == ("created", 1, "nstest")


@pytest.mark.parametrize("phase", ["prestart", "create_runtime", "create_container"])
def test_a_failing_create_hook_fails_create_and_leaves_nothing(busybox_rootfs, tmp_path, phase):
    marker = tmp_path / "user-ran"
    hooks = Hooks(**{phase: [shell_hook("echo hook says no >&2; exit 7")]})
    cfg = docker_config(busybox_rootfs, ["touch", str(marker)], hooks=hooks)
    placed = []
    with pytest.raises(RuntimeError_) as e:
        Run(cfg, place=placed.append)
    name = {"prestart": "prestart", "create_runtime": "createRuntime",
            "create_container": "createContainer"}[phase]
    message = str(e.value)
    assert "\n" not in message
    assert f"{name} hook /bin/sh -c echo hook says no" in message
    assert "exited with status 7: hook says no" in message
    assert placed and not os.path.exists(f"/proc/{placed[0]}")  # the init was killed and reaped
    assert not marker.exists()


def test_a_hook_timeout_fails_create(busybox_rootfs, tmp_path):
    pidfile = tmp_path / "hook.pid"
    cfg = docker_config(busybox_rootfs, ["true"],
                        hooks=Hooks(create_runtime=[shell_hook(f"echo $$ > {pidfile}; exec sleep 30",
                                                               timeout=1)]))
    with pytest.raises(RuntimeError_, match="createRuntime hook .* timed out after 1s"):
        Run(cfg)
    # the hook was killed and reaped at its time-out, not left to sleep its 30 s
    assert not os.path.exists(f"/proc/{int(pidfile.read_text())}")


def test_a_failing_start_container_hook_fails_start(busybox_rootfs, tmp_path):
    marker = tmp_path / "user-ran"
    cfg = docker_config(busybox_rootfs, ["touch", "/never"],
                        hooks=Hooks(start_container=[shell_hook("exit 4")]))
    r = Run(cfg)
    try:
        with pytest.raises(RuntimeError_, match="startContainer hook /bin/sh -c exit 4 exited "
                                                "with status 4"):
            r.proc.start()
        assert r.proc.wait() != 0
    finally:
        r.close()
    assert not os.path.exists(os.path.join(busybox_rootfs, "never"))
    assert not marker.exists()


# -- uts, personality --------------------------------------------------------------------

def test_domainname_is_set_in_the_container_only(busybox_rootfs):
    with open("/proc/sys/kernel/domainname") as f:
        host = f.read()
    code, out = sh(busybox_rootfs, "cat /proc/sys/kernel/domainname; hostname",
                   domainname="pyrt.example")
    assert (code, out.split()) == (0, ["pyrt.example", "pyrt-test"])
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read() == host


def test_domainname_needs_a_uts_namespace(busybox_rootfs):
    ns = tuple(n for n in DEFAULT_NAMESPACES if n != "uts")
    with pytest.raises(RuntimeError_, match="domainname needs a uts namespace"):
        Run(docker_config(busybox_rootfs, ["true"], namespaces=ns, hostname=None,
                          domainname="x"))


def test_time_offsets_shift_the_containers_clocks_only(busybox_rootfs):
    # linux.timeOffsets in a new time namespace: boottime moves /proc/uptime, monotonic
    # the clock behind it, in the container only
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    code, out = sh(busybox_rootfs, "cat /proc/uptime; readlink /proc/self/ns/time",
                   namespaces=DEFAULT_NAMESPACES + ("time",),
                   time_offsets={"boottime": (10**6, 0), "monotonic": (5 * 10**5, 0)})
    assert code == 0, out
    uptime, _, ns = out.split()
    assert host + 10**6 - 5 < float(uptime) < host + 10**6 + 120
    assert ns != os.readlink("/proc/self/ns/time")
    with open("/proc/uptime") as f:
        assert float(f.read().split()[0]) < host + 120  # the host's clocks are untouched


@machine.needs("x86_64", detail="LINUX32 is i686 on x86_64 only")
def test_personality_linux32(busybox_rootfs):
    assert sh(busybox_rootfs, "uname -m", personality="LINUX32") == (0, "i686\n")
    assert sh(busybox_rootfs, "uname -m", personality="LINUX") == (0, "x86_64\n")


# -- root: no pivot, default devices -----------------------------------------------------

def _unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (``\\040`` for a space) undone."""
    out, i = "", 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out += chr(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out += field[i]
            i += 1
    return out


def root_field_of_a_bind(path: str) -> str:
    """The mountinfo root field (the 4th) a bind mount of ``path`` gets: where ``path``
    is within its filesystem.  That is ``path`` itself only when the mount it lies on
    is its filesystem's root: where / is a bind mount of a subdirectory (CI systems
    that build in containers) or /tmp a mount of its own, it is the root field of
    that mount joined with the rest of ``path``."""
    path = os.path.realpath(path)
    root = mountpoint = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = _unescape(fields[4])
            inside = path == mp or path.startswith(mp.rstrip("/") + "/")
            if inside and (mountpoint is None or len(mp) >= len(mountpoint)):  # later ones cover
                root, mountpoint = _unescape(fields[3]), mp
    rest = os.path.relpath(path, mountpoint)
    return root if rest == "." else os.path.join(root, rest)


def test_no_pivot_moves_the_root_and_chroots(busybox_rootfs, monkeypatch):
    def no_pivot_root():
        raise OSError(22, "pivot_root must not be used with no_pivot")

    monkeypatch.setattr(mounts, "pivot_to_cwd", no_pivot_root)  # inherited by the forked child
    script = "ls /; cat /proc/self/mountinfo; echo x > /tmp/w && cat /tmp/w; hostname"
    code, out = sh(busybox_rootfs, script, no_pivot=True)
    assert code == 0, out
    assert {"bin", "proc", "dev", "etc"} <= set(out.split())
    lines = out.splitlines()
    roots = [line for line in lines if len(line.split()) > 4 and line.split()[4] == "/"]
    # the container's / is the rootfs directory (bound onto itself, moved), not the host's /
    assert len(roots) == 1 and _unescape(roots[0].split()[3]) == root_field_of_a_bind(busybox_rootfs), out
    assert not any(" /proc/sys/fs/binfmt_misc " in line for line in lines)  # host mounts gone
    assert lines[-2:] == ["x", "pyrt-test"]
    # and the same configuration refuses to start when pivot_root is the way in
    with pytest.raises(RuntimeError_, match="pivot_root must not be used"):
        Run(docker_config(busybox_rootfs, ["true"]))


def test_default_devices_are_created_and_usable(busybox_rootfs):
    script = ("for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done;"
              " head -c 4 /dev/zero | wc -c; echo hi > /dev/null && echo wrote")
    code, out = sh(busybox_rootfs, script, devices=[])  # only the spec's defaults
    assert code == 0, out
    assert out.splitlines() == ["/dev/null 1:3 666", "/dev/zero 1:5 666", "/dev/full 1:7 666",
                                "/dev/random 1:8 666", "/dev/urandom 1:9 666", "/dev/tty 5:0 666",
                                "4", "wrote"]


# -- namespaces by path ------------------------------------------------------------------

@pytest.fixture
def mount_ns_holder():
    """A host process in a new (private) mount namespace to join by path."""
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "600"])
    try:
        for _ in range(200):
            if ns_of(p.pid, "mnt") != ns_of("self", "mnt"):
                break
            time.sleep(0.01)
        yield p
    finally:
        p.kill()
        p.wait()


def test_join_a_mount_namespace_by_path(busybox_rootfs, mount_ns_holder):
    path = f"/proc/{mount_ns_holder.pid}/ns/mnt"
    nss = [Namespace(n) for n in DEFAULT_NAMESPACES if n != "mount"] + [Namespace("mount", path)]
    cfg = docker_config(busybox_rootfs, ["sh", "-c", "ls /; cat /proc/1/cmdline"])
    cfg.namespaces = nss
    r = Run(cfg)
    try:
        assert ns_of(r.proc.pid, "mnt") == ns_of(mount_ns_holder.pid, "mnt")
        code, out = r.finish()
    finally:
        r.close()
    assert code == 0, out
    assert {"bin", "proc", "etc"} <= set(out.split())
    # the container's mounts went into the joined namespace, never the host's
    with open("/proc/self/mountinfo") as f:
        assert busybox_rootfs not in f.read()


def test_join_a_mount_namespace_that_does_not_exist(busybox_rootfs, tmp_path):
    nss = [Namespace(n) for n in DEFAULT_NAMESPACES if n != "mount"] + \
        [Namespace("mount", str(tmp_path / "nope"))]
    cfg = docker_config(busybox_rootfs, ["true"])
    cfg.namespaces = nss
    with pytest.raises(RuntimeError_, match="mount namespace .*nope: No such file"):
        Run(cfg)


def test_no_mount_namespace_chroots_and_keeps_the_host_mounts_untouched(busybox_rootfs, capfd):
    with open("/proc/self/mountinfo") as f:
        before = f.read()
    nss = tuple(n for n in DEFAULT_NAMESPACES if n != "mount")
    r = Run(docker_config(busybox_rootfs, ["sh", "-c", "ls /"], namespaces=nss))
    try:
        assert ns_of(r.proc.pid, "mnt") == ns_of("self", "mnt")
        code, out = r.finish()
    finally:
        r.close()
    assert code == 0 and {"bin", "etc"} <= set(out.split()), out
    with open("/proc/self/mountinfo") as f:
        assert f.read() == before
    assert "has no mount namespace" in capfd.readouterr().err


# -- the console ---------------------------------------------------------------------------

def test_console_is_a_pty_of_the_containers_own_devpts(busybox_rootfs, tmp_path):
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    master = None
    try:
        cfg = docker_config(busybox_rootfs, ["sh", "-c", "tty; test -t 0 && echo ctty; "
                                             "cut -d' ' -f7 /proc/self/stat"],
                            process={"terminal": True}, console_socket=path)
        r = Run(cfg)
        try:
            conn, _ = listener.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 64, 1)
            master = fds[0]
            r.proc.start()
            chunks = []
            while True:
                try:
                    b = os.read(master, 4096)
                except OSError:  # EIO: the container's side is closed
                    break
                if not b:
                    break
                chunks.append(b)
            assert r.proc.wait() == 0
        finally:
            r.close()
    finally:
        listener.close()
        if master is not None:
            os.close(master)
    lines = b"".join(chunks).decode().split()
    assert lines[:2] == ["/dev/pts/0", "ctty"], lines
    assert lines[2] != "0"  # a controlling terminal (tty_nr)


def test_console_in_process_callback_gets_the_master(busybox_rootfs):
    got = []
    cfg = docker_config(busybox_rootfs, ["sh", "-c", "tty; echo done"],
                        process={"terminal": True}, on_console=got.append)
    r = Run(cfg)
    try:
        assert len(got) == 1
        r.proc.start()
        out = b""
        while b"done" not in out:
            try:
                chunk = os.read(got[0], 1024)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert r.proc.wait() == 0
    finally:
        r.close()
        for fd in got:
            os.close(fd)
    assert out.split()[:2] == [b"/dev/pts/0", b"done"], out


def test_console_socket_that_nobody_listens_on(busybox_rootfs, tmp_path):
    cfg = docker_config(busybox_rootfs, ["true"], process={"terminal": True},
                        console_socket=str(tmp_path / "absent.sock"))
    with pytest.raises(RuntimeError_, match="sending the console to .*absent.sock"):
        Run(cfg)
    # the autouse `reaped` fixture checks that the init and its intermediate were reaped


# -- the console through pyrt-runtime (what conmon and containerd's shim use) -------------

def _console_master(listener) -> int:
    listener.settimeout(15)
    conn, _ = listener.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 64, 1)
    return fds[0]


def _runtime(root, *args, **kw):
    """pyrt-runtime as conmon runs it; stdio in files (the container inherits them)."""
    import sys
    import tempfile

    argv = [os.path.join(os.path.dirname(sys.executable), "pyrt-runtime"), "--root", root, *args]
    with tempfile.TemporaryFile() as err:
        rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err, timeout=30, **kw).returncode
        err.seek(0)
        return rc, err.read().decode()


def _bundle_spec(args) -> dict:
    return {
        "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "rt",
        "process": {"args": args, "env": ["PATH=/bin:/usr/bin"], "cwd": "/", "terminal": True},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("mount", "pid", "ipc", "uts", "network")]},
    }


def test_runtime_create_and_exec_consoles_are_the_containers_ptys(tmp_path, busybox_rootfs):
    from pyrt_namespaces import syscalls

    root = str(tmp_path / "state")
    bundle = os.path.dirname(busybox_rootfs)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(_bundle_spec(["sh", "-c", "tty; echo init-$((1+1)); sleep 100"]), f)
    sock_path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(2)
    masters = []
    # as conmon: a child subreaper, so the container's init is ours to reap
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    try:
        rc, err = _runtime(root, "create", "--bundle", bundle, "--console-socket", sock_path, "tty1")
        assert rc == 0, err
        masters.append(_console_master(listener))
        assert _runtime(root, "start", "tty1")[0] == 0
        out = _read_until(masters[0], b"init-2")
        assert out.split()[:2] == [b"/dev/pts/0", b"init-2"], out
        # exec -t: a second pty of the same devpts instance
        exe = os.path.join(os.path.dirname(__import__("sys").executable), "pyrt-runtime")
        p = subprocess.Popen([exe, "--root", root, "exec", "-t", "--console-socket", sock_path,
                              "tty1", "sh", "-c", "tty; echo exec-$((2+1))"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        masters.append(_console_master(listener))
        out = _read_until(masters[1], b"exec-3")
        assert p.wait(timeout=15) == 0, p.stderr.read()
        assert out.split()[:2] == [b"/dev/pts/1", b"exec-3"], out
    finally:
        listener.close()
        for m in masters:
            os.close(m)
        _runtime(root, "delete", "--force", "tty1")
        while True:  # reap what came to us as the subreaper
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 0)


def test_pyrt_run_and_exec_it_see_a_pty_of_the_container(detached_cli):
    """`pyrt run -it` and `pyrt exec -it` (in-process, the CLI proxies the terminal):
    the pty is the container's own, so `tty` names it and the size is passed on."""
    from pyrt_core.testing.terminal import Term

    cli = detached_cli
    t = Term(cli.argv("run", "-it", "--rm", "--name", "ttyspec", cli.image, "sh"), rows=33, cols=90)
    try:
        t.send(b"tty; stty size; echo mark$((0+1))\n")
        out = t.expect(b"mark1\r\n", 20)
        assert b"/dev/pts/0\r\n33 90\r\n" in out, out
        t.send(b"exit 3\n")
        assert t.wait() == 3
    finally:
        t.close()
    cli("run", "-d", "--name", "ttybox", cli.image, "sleep", "1000", check=True)
    t = Term(cli.argv("exec", "-it", "ttybox", "sh"), rows=41, cols=99)
    try:
        t.send(b"tty; stty size; echo ma$((0))rk\n")
        out = t.expect(b"ma0rk\r\n")
        assert b"/dev/pts/0\r\n41 99\r\n" in out, out
        t.send(b"exit 5\n")
        assert t.wait() == 5
    finally:
        t.close()
