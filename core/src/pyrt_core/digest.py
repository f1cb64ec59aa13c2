"""SHA-256 for hot paths, without :mod:`hashlib`.

``import hashlib`` loads OpenSSL (``_hashlib``): ~6 ms on a slow VM, paid by
every ``pyrt-runtime create`` with a seccomp profile (the compiled filter's
cache key).  CPython's own SHA-256 module (``_sha256``; ``_sha2`` from 3.12)
gives the same digest; hashlib is the fallback.
"""
from __future__ import annotations


def sha256_hex(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``."""
    try:
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()
