"""Seccomp filters: compiled with libseccomp in the parent, installed by the child.

:func:`compile_program` turns a resolved
:class:`pyrt_core.runtime.seccomp_config.SeccompConfig` into a classic BPF
program with libseccomp (``libseccomp.so.2`` through ctypes: ``seccomp_init``,
``seccomp_arch_add``, ``seccomp_rule_add_array``, ``seccomp_export_bpf``)
before any fork, so errors come back as ordinary exceptions.  The child only
calls :func:`install`: one ``seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)``
right before execve, or before capabilities are dropped when neither
no_new_privs nor CAP_SYS_ADMIN would allow it later (see
:func:`.execute.seccomp_can_wait`); the program's memory was prepared in the
parent and is inherited through fork.

As runc does: syscall names that neither libseccomp nor this kernel's
architecture know are skipped; a rule whose action is the default action is a
no-op and is left out; several conditions on the same argument become one
rule per condition (libseccomp cannot AND them).

Compiling Docker's default profile takes libseccomp about 13 ms, so
programs are cached: in this process, and in a directory the caller names
(pyrt's engine passes ``<runroot>/seccomp`` through the ``io.pyrt.seccomp-cache``
annotation).  A cached file is named for what produced it (the config's
digest, libseccomp's version, the machine), is written atomically, and is
only read when nobody but us or root can have written it (:mod:`pyrt_core.trusted`:
the whole directory chain, then the file opened with ``O_NOFOLLOW`` and checked with
``fstat``).
"""
from __future__ import annotations

import ctypes
import os

from pyrt_core.errors import RuntimeError_
from pyrt_core.api import SECCOMP_ARCHITECTURES as ARCHITECTURES
from pyrt_core.api import SECCOMP_OPERATORS as OPERATORS
from pyrt_core.api import SeccompConfig
from pyrt_core.api import seccomp_action_value as action_value
from pyrt_core.api import (SECCOMP_CACHE_ANNOTATION, TupleRecord, sha256_hex, trusted_read,
                           trusted_write)

SECCOMP_SET_MODE_FILTER = 1
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "s390x": 348,
                "ppc64le": 358, "loongarch64": 277}
_NR_SCMP_ERROR = -1
_MAX_INSNS = 4096  # BPF_MAXINSNS
CACHE_ANNOTATION = SECCOMP_CACHE_ANNOTATION
_SCMP_FLTATR_CTL_OPTIMIZE = 8   # libseccomp >= 2.5: 2 = binary tree of syscalls
_LIBRARY = "libseccomp.so.2"


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class Program(TupleRecord):
    """A compiled filter, ready for :func:`install` in a child."""

    bpf: bytes        # struct sock_filter[] as the kernel wants it
    flags: int        # SECCOMP_FILTER_FLAG_* bits
    fprog: object     # the struct sock_fprog pointing into ``buffer``
    buffer: object    # keeps the instructions alive

    @property
    def instructions(self) -> int:
        return len(self.bpf) // 8


_lib = None
_cache: dict[tuple[str, int], Program] = {}


def _library():
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL(_LIBRARY, use_errno=True)
        except OSError:
            raise RuntimeError_(f"seccomp needs libseccomp ({_LIBRARY}, Debian package "
                                "libseccomp2), which is not installed") from None
        u32, c_int, vp = ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p
        for name, res, args in (
            ("seccomp_init", vp, [u32]),
            ("seccomp_release", None, [vp]),
            ("seccomp_arch_add", c_int, [vp, u32]),
            ("seccomp_arch_resolve_name", u32, [ctypes.c_char_p]),
            ("seccomp_syscall_resolve_name", c_int, [ctypes.c_char_p]),
            ("seccomp_rule_add_array", c_int, [vp, u32, c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]),
            ("seccomp_attr_set", c_int, [vp, c_int, u32]),
            ("seccomp_export_bpf", c_int, [vp, c_int]),
            ("seccomp_version", ctypes.POINTER(ctypes.c_uint * 3), []),
        ):
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        _lib = lib
    return _lib


def available() -> bool:
    """True when libseccomp can be loaded."""
    try:
        _library()
    except RuntimeError_:
        return False
    return True


