"""The cgroup v2 device filter's bytecode, checked structurally and by running it
in a small interpreter of the instructions it uses (no root, no kernel)."""
import struct

import pytest

from pyrt_core.testing import machine  # noqa: E402

machine.skip_unless("distribution", "pyrt-cgroups")

from pyrt_cgroups import ebpf
from pyrt_core.containers.defaults import DEFAULT_DEVICE_RULES
from pyrt_core.runtime.config import DeviceRule

BLOCK, CHAR = ebpf.BPF_DEVCG_DEV_BLOCK, ebpf.BPF_DEVCG_DEV_CHAR
M, R, W = ebpf.BPF_DEVCG_ACC_MKNOD, ebpf.BPF_DEVCG_ACC_READ, ebpf.BPF_DEVCG_ACC_WRITE

DOCKER = [DeviceRule(r.get("allow", False), r.get("type", "a"), r.get("major"), r.get("minor"),
                     r.get("access", "rwm")) for r in DEFAULT_DEVICE_RULES]


def run(prog, dev_type, access, major, minor):
    """Execute ``prog`` on a bpf_cgroup_dev_ctx the way the kernel would."""
    code = ebpf.encode(prog)
    insns = [ebpf.Insn.decode(code[i:i + 8]) for i in range(0, len(code), 8)]
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    reg = [0] * 11
    reg[1] = "ctx"
    pc, steps = 0, 0
    U64 = (1 << 64) - 1
    while True:
        steps += 1
        assert steps < 10_000 and 0 <= pc < len(insns), "ran off the program"
        i = insns[pc]
        src = reg[i.src] if i.code & ebpf.BPF_X else i.imm & U64
        cls = i.code & 0x07
        if i.code == ebpf.BPF_LDX | ebpf.BPF_MEM | ebpf.BPF_W:
            assert reg[i.src] == "ctx" and i.off in (0, 4, 8)
            reg[i.dst] = struct.unpack_from("<I", ctx, i.off)[0]
        elif cls in (ebpf.BPF_ALU, ebpf.BPF_ALU64):
            op = i.code & 0xF0
            a = reg[i.dst]
            if op == ebpf.BPF_MOV:
                a = src
            elif op == ebpf.BPF_AND:
                a = a & src
            elif op == ebpf.BPF_RSH:
                a = a >> src
            else:
                raise AssertionError(f"unexpected ALU op {op:#x}")
            reg[i.dst] = a & (0xFFFFFFFF if cls == ebpf.BPF_ALU else U64)
        elif cls == ebpf.BPF_JMP:
            op = i.code & 0xF0
            if op == ebpf.BPF_EXIT:
                return reg[0]
            taken = {ebpf.BPF_JNE: reg[i.dst] != src, ebpf.BPF_JEQ: reg[i.dst] == src}[op]
            if taken:
                pc += i.off
        else:
            raise AssertionError(f"unexpected instruction {i}")
        pc += 1


def test_instruction_encoding():
    # r2 = *(u32 *)(r1 + 4): opcode 0x61, dst 2 in the low nibble, src 1 in the high one
    assert ebpf.ldx_w(2, 1, 4).encode() == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0])
    assert ebpf.alu64_imm(ebpf.BPF_MOV, 0, 1).encode() == bytes([0xB7, 0x00, 0, 0, 1, 0, 0, 0])
    assert ebpf.jne_imm(4, 136, 3).encode() == bytes([0x55, 0x04, 3, 0, 136, 0, 0, 0])
    assert ebpf.jne_reg(1, 3, 2).encode() == bytes([0x5D, 0x31, 2, 0, 0, 0, 0, 0])
    assert ebpf.exit_insn().encode() == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
    i = ebpf.Insn(0x15, 3, 7, -2, -5)
    assert ebpf.Insn.decode(i.encode()) == i


