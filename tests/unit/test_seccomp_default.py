"""pyrt's default seccomp profile per capability set and machine, Docker-format
profiles, --security-opt parsing, and the profile in the generated spec."""
from __future__ import annotations

import errno
import json

import pytest

from pyrt_core.containers import seccomp_default as sd
from pyrt_core.containers.defaults import DEFAULT_CAPS
from pyrt_core.errors import UsageError
from pyrt_core.runtime.spec_seccomp import seccomp_from_spec

CLONE_NEWUSER = 0x10000000


def allowed(profile) -> set[str]:
    """Names allowed without conditions."""
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def rules_for(profile, name):
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_default_profile_shape_for_docker_caps():
    p = sd.default_profile(DEFAULT_CAPS, machine="x86_64", kernel=(6, 1))
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == errno.EPERM
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    ok = allowed(p)
    assert {"read", "write", "openat", "execve", "mkdir", "clock_gettime", "rt_sigreturn",
            "arch_prctl", "modify_ldt", "ptrace", "chroot", "seccomp"} <= ok
    # never without a capability, and some never at all
    for name in ("mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key",
                 "request_key", "bpf", "init_module", "reboot", "settimeofday", "kexec_load",
                 "open_by_handle_at", "swapon", "acct", "clone", "clone3", "socket", "personality",
                 "iopl", "vhangup", "syslog", "userfaultfd", "perf_event_open"):
        assert name not in ok, name
    # the whole thing is a valid linux.seccomp object
    assert seccomp_from_spec(p).default_errno_ret == errno.EPERM


def test_clone_without_cap_sys_admin_refuses_namespace_flags():
    p = sd.default_profile(DEFAULT_CAPS, machine="x86_64", kernel=(6, 1))
    (clone,) = rules_for(p, "clone")
    (arg,) = clone["args"]
    assert arg["index"] == 0 and arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["valueTwo"] == 0
    assert arg["value"] & CLONE_NEWUSER and arg["value"] == 0x7E020000
    (clone3,) = rules_for(p, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}
    # s390 passes the flags second
    s390 = sd.default_profile(DEFAULT_CAPS, machine="s390x", kernel=(6, 1))
    assert rules_for(s390, "clone")[0]["args"][0]["index"] == 1


def test_cap_sys_admin_opens_mount_and_namespaces():
    p = sd.default_profile(set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"}, machine="x86_64", kernel=(6, 1))
    ok = allowed(p)
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname",
            "fsopen", "move_mount", "bpf", "quotactl"} <= ok
    assert rules_for(p, "clone") == [r for r in p["syscalls"] if "clone" in r["names"]
                                     and not r.get("args")]  # no flag rule any more
    assert not any(r.get("errnoRet") == errno.ENOSYS for r in p["syscalls"])


@pytest.mark.parametrize("cap, names", [
    ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("CAP_SYS_TIME", {"settimeofday", "clock_settime", "clock_settime64", "stime"}),
    ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_SYS_RAWIO", {"iopl", "ioperm"}),
    ("CAP_SYS_NICE", {"mbind", "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node"}),
    ("CAP_SYS_PACCT", {"acct"}),
    ("CAP_SYSLOG", {"syslog"}),
    ("CAP_SYS_TTY_CONFIG", {"vhangup"}),
    ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}),
    ("CAP_BPF", {"bpf"}),
    ("CAP_PERFMON", {"perf_event_open"}),
])
def test_capability_groups(cap, names):
    without = allowed(sd.default_profile(DEFAULT_CAPS, machine="x86_64", kernel=(6, 1)))
    with_cap = allowed(sd.default_profile(set(DEFAULT_CAPS) | {cap}, machine="x86_64", kernel=(6, 1)))
    assert not names & without
    assert names <= with_cap
    assert with_cap - without == names


def test_chroot_follows_cap_sys_chroot():
    caps = set(DEFAULT_CAPS) - {"CAP_SYS_CHROOT"}
    assert "chroot" not in allowed(sd.default_profile(caps, machine="x86_64", kernel=(6, 1)))


def test_ptrace_needs_the_capability_before_linux_4_8():
    old = allowed(sd.default_profile(DEFAULT_CAPS, machine="x86_64", kernel=(4, 4)))
    assert "ptrace" not in old and "process_vm_readv" not in old
    assert "ptrace" in allowed(sd.default_profile(DEFAULT_CAPS + ("CAP_SYS_PTRACE",),
                                                  machine="x86_64", kernel=(4, 4)))


