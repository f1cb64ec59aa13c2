"""Seccomp against the real kernel: the runtime's filters (create/join level, busybox
rootfs) and `pyrt run`'s default profile, --security-opt and exec."""
from __future__ import annotations

import json
import os

import pytest

from pyrt_core.runtime.config import ProcessConfig, evolve
from pyrt_core.runtime.spec_seccomp import seccomp_from_spec
from pyrt_namespaces import join as nsjoin
from test_namespaces import (  # noqa: F401  (reaped: every child is reaped)
    DEFAULT_NAMESPACES, PATH, Run, docker_config, read_all, reaped, run)

ENOSPC_MSG = "No space left on device"


def deny_mkdir(action="SCMP_ACT_ERRNO", errno_ret=28, **extra) -> dict:
    rule = {"names": ["mkdir", "mkdirat"], "action": action}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule], **extra}


def sc_run(rootfs, script, profile, *, process=None, **kw):
    cfg = docker_config(rootfs, ["sh", "-c", script], process=process, **kw)
    return run(evolve(cfg, seccomp=seccomp_from_spec(profile)))


# -- the runtime's mechanism -------------------------------------------------------------

@pytest.mark.parametrize("process", [
    {"no_new_privileges": True},           # installed last, right before execve
    {},                                    # no no_new_privs: installed before caps are dropped
    {"uid": 1000, "gid": 1000},            # ... and before the switch to an unprivileged user
    {"uid": 1000, "gid": 1000, "no_new_privileges": True},
], ids=["nnp", "caps", "user", "user-nnp"])
def test_errno_rule_with_errnoret(busybox_rootfs, process):
    code, out = sc_run(busybox_rootfs, "mkdir /tmp/x; echo rc=$?; grep ^Seccomp: /proc/self/status",
                       deny_mkdir(), process=process)
    assert code == 0, out
    assert ENOSPC_MSG in out and "rc=1" in out and "Seccomp:\t2" in out
    assert not os.path.exists(os.path.join(busybox_rootfs, "tmp", "x"))


def test_without_a_profile_there_is_no_filter(busybox_rootfs):
    code, out = run(docker_config(busybox_rootfs, ["sh", "-c", "grep ^Seccomp: /proc/self/status; "
                                                   "mkdir /tmp/y && echo made"]))
    assert code == 0 and "Seccomp:\t0" in out and "made" in out
    os.rmdir(os.path.join(busybox_rootfs, "tmp", "y"))


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_killing_actions(busybox_rootfs, action):
    code, out = sc_run(busybox_rootfs, "echo before; mkdir /tmp/z; echo after",
                       deny_mkdir(action, None), process={"no_new_privileges": True})
    assert code == 0, out  # the shell survives; its mkdir child died of SIGSYS
    assert "before" in out and "after" in out and "Bad system call" in out
    cfg = docker_config(busybox_rootfs, ["mkdir", "/tmp/z"], process={"no_new_privileges": True})
    code, _ = run(evolve(cfg, seccomp=seccomp_from_spec(deny_mkdir(action, None))))
    assert code == 128 + 31  # SIGSYS


def test_default_errno_action_and_flags(busybox_rootfs):
    # default ERRNO (ENOSPC) with a short allow list; flags the kernel must accept
    allow = ("read write openat open close fstat newfstatat stat lstat execve exit exit_group "
             "brk mmap munmap mprotect arch_prctl set_tid_address set_robust_list rseq "
             "rt_sigaction rt_sigprocmask rt_sigreturn getpid getppid getuid geteuid getgid "
             "getegid uname ioctl fcntl dup2 dup3 wait4 clone fork vfork prlimit64 "
             "getrandom futex getcwd access faccessat faccessat2 lseek readlink sigaltstack "
             "statx getdents64 pipe pipe2 writev").split()
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 28,
               "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                         "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]}
    code, out = sc_run(busybox_rootfs, "echo hi; mkdir /tmp/w; chmod 700 /tmp", profile,
                       process={"no_new_privileges": True})
    assert "hi" in out and out.count(ENOSPC_MSG) >= 1, out
    assert code != 0


def test_argument_conditions(busybox_rootfs):
    # refuse personality(PER_LINUX32) only: `linux32` fails, `linux64` works
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28,
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    code, out = sc_run(busybox_rootfs, "linux64 uname -m; linux32 uname -m; echo rc=$?", profile,
                       process={"no_new_privileges": True})
    assert code == 0, out
    assert "x86_64" in out and ENOSPC_MSG in out and "rc=1" in out


def test_compile_errors_are_refused_before_forking(busybox_rootfs):
    from pyrt_core.errors import RuntimeError_

    # the same condition on a syscall with two different actions: libseccomp refuses
    cond = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": cond},
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": cond}]}
    cfg = docker_config(busybox_rootfs, ["true"])
    with pytest.raises(RuntimeError_, match=r"seccomp: adding a rule for mkdir \(SCMP_ACT_KILL\): "
                                            "File exists"):
        Run(evolve(cfg, seccomp=seccomp_from_spec(profile))).close()