def test_structure_of_dockers_program():
    prog = ebpf.device_program(DOCKER)
    assert prog[:6] == ebpf.PROLOGUE
    assert prog[-1] == ebpf.exit_insn()
    assert len(prog) < 4096  # far below the verifier's limit for unprivileged programs
    # every jump is forward and lands inside the program; r0 is set before each exit
    for pc, insn in enumerate(prog):
        if insn.code & 0x07 == ebpf.BPF_JMP and insn.code != ebpf.exit_insn().code:
            assert insn.off >= 0 and pc + 1 + insn.off < len(prog)
        if insn == ebpf.exit_insn():
            assert prog[pc - 1].code == ebpf.BPF_ALU64 | ebpf.BPF_MOV | ebpf.BPF_K
            assert prog[pc - 1].dst == 0 and prog[pc - 1].imm in (0, 1)
    # no unreachable instruction (the verifier refuses them)
    reach, todo = set(), [0]
    while todo:
        pc = todo.pop()
        if pc in reach:
            continue
        reach.add(pc)
        insn = prog[pc]
        if insn == ebpf.exit_insn():
            continue
        todo.append(pc + 1)
        if insn.code & 0x07 == ebpf.BPF_JMP:
            todo.append(pc + 1 + insn.off)
    assert reach == set(range(len(prog)))


@pytest.mark.parametrize("dev, access, major, minor, allowed", [
    (CHAR, R | W, 1, 3, 1),      # /dev/null
    (CHAR, R, 1, 9, 1),          # /dev/urandom
    (CHAR, R | W, 136, 7, 1),    # a pts
    (CHAR, R | W, 10, 200, 1),   # tun
    (CHAR, R, 1, 1, 0),          # /dev/mem
    (BLOCK, R, 8, 0, 0),         # /dev/sda
    (BLOCK, M, 8, 0, 1),         # mknod of any node is allowed
    (CHAR, M, 4, 4, 1),
    (CHAR, M | R, 4, 4, 0),      # but not using it
    (CHAR, W, 5, 1, 1),          # console
])
def test_docker_rules_semantics(dev, access, major, minor, allowed):
    assert run(ebpf.device_program(DOCKER), dev, access, major, minor) == allowed


def test_last_matching_rule_wins():
    rules = [DeviceRule(True, "a"), DeviceRule(False, "c", 1, 3, "w")]
    prog = ebpf.device_program(rules)
    assert run(prog, CHAR, R, 1, 3) == 1        # read still allowed
    assert run(prog, CHAR, R | W, 1, 3) == 0    # any denied bit denies
    assert run(prog, BLOCK, R | W, 8, 0) == 1   # everything else allowed
    # allow after deny: re-allowed
    prog = ebpf.device_program([DeviceRule(False, "c", 1, 3, "rwm"), DeviceRule(True, "c", 1, 3, "r")])
    assert run(prog, CHAR, R, 1, 3) == 1
    assert run(prog, CHAR, W, 1, 3) == 0


def test_unconditional_rule_ends_the_program():
    # a trailing allow-all makes every earlier rule unreachable: they are left out
    prog = ebpf.device_program([DeviceRule(False, "c", 1, 3, "rwm"), DeviceRule(True, "a")])
    assert prog == ebpf.PROLOGUE + [ebpf.alu64_imm(ebpf.BPF_MOV, 0, 1), ebpf.exit_insn()]
    # no rules at all: deny everything
    prog = ebpf.device_program([])
    assert run(prog, CHAR, R, 1, 3) == 0


def test_wildcards():
    prog = ebpf.device_program([DeviceRule(True, "b", 7, None, "r")])
    assert run(prog, BLOCK, R, 7, 12) == 1
    assert run(prog, BLOCK, W, 7, 12) == 0
    assert run(prog, CHAR, R, 7, 12) == 0
    prog = ebpf.device_program([DeviceRule(True, "c", None, 5, "rw")])
    assert run(prog, CHAR, W, 99, 5) == 1 and run(prog, CHAR, W, 99, 6) == 0


def test_load_failure_is_a_clear_error(monkeypatch):
    import errno

    def fail(cmd, buf):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(ebpf, "_syscall", fail)
    with pytest.raises(ebpf.CgroupError, match="cannot load the cgroup v2 device filter: "
                                               "Operation not permitted.*CAP_BPF"):
        ebpf.load(ebpf.device_program(DOCKER))