def _conditions(args) -> list[list]:
    """The rules one syscall entry needs: one with every condition, or one per
    condition when an argument is compared more than once (as runc)."""
    conds = [(a.index, OPERATORS[a.op], a.value, a.value_two) for a in args]
    if len({c[0] for c in conds}) == len(conds):
        return [conds]
    return [[c] for c in conds]


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise RuntimeError_(f"seccomp: {what}: {os.strerror(-rc)}")


def compile_program(config: SeccompConfig, cache_dir: str | None = None) -> Program:
    """Compile ``config`` into a BPF program (cached per digest and flags;
    also in ``cache_dir`` when given)."""
    key = (config.digest(), config.flag_bits)
    prog = _cache.get(key)
    if prog is None:
        path = _cache_path(cache_dir, key[0]) if cache_dir else None
        bpf = _read_cached(path) if path else None
        if bpf is None:
            bpf = _compile(config)
            if path:
                _write_cached(path, bpf)
        prog = _make_program(bpf, config.flag_bits)
        _cache[key] = prog
    return prog


def _cache_path(cache_dir: str, digest: str) -> str:
    version = ".".join(str(v) for v in _library().seccomp_version().contents)
    name = sha256_hex(f"{digest} {version} {os.uname().machine}".encode())
    return os.path.join(cache_dir, name + ".bpf")


def _read_cached(path: str) -> bytes | None:
    # the directory comes from the bundle (an annotation): only a file nobody but us or
    # root can have written is a filter we install (pyrt_core.trusted)
    data = trusted_read(path, _MAX_INSNS * 8)
    if not data or len(data) % 8:
        return None
    return data


def _write_cached(path: str, bpf: bytes) -> None:
    """Best effort: a cache that cannot be written only costs time."""
    trusted_write(path, bpf, 0o600)


def _compile(config: SeccompConfig) -> bytes:
    lib = _library()
    default = action_value(config.default_action, config.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise RuntimeError_(f"seccomp: cannot create a filter with default action "
                            f"{config.default_action} (does this kernel support it?)")
    try:
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)  # best effort (older libseccomp)
        for arch in config.architectures:
            token = lib.seccomp_arch_resolve_name(ARCHITECTURES[arch].encode())
            if token == 0:
                continue  # libseccomp does not know it: nothing of it can be filtered
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -17:  # EEXIST: the native architecture is always there
                _check(rc, f"adding architecture {arch}")
        for rule in config.syscalls:
            action = action_value(rule.action, rule.errno_ret)
            if action == default:
                continue
            for name in rule.names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # unknown to libseccomp: skipped, as runc does
                for conds in _conditions(rule.args):
                    arr = (_ArgCmp * max(len(conds), 1))(*[_ArgCmp(*c) for c in conds])
                    _check(lib.seccomp_rule_add_array(ctx, action, nr, len(conds), arr),
                           f"adding a rule for {name} ({rule.action})")
        fd = os.memfd_create("pyrt-seccomp", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "exporting the filter")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    bpf = b"".join(chunks)
    if not bpf or len(bpf) % 8:
        raise RuntimeError_("seccomp: libseccomp exported an invalid program")
    return bpf


def _make_program(bpf: bytes, flags: int) -> Program:
    count = len(bpf) // 8
    if count > _MAX_INSNS:
        raise RuntimeError_(f"seccomp: the filter has {count} instructions, more than the "
                            f"kernel's limit of {_MAX_INSNS}")
    buf = (_SockFilter * count).from_buffer_copy(bpf)
    fprog = _SockFprog(count, ctypes.cast(buf, ctypes.POINTER(_SockFilter)))
    return Program(bpf, flags, fprog, buf)


# -- the child's side ------------------------------------------------------------

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_SYS_NR = _SYS_SECCOMP.get(os.uname().machine)


def install(prog: Program) -> None:
    """Install the filter on the calling thread (needs no_new_privs or CAP_SYS_ADMIN)."""
    if _SYS_NR is None:
        raise OSError(38, f"seccomp is not supported on {os.uname().machine} by pyrt")
    rc = _libc.syscall(ctypes.c_long(_SYS_NR), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                       ctypes.c_ulong(prog.flags), ctypes.byref(prog.fprog))
    if rc != 0:
        e = ctypes.get_errno()
        hint = ""
        if e == 13:  # EACCES
            hint = " (needs no_new_privs or CAP_SYS_ADMIN)"
        elif e == 22 and prog.flags:
            hint = " (is a flag unsupported by this kernel?)"
        raise OSError(e, os.strerror(e) + hint)