def test_join_applies_the_process_profile(busybox_rootfs):
    r = Run(docker_config(busybox_rootfs, ["sleep", "60"]))
    try:
        r.proc.start()
        rr, w = os.pipe()
        try:
            proc = ProcessConfig(args=["sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/j"],
                                 env=[PATH], no_new_privileges=True,
                                 seccomp=seccomp_from_spec(deny_mkdir()))
            joined = nsjoin.join(r.proc.pid, list(DEFAULT_NAMESPACES), proc, (None, w, w))
        finally:
            os.close(w)
        try:
            out = read_all(rr)
            assert joined.wait() == 1, out
        finally:
            joined.destroy()
            os.close(rr)
        assert "Seccomp:\t2" in out and ENOSPC_MSG in out
    finally:
        r.close()


# -- pyrt run: the default profile and --security-opt ---------------------------------------

@pytest.fixture
def cli(demo_cli):
    return demo_cli


PROBE = ("grep ^Seccomp: /proc/self/status; unshare -U true; echo unshare=$?; "
         "mkdir /tmp/d && echo mkdir-ok; chroot / true && echo chroot-ok; "
         "linux32 true && echo linux32-ok; ls /proc >/dev/null && echo ls-ok")


def test_default_profile(cli):
    r = cli("run", "--rm", cli.image, "sh", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Seccomp:\t2"
    # creating a user namespace needs no capability: only the profile refuses it
    assert "unshare=1" in lines and "Operation not permitted" in r.stderr
    assert {"mkdir-ok", "chroot-ok", "linux32-ok", "ls-ok"} <= set(lines)
    # the compiled filter is cached under the run root
    cache = os.path.join(cli.runroot, "seccomp")
    assert [f for f in os.listdir(cache) if f.endswith(".bpf")]


def test_unconfined(cli):
    r = cli("run", "--rm", "--security-opt", "seccomp=unconfined", cli.image, "sh", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Seccomp:\t0" and "unshare=0" in r.stdout.splitlines()


def test_custom_profile_file(cli, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
                     {"names": ["sync"], "action": "SCMP_ACT_KILL"}]}))
    r = cli("run", "--rm", "--security-opt", f"seccomp={f}", cli.image, "sh", "-c",
            "mkdir /tmp/x; echo rc=$?; unshare -U true && echo unshare-ok")
    assert r.returncode == 0 and "rc=1" in r.stdout and "unshare-ok" in r.stdout
    assert ENOSPC_MSG in r.stderr
    # KILL: the container's process dies of SIGSYS
    assert cli("run", "--rm", "--security-opt", f"seccomp={f}", cli.image, "sync").returncode == 159
    # the profile is kept with the container: removing the file does not matter
    r = cli("create", "--security-opt", f"seccomp={f}", cli.image, "mkdir", "/m")
    cid = r.stdout.strip()
    f.unlink()
    r = cli("start", "-a", cid)
    assert r.returncode == 1 and ENOSPC_MSG in r.stderr
    info = json.loads(cli("inspect", cid, check=True).stdout)[0]
    assert info["HostConfig"]["SecurityOpt"] == [f"seccomp={f}"]
    cli("rm", cid, check=True)


@pytest.mark.parametrize("content, words", [
    ('{"defaultAction": "SCMP_ACT_BOGUS"}', "unknown action 'SCMP_ACT_BOGUS'"),
    ('{"defaultAction": ', "decoding seccomp profile"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent"}',
     "seccomp user notification"),
    (None, "opening seccomp profile"),
])
def test_bad_profile_is_refused_and_nothing_is_left(cli, tmp_path, content, words):
    f = tmp_path / "bad.json"
    if content is not None:
        f.write_text(content)
    for cmd in ("run", "create"):
        r = cli(cmd, "--rm" if cmd == "run" else "--name=bad", "--security-opt", f"seccomp={f}",
                cli.image, "true")
        assert r.returncode == 125
        assert words in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert cli("ps", "-aq").stdout == ""
    rundir = os.path.join(cli.runroot, "containers")
    assert not os.path.isdir(rundir) or not [e for e in os.listdir(rundir) if e != "names"]


def test_exec_gets_the_container_profile(detached_cli):
    cli = detached_cli
    cli("run", "-d", "--name", "confined", cli.image, "sleep", "60", check=True)
    cli("run", "-d", "--name", "free", "--security-opt", "seccomp=unconfined", cli.image,
        "sleep", "60", check=True)
    # exec uses the container's filter cache: emptied, an exec fills it again
    cache = os.path.join(cli.runroot, "seccomp")
    for f in os.listdir(cache):
        os.unlink(os.path.join(cache, f))
    r = cli("exec", "confined", "sh", "-c", "grep ^Seccomp: /proc/self/status; unshare -U true")
    assert r.returncode == 1 and "Seccomp:\t2" in r.stdout and "Operation not permitted" in r.stderr
    assert [f for f in os.listdir(cache) if f.endswith(".bpf")]
    r = cli("exec", "free", "sh", "-c", "grep ^Seccomp: /proc/self/status; unshare -U true")
    assert r.returncode == 0 and "Seccomp:\t0" in r.stdout
    info = json.loads(cli("inspect", "free", check=True).stdout)[0]
    assert info["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]
    assert json.loads(cli("inspect", "confined").stdout)[0]["HostConfig"]["SecurityOpt"] is None
