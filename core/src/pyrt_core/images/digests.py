"""Digests of image content: ``sha256:<hex>`` strings, checked before they become
file names, the chain ids that key layers, and a reader that hashes what passes.

An image's id is its config blob's digest; its layers are chain ids
(``chain(L1) = diff_id(L1)``, ``chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln))``),
so a layer shared by several images is stored once.
"""
from __future__ import annotations

import io
import re
from typing import BinaryIO, Sequence

from ..errors import ImageError

__all__ = ["DIGEST_RE", "HEX_RE", "sha256", "sha256_digest", "check_digest", "chain_id",
           "chain_ids", "HashingReader", "short"]


def sha256(data: bytes = b""):
    """hashlib's sha256, imported on first use: loading OpenSSL costs ~3-5 ms, and most
    commands open the image store without hashing anything (stop reads a StopSignal)."""
    import hashlib

    return hashlib.sha256(data)


DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
HEX_RE = re.compile(r"^[0-9a-f]+$")
_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + sha256(data).hexdigest()


def check_digest(digest: str, what: str = "digest") -> str:
    """Refuse anything but ``sha256:<64 hex>`` (digests become file names)."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
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
