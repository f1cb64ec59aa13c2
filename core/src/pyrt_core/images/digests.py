"""Digests of image content: ``sha256:<hex>`` strings, checked before they become
file names, the chain ids that key layers, and a reader that hashes what passes.

An image's id is its config blob's digest; its layers are chain ids
(``chain(L1) = diff_id(L1)``, ``chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln))``),
so a layer shared by several images is stored once.
"""
from __future__ import annotations

import io

from ..errors import ImageError

TYPE_CHECKING = False  # (not typing's: this module is on run's path)
if TYPE_CHECKING:
    from typing import BinaryIO, Sequence

__all__ = ["is_digest", "is_hex", "sha256", "sha256_digest", "check_digest", "chain_id",
           "chain_ids", "HashingReader", "short"]


def sha256(data: bytes = b""):
    """hashlib's sha256, imported on first use: loading OpenSSL costs ~3-5 ms, and most
    commands open the image store without hashing anything (stop reads a StopSignal)."""
    import hashlib

    return hashlib.sha256(data)


_HEX = frozenset("0123456789abcdef")


def is_hex(text) -> bool:
    """Whether ``text`` is lowercase hex digits, at least one (without ``re``, whose
    ``$`` would also accept a trailing newline)."""
    return isinstance(text, str) and bool(text) and all(c in _HEX for c in text)


def is_digest(text) -> bool:
    """Whether ``text`` is ``sha256:<64 lowercase hex>``, exactly."""
    return isinstance(text, str) and len(text) == 71 and text.startswith("sha256:") \
        and is_hex(text[7:])

_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + sha256(data).hexdigest()


def check_digest(digest: str, what: str = "digest") -> str:
    """Refuse anything but ``sha256:<64 hex>`` (digests become file names)."""
    if not is_digest(digest):
        if isinstance(digest, str) and ":" in digest and not digest.startswith("sha256:"):
            raise ImageError(f"unsupported digest algorithm in {what} {digest!r} (only sha256)")
        raise ImageError(f"invalid {what} {digest!r}")
    return digest


def chain_id(parent_chain_id: str | None, diff_id: str) -> str:
    """The chain id of a layer with ``diff_id`` on the layer ``parent_chain_id``."""
    if not parent_chain_id:
        return diff_id
    return sha256_digest(f"{parent_chain_id} {diff_id}".encode())


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ids of a whole stack of layers, base first."""
    out: list[str] = []
    parent = None
    for d in diff_ids:
        parent = chain_id(parent, d)
        out.append(parent)
    return out


class HashingReader(io.RawIOBase):
    """A read-only stream that hashes (sha256) and counts what passes through."""

    def __init__(self, f: BinaryIO):
        super().__init__()
        self._f = f
        self._h = sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while True:
                c = self.read(_CHUNK)
                if not c:
                    return b"".join(chunks)
                chunks.append(c)
        data = self._f.read(n)
        if data:
            self._h.update(data)
            self.count += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()


def short(digest: str | None) -> str:
    """The 12 hex digits docker shows for an id or digest."""
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:12]
