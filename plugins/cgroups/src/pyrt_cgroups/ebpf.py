"""cgroup v2 device control: an eBPF ``BPF_PROG_TYPE_CGROUP_DEVICE`` program.

cgroup v2 has no devices.allow/deny files.  As runc and crun do, the device
rules are compiled into a small eBPF program, loaded with the ``bpf(2)``
system call and attached to the container's cgroup (attach type
``BPF_CGROUP_DEVICE``).  The kernel runs it on every open/mknod of a device
node by a process in the cgroup; it returns 1 to allow and 0 to deny.

The program reads its context, ``struct bpf_cgroup_dev_ctx``::

    u32 access_type;  /* (access << 16) | type; type 1 = block, 2 = char;
                         access bits: 1 = mknod, 2 = read, 4 = write */
    u32 major;
    u32 minor;

into r2 (type), r3 (access), r4 (major), r5 (minor), then tests the rules
from the *last* to the first (the last matching rule wins, as in the
runtime-spec), one block per rule::

    if r2 != TYPE  goto next      (left out for type 'a')
    r1 = r3; r1 &= ACCESS         allow rule: every requested bit must be allowed
    if r1 != r3    goto next      deny rule:  any requested bit denied matches
    if r4 != MAJOR goto next      (left out for a wildcard)
    if r5 != MINOR goto next      (left out for a wildcard)
    r0 = ALLOW; exit
  next:
    ...
    r0 = 0; exit                  nothing matched: deny

The instruction encoder below is written from the kernel's UAPI
(``include/uapi/linux/bpf.h``, ``bpf_common.h``).
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct

from pyrt_core.api import FrozenRecord

from .errors import CgroupError

# -- instruction encoding ---------------------------------------------------------------

# classes
BPF_LDX, BPF_ALU, BPF_JMP, BPF_ALU64 = 0x01, 0x04, 0x05, 0x07
# size / mode (loads)
BPF_W, BPF_MEM = 0x00, 0x60
# source
BPF_K, BPF_X = 0x00, 0x08
# ALU operations
BPF_AND, BPF_RSH, BPF_MOV = 0x50, 0x70, 0xB0
# jumps
BPF_JA, BPF_JEQ, BPF_JNE, BPF_EXIT = 0x00, 0x10, 0x50, 0x90

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE = 1, 2, 4

# bpf(2) commands
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 13, 16

SYS_bpf = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}


class Insn(FrozenRecord):
    """One eBPF instruction (``struct bpf_insn``); immutable.

    A plain class (pyrt_core.records), not attrs: ``pyrt-runtime create`` builds a
    program for every container on a cgroup v2 host, and importing attrs costs it
    ~25 ms.
    """

    __slots__ = ("code", "dst", "src", "off", "imm")

    def __init__(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0):
        self._set(code, dst, src, off, imm)

    def encode(self) -> bytes:
        # u8 code; u8 dst_reg:4 (low nibble), src_reg:4 (high nibble); s16 off; s32 imm
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)

    @classmethod
    def decode(cls, b: bytes) -> "Insn":
        code, regs, off, imm = struct.unpack("<BBhi", b)
        return cls(code, regs & 0x0F, regs >> 4, off, imm)


def ldx_w(dst: int, src: int, off: int) -> Insn:
    """dst = *(u32 *)(src + off)"""
    return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off)


def alu64_imm(op: int, dst: int, imm: int) -> Insn:
    return Insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)


def alu32_imm(op: int, dst: int, imm: int) -> Insn:
    return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src)


def jne_imm(dst: int, imm: int, off: int) -> Insn:
    return Insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)


def jne_reg(dst: int, src: int, off: int) -> Insn:
    return Insn(BPF_JMP | BPF_JNE | BPF_X, dst, src, off)


def exit_insn() -> Insn:
    return Insn(BPF_JMP | BPF_EXIT)


def encode(prog: list[Insn]) -> bytes:
    return b"".join(i.encode() for i in prog)


# -- rules -> program -----------------------------------------------------------------------


def _access_bits(access: str) -> int:
    bits = 0
    if "m" in access:
        bits |= BPF_DEVCG_ACC_MKNOD
    if "r" in access:
        bits |= BPF_DEVCG_ACC_READ
    if "w" in access:
        bits |= BPF_DEVCG_ACC_WRITE
    return bits


def _rule_block(rule) -> tuple[list[Insn], bool]:
    """The instructions for one rule, with jumps marked ``off=None`` (to the
    next block), and whether the block always returns (matches everything)."""
    body: list = []
    if rule.type in ("c", "b"):
        t = BPF_DEVCG_DEV_CHAR if rule.type == "c" else BPF_DEVCG_DEV_BLOCK
        body.append(("jne_imm", 2, t))
    bits = _access_bits(rule.access)
    if bits != 7:
        body.append(("mov", 1, 3))
        body.append(("and", 1, bits))
        if rule.allow:
            body.append(("jne_reg", 1, 3))  # requested & allowed != requested -> not this rule
        else:
            body.append(("jeq_imm", 1, 0))  # requested & denied == 0 -> not this rule
    if rule.type != "a":
        if rule.major is not None and rule.major >= 0:
            body.append(("jne_imm", 4, rule.major))
        if rule.minor is not None and rule.minor >= 0:
            body.append(("jne_imm", 5, rule.minor))
    body.append(("ret", 1 if rule.allow else 0))
    unconditional = not any(op[0].startswith("j") for op in body)
    # materialise, jumps to the end of this block
    n = sum(2 if op[0] == "ret" else 1 for op in body)
    out: list[Insn] = []
    for op in body:
        pos = len(out)
        to_end = n - pos - 1
        kind = op[0]
        if kind == "jne_imm":
            out.append(jne_imm(op[1], op[2], to_end))
        elif kind == "jne_reg":
            out.append(jne_reg(op[1], op[2], to_end))
        elif kind == "jeq_imm":
            out.append(Insn(BPF_JMP | BPF_JEQ | BPF_K, op[1], 0, to_end, op[2]))
        elif kind == "mov":
            out.append(mov64_reg(op[1], op[2]))
        elif kind == "and":
            out.append(alu32_imm(BPF_AND, op[1], op[2]))
        elif kind == "ret":
            out.append(alu64_imm(BPF_MOV, 0, op[1]))
            out.append(exit_insn())
    return out, unconditional


PROLOGUE = [
    ldx_w(2, 1, 0),              # r2 = ctx->access_type
    alu32_imm(BPF_AND, 2, 0xFFFF),  # r2 = type
    ldx_w(3, 1, 0),              # r3 = ctx->access_type
    alu32_imm(BPF_RSH, 3, 16),   # r3 = access
    ldx_w(4, 1, 4),              # r4 = ctx->major
    ldx_w(5, 1, 8),              # r5 = ctx->minor
]


def device_program(rules) -> list[Insn]:
    """Compile OCI device rules (last match wins, default deny) into a program.

    Blocks after one that matches everything are dropped: the verifier
    refuses unreachable instructions.
    """
    prog = list(PROLOGUE)
    for rule in reversed(list(rules)):
        block, unconditional = _rule_block(rule)
        prog.extend(block)
        if unconditional:
            return prog
    prog.append(alu64_imm(BPF_MOV, 0, 0))
    prog.append(exit_insn())
    return prog


# -- bpf(2) ------------------------------------------------------------------------------------

_libc = None


def _syscall(cmd: int, buf) -> int:
    """bpf(2) on a 128-byte ``union bpf_attr`` buffer (the kernel may write results back)."""
    global _libc
    machine = os.uname().machine  # what platform.machine() gives, without importing it
    nr = SYS_bpf.get(machine)
    if nr is None:
        raise CgroupError(f"bpf(2): unknown system call number on {machine}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    r = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf, ctypes.c_uint(128))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _bpf(cmd: int, attr: bytes) -> int:
    return _syscall(cmd, ctypes.create_string_buffer(attr, 128))


def load(prog: list[Insn], license: str = "Apache-2.0") -> int:
    """Load a device program; returns its fd.  A refused program raises
    CgroupError with the verifier's log."""
    code = encode(prog)
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license.encode() + b"\0")
    log = ctypes.create_string_buffer(65536)

    def attr(with_log: bool) -> bytes:
        # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
        # log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16]
        return struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(prog),
                           ctypes.addressof(insns), ctypes.addressof(lic),
                           1 if with_log else 0, len(log) if with_log else 0,
                           ctypes.addressof(log) if with_log else 0, 0, 0, b"pyrt_devices")

    try:
        return _bpf(BPF_PROG_LOAD, attr(False))
    except OSError as e:
        first = e
    try:
        fd = _bpf(BPF_PROG_LOAD, attr(True))
        return fd
    except OSError:
        pass
    msg = log.value.decode(errors="replace").strip()
    hint = ""
    if first.errno == errno.EPERM:
        hint = " (needs CAP_BPF/CAP_SYS_ADMIN; is bpf disabled by a security policy?)"
    elif first.errno == errno.EINVAL and not msg:
        hint = " (is BPF_PROG_TYPE_CGROUP_DEVICE missing from this kernel: CONFIG_CGROUP_BPF?)"
    raise CgroupError(f"cannot load the cgroup v2 device filter: {first.strerror}{hint}"
                      + (f"\nverifier: {msg}" if msg else ""))