def test_machine_groups():
    arm = sd.default_profile(DEFAULT_CAPS, machine="aarch64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert {"cacheflush", "set_tls", "arm_fadvise64_64"} <= allowed(arm)
    assert "arch_prctl" not in allowed(arm) and "modify_ldt" not in allowed(arm)
    assert "riscv_flush_icache" in allowed(sd.default_profile(DEFAULT_CAPS, machine="riscv64"))
    assert "s390_runtime_instr" in allowed(sd.default_profile(DEFAULT_CAPS, machine="s390x"))
    ppc = sd.default_profile(DEFAULT_CAPS, machine="ppc64le")
    assert "architectures" not in ppc and "swapcontext" in allowed(ppc)


def test_socket_and_personality_rules():
    p = sd.default_profile(DEFAULT_CAPS, machine="x86_64", kernel=(6, 1))
    sock = [(r["args"][0]["op"], r["args"][0]["value"]) for r in rules_for(p, "socket")]
    assert sorted(sock) == [("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40), ("SCMP_CMP_LT", 38)]

    def family_allowed(af):
        return any({"SCMP_CMP_EQ": af == v, "SCMP_CMP_GT": af > v, "SCMP_CMP_LT": af < v}[op]
                   for op, v in sock)
    assert family_allowed(1) and family_allowed(2) and family_allowed(10) and family_allowed(16)
    assert not family_allowed(40) and not family_allowed(38)  # AF_VSOCK, AF_ALG
    pers = {r["args"][0]["value"] for r in rules_for(p, "personality")}
    assert pers == {0, 8, 0x20000, 0x20008, 0xFFFFFFFF}


def test_kernel_version():
    assert sd.kernel_version("6.1.0-18-amd64") == (6, 1)
    assert sd.kernel_version("4.19.260") == (4, 19)
    assert sd.kernel_version("weird") == (0, 0)
    # what re.match(r"(\d+)\.(\d+)") gave (the parse now runs without re)
    for release, want in (("6.10", (6, 10)), ("5.15rc1", (5, 15)), ("6.", (0, 0)),
                          ("6.x", (0, 0)), (".1", (0, 0)), ("06.01", (6, 1)),
                          ("6.1.0+", (6, 1)), ("61", (0, 0))):
        assert sd.kernel_version(release) == want, release


# -- Docker-format profiles ------------------------------------------------------------

DOCKER_STYLE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
        {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["old_thing"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
    ],
}


def test_docker_profile_resolved_per_container():
    p = sd.profile_from_docker(DOCKER_STYLE, DEFAULT_CAPS, machine="x86_64", kernel=(6, 1))
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    names = [r["names"] for r in p["syscalls"]]
    assert names == [["read", "write"], ["clone"], ["arch_prctl"], ["ptrace"]]
    assert "comment" not in p["syscalls"][0] and "archMap" not in p
    admin = sd.profile_from_docker(DOCKER_STYLE, ["CAP_SYS_ADMIN"], machine="aarch64", kernel=(4, 4))
    assert admin["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert [r["names"] for r in admin["syscalls"]] == [["read", "write"], ["mount"], ["old_thing"]]
    assert seccomp_from_spec(p) and seccomp_from_spec(admin)


def test_docker_profile_errors_and_pass_through():
    plain = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
             "flags": ["SECCOMP_FILTER_FLAG_LOG"],
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}
    assert sd.profile_from_docker(plain, DEFAULT_CAPS) == plain
    assert sd.profile_from_docker({}, DEFAULT_CAPS) is None
    with pytest.raises(UsageError, match="both 'architectures' and 'archMap'"):
        sd.profile_from_docker({**DOCKER_STYLE, "architectures": ["SCMP_ARCH_X86"]}, DEFAULT_CAPS)
    with pytest.raises(UsageError, match="both 'name' and 'names'"):
        sd.profile_from_docker({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"name": "a", "names": ["b"], "action": "SCMP_ACT_KILL"}]}, DEFAULT_CAPS)
    with pytest.raises(UsageError, match="minKernel 'new' is not a kernel version"):
        sd.profile_from_docker({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_KILL", "includes": {"minKernel": "new"}}]},
            DEFAULT_CAPS)


# -- --security-opt --------------------------------------------------------------------

def test_security_opts(tmp_path):
    assert sd.parse_security_opts([], DEFAULT_CAPS) is None
    assert sd.parse_security_opts(["seccomp=unconfined"], DEFAULT_CAPS) == "unconfined"
    assert sd.parse_security_opts(["seccomp:unconfined"], DEFAULT_CAPS) == "unconfined"
    assert sd.parse_security_opts(["no-new-privileges"], DEFAULT_CAPS) is None
    assert sd.parse_security_opts(["no-new-privileges=true"], DEFAULT_CAPS) is None
    assert sd.parse_security_opts(["no-new-privileges=false"], DEFAULT_CAPS) is None
    assert sd.no_new_privileges([]) is True
    assert sd.no_new_privileges(["seccomp=unconfined", "no-new-privileges"]) is True
    assert sd.no_new_privileges(["no-new-privileges=false"]) is False
    assert sd.no_new_privileges(["no-new-privileges:false"]) is False
    f = tmp_path / "p.json"
    f.write_text(json.dumps(DOCKER_STYLE))
    assert json.loads(sd.parse_security_opts([f"seccomp={f}"], DEFAULT_CAPS)) == DOCKER_STYLE


@pytest.mark.parametrize("opt, content, words", [
    ("apparmor=unconfined", None, "invalid --security-opt 'apparmor=unconfined'"),
    ("seccomp=", None, "invalid --security-opt 'seccomp='"),
    ("no-new-privileges=maybe", None, "no-new-privileges takes true or false"),
    ("seccomp={missing}", None, "opening seccomp profile"),
    ("seccomp={file}", "{not json", "decoding seccomp profile"),
    ("seccomp={file}", "[1, 2]", "not a JSON object"),
    ("seccomp={file}", '{"defaultAction": "SCMP_ACT_NOPE"}',
     "invalid seccomp profile {file}: defaultAction: unknown action 'SCMP_ACT_NOPE'"),
    ("seccomp={file}", '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], '
                       '"action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "BAD"}]}]}',
     "syscalls[0].args[0]: unknown operator 'BAD'"),
    ("seccomp={file}", '{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x.sock"}',
     "seccomp user notification"),
])
def test_security_opt_errors_are_one_line(tmp_path, opt, content, words):
    f = tmp_path / "p.json"
    if content is not None:
        f.write_text(content)
    fill = {"file": str(f), "missing": str(tmp_path / "missing.json")}
    with pytest.raises(UsageError) as e:
        sd.parse_security_opts([opt.format(**fill)], DEFAULT_CAPS)
    assert words.format(**fill) in str(e.value) and "\n" not in str(e.value)


def test_spec_seccomp_settings():
    assert sd.spec_seccomp("unconfined", DEFAULT_CAPS) is None
    assert sd.spec_seccomp(None, DEFAULT_CAPS) == sd.default_profile(DEFAULT_CAPS)
    custom = json.dumps({"defaultAction": "SCMP_ACT_LOG"})
    assert sd.spec_seccomp(custom, DEFAULT_CAPS) == {"defaultAction": "SCMP_ACT_LOG", "syscalls": []}


def test_build_spec_carries_the_profile(tmp_path):
    from pyrt_core.containers.spec import build_spec
    from pyrt_core.models import Container, ContainerConfig, Image, ImageConfig

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    image = Image(id="sha256:" + "a" * 64, config=ImageConfig(cmd=["sh"]))

    def spec(**cfg):
        c = Container(id="c" * 64, name="x", image_id=image.id, image_name="x", created="",
                      storage_driver="vfs", config=ContainerConfig(image="x", **cfg))
        return build_spec(c, image, str(rootfs), str(tmp_path / "bundle"))

    default = spec()["linux"]["seccomp"]
    assert default == sd.default_profile(spec()["process"]["capabilities"]["bounding"])
    assert "seccomp" not in spec(seccomp="unconfined")["linux"]
    custom = spec(seccomp=json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))["linux"]["seccomp"]
    assert custom["defaultAction"] == "SCMP_ACT_ALLOW"


def test_config_record_round_trip():
    from pyrt_core.models import ContainerConfig

    c = ContainerConfig(image="x", security_opt=["seccomp=unconfined"], seccomp="unconfined")
    assert ContainerConfig.from_dict(c.to_dict()) == c
    assert ContainerConfig.from_dict({"image": "x"}).seccomp is None  # older records


def test_cli_flag_parsed(tmp_path):
    from pyrt_core.cli.main import build_parser
    from pyrt_core.cli.containers.run import container_config_from_args

    args = build_parser().parse_args(["run", "--security-opt", "seccomp=unconfined", "img"])
    cfg = container_config_from_args(args)
    assert cfg.seccomp == "unconfined" and cfg.security_opt == ["seccomp=unconfined"]
    args = build_parser().parse_args(["create", "img"])
    assert container_config_from_args(args).seccomp is None
