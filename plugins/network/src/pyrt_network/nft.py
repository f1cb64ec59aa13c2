"""libnftables through ctypes: pyrt's rules go in as JSON commands, no ``nft`` process.

Debian's ``libnftables1`` (``libnftables.so.1``) exposes the same parser the ``nft``
command uses; its JSON input (``libnftables-json(5)``) lets the plugin build rules as
data instead of text.  One :class:`Nft` context per process, created on first use; every
call is one ``nft_run_cmd_from_buffer``: one kernel transaction, so a batch of commands
either all apply or none do.

Only pyrt's own tables are ever named here (see :mod:`pyrt_network.rules`): never
``flush ruleset``, never another table.
"""
from __future__ import annotations

import ctypes
import json
import os
import threading

from pyrt_core.api import PyrtError

LIBRARY = "libnftables.so.1"
#: nft_ctx_output_set_flags: NFT_CTX_OUTPUT_HANDLE | NFT_CTX_OUTPUT_JSON
_OUTPUT_HANDLE = 1 << 3
_OUTPUT_JSON = 1 << 4
_NFT_CTX_DEFAULT = 0


class NftError(PyrtError):
    """libnftables refused a command (its error text is the message)."""


def _sockets() -> set[tuple[int, str]]:
    """This process's socket descriptors, with what they point to (a descriptor number
    alone may be reused: listing /proc/self/fd takes one itself)."""
    out = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for x in names:
        try:
            link = os.readlink(f"/proc/self/fd/{x}")
        except OSError:
            continue
        if link.startswith("socket:"):
            out.add((int(x), link))
    return out


def _close_on_exec(new: set[tuple[int, str]]) -> None:
    """libnftables opens its netlink socket (NETLINK_NETFILTER, in the host's network
    namespace: it can rewrite every table of the host) without SOCK_CLOEXEC, and no
    call hands out its descriptor: the sockets that appeared with the context are
    marked close-on-exec, so no process this one starts (a container's init after
    exec, conmon) inherits it.  The runtime closes every descriptor it does not pass
    on as well; this is the layer below it (tests/security/test_network_fds.py)."""
    for fd, _link in new:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass


class Nft:
    """A libnftables context with JSON output and buffered output/error."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(LIBRARY, use_errno=True)
        except OSError as e:
            raise PyrtError(f"pyrt-network needs {LIBRARY} (Debian: apt install libnftables1): {e}") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        before = _sockets()
        ctx = lib.nft_ctx_new(_NFT_CTX_DEFAULT)
        if not ctx:
            raise PyrtError("nft_ctx_new failed")
        _close_on_exec(_sockets() - before)
        lib.nft_ctx_output_set_flags(ctx, _OUTPUT_JSON | _OUTPUT_HANDLE)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        self._lib = lib
        self._ctx = ctx
        self._lock = threading.Lock()

    def run(self, commands: list[dict]) -> dict | None:
        """Run a list of JSON commands (``{"add": {...}}``, ``{"list": {...}}``...) as one
        transaction; the JSON output, if any."""
        text = json.dumps({"nftables": commands}).encode()
        with self._lock:
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text)
            out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            msg = err.decode(errors="replace").strip().splitlines()
            raise NftError("nftables: " + (msg[0] if msg else f"error {rc}"))
        return json.loads(out) if out.strip() else None

    def try_run(self, commands: list[dict]) -> bool:
        """:meth:`run`, False instead of an error (for deletions of what may be gone)."""
        try:
            self.run(commands)
        except NftError:
            return False
        return True


_NFT: Nft | None = None


def nft() -> Nft:
    """The process's libnftables context."""
    global _NFT
    if _NFT is None:
        _NFT = Nft()
    return _NFT
