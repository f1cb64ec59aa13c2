"""linux.seccomp validation (pyrt_core.runtime.spec_seccomp, types in seccomp_config).
The namespaces plugin's BPF compiler, which takes these objects, is tested beside it
(plugins/namespaces/tests/unit/test_seccomp_filter.py)."""
from __future__ import annotations

import pytest

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


def test_config_object_round_trip():
    c = SeccompConfig("SCMP_ACT_ALLOW")
    assert c.flag_bits == 0 and c.syscalls == ()
