"""The namespaces plugin's seccomp BPF compiler (libseccomp through ctypes), fed by the
core's linux.seccomp conversion (pyrt_core.runtime.spec_seccomp).  The filters are
installed in forked children with no_new_privs set, which needs no root."""
from __future__ import annotations

import errno
import os

from pyrt_core import trusted
from pyrt_core.runtime.spec_seccomp import seccomp_from_spec
from pyrt_namespaces import seccomp

def _in_child(prog, fn) -> int:
    """Run fn() in a forked child under ``prog``; its return value is the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            import ctypes

            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
            seccomp.install(prog)
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def _mkdir_errno(path):
    def fn():
        try:
            os.mkdir(path)
        except OSError as e:
            return e.errno
        os.rmdir(path)
        return 0
    return fn


def test_errno_rule_with_errnoret(tmp_path):
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSPC}]})
    prog = seccomp.compile_program(cfg)
    assert prog.instructions > 3 and prog.flags == 0
    status = _in_child(prog, _mkdir_errno(str(tmp_path / "d")))
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == errno.ENOSPC
    assert not (tmp_path / "d").exists()


def test_default_errno_is_eperm_and_unknown_names_are_skipped(tmp_path):
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall_anywhere", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["chown32"], "action": "SCMP_ACT_ERRNO"},  # known, not on x86_64
    ]})
    status = _in_child(seccomp.compile_program(cfg), _mkdir_errno(str(tmp_path / "d")))
    assert os.WEXITSTATUS(status) == errno.EPERM


def test_kill_process_action_kills_with_sigsys(tmp_path):
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]})
    status = _in_child(seccomp.compile_program(cfg), _mkdir_errno(str(tmp_path / "d")))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31  # SIGSYS


def test_argument_conditions():
    # getpriority(PRIO_PROCESS, who): refused for who == 777 or who & 0xff000 == 0x55000;
    # two conditions on one argument become two rules (either matches)
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EDOM,
         "args": [{"index": 1, "value": 777, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 0xFF000, "valueTwo": 0x55000,
                   "op": "SCMP_CMP_MASKED_EQ"}]}]})

    def fn():
        def err(who):
            try:
                os.getpriority(os.PRIO_PROCESS, who)
            except OSError as e:
                return e.errno
            return 0
        return (err(0) == 0) + 2 * (err(777) == errno.EDOM) + 4 * (err(0x55123) == errno.EDOM) \
            + 8 * (err(0x44123) == errno.ESRCH)
    status = _in_child(seccomp.compile_program(cfg), fn)
    assert os.WEXITSTATUS(status) == 15


def test_rule_with_the_default_action_is_a_no_op(tmp_path):
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},  # == default: left out
        {"names": ["exit", "exit_group", "mkdir"], "action": "SCMP_ACT_ALLOW"},
    ]})
    assert seccomp.compile_program(cfg).instructions > 0


def test_flags_reach_the_kernel(tmp_path):
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ALLOW",
                             "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
                             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]})
    prog = seccomp.compile_program(cfg)
    assert prog.flags == 3
    status = _in_child(prog, _mkdir_errno(str(tmp_path / "d")))
    assert os.WEXITSTATUS(status) == 0  # LOG allows (and logs)


def test_file_cache(tmp_path):
    cfg = seccomp_from_spec({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7}]})
    cache = tmp_path / "cache"
    seccomp._cache.clear()
    prog = seccomp.compile_program(cfg, str(cache))
    files = os.listdir(cache)
    assert len(files) == 1 and files[0].endswith(".bpf")
    assert (cache / files[0]).read_bytes() == prog.bpf
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    # a later process reads it instead of compiling
    seccomp._cache.clear()
    (cache / files[0]).write_bytes(prog.bpf[:-8] + prog.bpf[-8:])
    again = seccomp.compile_program(cfg, str(cache))
    assert again.bpf == prog.bpf
    # a broken file is ignored; a directory others can write to is not trusted
    seccomp._cache.clear()
    (cache / files[0]).write_bytes(b"garbage")
    assert seccomp.compile_program(cfg, str(cache)).bpf == prog.bpf
    seccomp._cache.clear()
    (cache / files[0]).write_bytes(b"\0" * 16)
    os.chmod(cache, 0o777)
    trusted.forget()  # what this process learnt of the directory: as a new process
    assert seccomp.compile_program(cfg, str(cache)).bpf == prog.bpf
    seccomp._cache.clear()
    # nor is a file others can write to, or a symlink to a file
    os.chmod(cache, 0o700)
    trusted.forget()
    (cache / files[0]).write_bytes(b"\0" * 16)
    os.chmod(cache / files[0], 0o666)
    assert seccomp.compile_program(cfg, str(cache)).bpf == prog.bpf
    seccomp._cache.clear()
    elsewhere = tmp_path / "elsewhere.bpf"
    elsewhere.write_bytes(b"\0" * 16)
    os.unlink(cache / files[0])
    os.symlink(elsewhere, cache / files[0])
    assert seccomp.compile_program(cfg, str(cache)).bpf == prog.bpf
    assert elsewhere.read_bytes() == b"\0" * 16  # not written through either
    seccomp._cache.clear()


def test_exec_plan_installs_late_only_when_it_can():
    from pyrt_namespaces import caps, execute

    def plan(**kw):
        base = dict(args=["true"], env={}, search_path="", cwd="/", uid=0, gid=0,
                    additional_gids=[], umask=0o022, capsets=None, no_new_privs=False,
                    stdio=None, rlimits=[])
        base.update(kw)
        return execute.ExecPlan(**base)

    sets = caps.CapSets(0, 0, 0, 0, 0, 40)
    admin = caps.CapSets(1 << 21, 1 << 21, 1 << 21, 0, 0, 40)
    assert execute.seccomp_can_wait(plan(no_new_privs=True, capsets=sets, uid=1000))
    assert execute.seccomp_can_wait(plan(capsets=admin))
    assert execute.seccomp_can_wait(plan())  # root keeping every capability
    assert not execute.seccomp_can_wait(plan(capsets=sets))
    assert not execute.seccomp_can_wait(plan(uid=1000))