def attached_ids(cgroup_fd: int) -> list[int]:
    """Ids of the device programs attached directly to a cgroup."""
    ids = (ctypes.c_uint32 * 64)()
    # BPF_PROG_QUERY: target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    buf = ctypes.create_string_buffer(struct.pack("<IIIIQI", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0,
                                                  ctypes.addressof(ids), 64), 128)
    _syscall(BPF_PROG_QUERY, buf)
    count = struct.unpack_from("<I", buf.raw, 24)[0]
    return list(ids[:count])


def attach(cgroup_dir: str, rules) -> None:
    """Load the program for ``rules`` and attach it to ``cgroup_dir``, replacing
    a program an earlier call attached (update)."""
    prog_fd = load(device_program(rules))
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        os.close(prog_fd)
        raise CgroupError(f"cannot open cgroup {cgroup_dir}: {e.strerror}") from None
    try:
        try:
            old = attached_ids(cg)
        except OSError:
            old = []
        try:
            # BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags
            _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", cg, prog_fd, BPF_CGROUP_DEVICE,
                                              BPF_F_ALLOW_MULTI))
        except OSError as e:
            raise CgroupError(f"cannot attach the device filter to {cgroup_dir}: {e.strerror}") from None
        for pid in old:  # the new program is in place: drop the ones it replaces
            try:
                ofd = _bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("<I", pid))
            except OSError:
                continue
            try:
                _bpf(BPF_PROG_DETACH, struct.pack("<IIII", cg, ofd, BPF_CGROUP_DEVICE, 0))
            except OSError:
                pass
            finally:
                os.close(ofd)
    finally:
        os.close(cg)
        os.close(prog_fd)
