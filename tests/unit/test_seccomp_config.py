"""linux.seccomp validation (pyrt_core.runtime.spec_seccomp, types in seccomp_config) and the BPF compiler
of the namespaces plugin (libseccomp through ctypes).  The filters are installed
in forked children with no_new_privs set, which needs no root."""
from __future__ import annotations

import errno
import os

import pytest

from pyrt_core import trusted
from pyrt_core.errors import UsageError
from pyrt_core.runtime.seccomp_config import SeccompArg, SeccompConfig, SeccompRule, action_value
from pyrt_core.runtime.spec_seccomp import seccomp_from_spec

FULL = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 255, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]},
    ],
}


def test_absent_is_none():
    assert seccomp_from_spec(None) is None


def test_full_object_resolved():
    c = seccomp_from_spec(FULL)
    assert c.default_action == "SCMP_ACT_ERRNO" and c.default_errno_ret == 38
    assert c.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")  # duplicates dropped
    assert c.flag_bits == 2 | 4
    assert c.syscalls[0] == SeccompRule(("read", "write"), "SCMP_ACT_ALLOW")
    assert c.syscalls[1].errno_ret == 28
    assert c.syscalls[2].args == (SeccompArg(0, 8, 0, "SCMP_CMP_EQ"),
                                  SeccompArg(1, 255, 3, "SCMP_CMP_MASKED_EQ"))


def test_action_values():
    assert action_value("SCMP_ACT_ERRNO", None) == 0x00050001  # EPERM by default
    assert action_value("SCMP_ACT_ERRNO", 28) == 0x0005001C
    assert action_value("SCMP_ACT_TRACE", 5) == 0x7FF00005
    assert action_value("SCMP_ACT_KILL_PROCESS", None) == 0x80000000
    assert action_value("SCMP_ACT_ALLOW", None) == 0x7FFF0000


def test_digest_depends_on_rules_only():
    a = seccomp_from_spec(FULL)
    b = seccomp_from_spec({**FULL, "flags": []})
    c = seccomp_from_spec({**FULL, "defaultErrnoRet": 1})
    assert a.digest() == b.digest() != c.digest()


@pytest.mark.parametrize("doc, words", [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "unknown action 'SCMP_ACT_BOGUS'"),
    ({}, "unknown action None"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "unknown architecture 'SCMP_ARCH_Z80'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     "unknown or unsupported flag 'SECCOMP_FILTER_FLAG_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"},
     "listenerPath '/run/agent.sock': seccomp user notification"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "needs a seccomp agent"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}, "needs a seccomp agent"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "defaultErrnoRet is only allowed"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]},
     "syscalls[0]: errnoRet is only allowed"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}]},
     "syscalls[0].errnoRet must be an integer"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_KILL"}]},
     "syscalls[0].names must list at least one syscall"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": "SCMP_ACT_KILL"}]},
     "syscalls[0].names must be a list of strings"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "op": "SCMP_CMP_LIKE"}]}]},
     "syscalls[0].args[0]: unknown operator 'SCMP_CMP_LIKE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].index must be an integer from 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].value must be an integer"),
    ("SCMP_ACT_ALLOW", "must be an object"),
])
def test_invalid_objects_are_refused_in_one_line(doc, words):
    with pytest.raises(UsageError) as e:
        seccomp_from_spec(doc)
    msg = str(e.value)
    assert msg.startswith("invalid OCI config: linux.seccomp") and "\n" not in msg
    assert words in msg


# -- the compiler and the filter in a child --------------------------------------------

from pyrt_core.testing import machine  # noqa: E402

seccomp = machine.import_plugin_module("pyrt_namespaces.seccomp", "pyrt-namespaces")


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


def test_config_object_round_trip():
    c = SeccompConfig("SCMP_ACT_ALLOW")
    assert c.flag_bits == 0 and c.syscalls == ()
