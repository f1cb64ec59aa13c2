"""The last exec of a container process goes through a sealed in-memory helper.

Why (runc's CVE-2019-5736 class): until its final ``execve``, a container's init
(or a process joining a container) is a fork of the *host's* Python
interpreter.  If the container's program is ``/proc/self/exe`` (or a symlink,
or a script whose ``#!`` line names it), the kernel resolves that magic link
to the host interpreter and runs it inside the container; with a planted
loader or library the container then holds a handle on the host binary and
can overwrite it once no host process runs it.  runc and crun answer by
running from a sealed memfd copy of themselves.  pyrt's Python cannot run from
a memfd without paying a second interpreter start, so the interpreter is not
what makes the final ``execve``: a tiny static program, built here and kept in
a sealed memfd, does.  ``/proc/self/exe`` of any process in the container is
then that memfd (read-only, sealed, not a host file), never the interpreter.

The helper's contract (argv, set by :func:`argv`)::

    argv[0]  the control socket's fd number, in decimal
    argv[1]  "errno " + the path to execute
    argv[2:] the program's own argv (argv[0] included)

It marks the control socket close-on-exec, then ``execve(path, argv[2:],
envp)``.  If that fails it writes ``argv[1]``, a NUL and the errno (4 bytes,
little-endian) on the socket in one ``writev`` and exits 127 (ENOENT,
ENOTDIR) or 126; :func:`.channel.parse_error` reads that message.  Anything else
(fewer than three arguments, as when a container re-runs its own
``/proc/self/exe``) exits 127.  The machine code of each architecture is
listed with its assembly below; it touches no memory but its stack.
"""
from __future__ import annotations

import os
import struct

# x86_64 (as -msyntax=intel):
#   _start: mov rcx,[rsp]; cmp rcx,3; jb bad; mov rbx,[rsp+8]; xor r12d,r12d
#   parse:  movzx eax,byte[rbx]; test al,al; jz parsed; sub eax,'0'; imul r12,r12,10
#           add r12,rax; inc rbx; jmp parse
#   parsed: fcntl(r12, F_SETFD, FD_CLOEXEC)                   ; eax=72
#           execve([rsp+16]+6, rsp+24, rsp+8*argc+16)          ; eax=59
#           r13 = -rax; rcx = strlen([rsp+16]) + 1
#           sub rsp,48; iov = {[argv1, rcx], [&errno, 4]}
#           writev(r12, iov, 2)                                ; eax=20
#           exit_group(r13 in (ENOENT, ENOTDIR) ? 127 : 126)    ; eax=231
#   bad:    exit_group(127)
_X86_64 = bytes.fromhex(
    "488b0c244883f9030f82c2000000488b5c24084531e40fb60384c0740f83e8304d6be40a4901c4"
    "48ffc3ebeab8480000004c89e7be02000000ba010000000f05488b0c24488b7c24104883c70648"
    "8d742418488d54cc10b83b0000000f0548f7d84989c5488b7c24104889f9803900740548ffc1eb"
    "f64829f948ffc14883ec3048893c2448894c240844896c2420488d442420488944241048c74424"
    "1804000000b8140000004c89e74889e6ba020000000f05bf7e0000004983fd0274064983fd1475"
    "05bf7f000000b8e70000000f05bf7f000000b8e70000000f05")

_CODE = {"x86_64": (_X86_64, 62)}  # machine -> (code, ELF e_machine)

_BASE = 0x400000
_HEADERS = 64 + 56  # ELF header + one program header

_fd: int | None = None


def available() -> bool:
    return os.uname().machine in _CODE


def elf() -> bytes:
    """A static ELF executable of the helper for this machine (KeyError if none)."""
    code, machine = _CODE[os.uname().machine]
    size = _HEADERS + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, SysV
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, _BASE + _HEADERS, 64, 0, 0,
                                 64, 56, 1, 0, 0, 0)
    # one PT_LOAD, read+execute, the whole file at _BASE
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    return header + phdr + code


_MFD_CLOEXEC, _MFD_ALLOW_SEALING, _MFD_EXEC = 1, 2, 0x10
_F_SEAL_SEAL, _F_SEAL_SHRINK, _F_SEAL_GROW, _F_SEAL_WRITE, _F_SEAL_EXEC = 1, 2, 4, 8, 0x20
_F_ADD_SEALS = 1033


def fd() -> int | None:
    """The sealed memfd holding the helper (made once per process; close-on-exec, so a
    container's program never inherits it); None where no helper exists for this machine."""
    global _fd
    if _fd is None and available():
        import fcntl

        try:
            # MFD_EXEC: executable even where vm.memfd_noexec asks otherwise (Linux 6.3+)
            mfd = os.memfd_create("pyrt-exec", _MFD_CLOEXEC | _MFD_ALLOW_SEALING | _MFD_EXEC)
        except OSError:
            mfd = os.memfd_create("pyrt-exec", _MFD_CLOEXEC | _MFD_ALLOW_SEALING)
        try:
            data = elf()
            if os.write(mfd, data) != len(data):
                raise OSError("short write to the exec helper's memfd")
            os.fchmod(mfd, 0o555)
            seals = _F_SEAL_SEAL | _F_SEAL_SHRINK | _F_SEAL_GROW | _F_SEAL_WRITE
            try:
                fcntl.fcntl(mfd, _F_ADD_SEALS, seals | _F_SEAL_EXEC)  # no chmod either (6.3+)
            except OSError:
                fcntl.fcntl(mfd, _F_ADD_SEALS, seals)
        except BaseException:
            os.close(mfd)
            raise
        _fd = mfd
    return _fd


def argv(report_fd: int, path: str, args: list) -> list:
    """The helper's argv for executing ``path`` with ``args``, reporting on ``report_fd``."""
    return [str(report_fd), "errno " + path, *args]

