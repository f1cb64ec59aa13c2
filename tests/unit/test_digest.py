"""pyrt_core.digest: SHA-256 without OpenSSL (the runtime's create path names its
seccomp cache files with it; docs/architecture.md, "The hot path")."""


def test_seccomp_cache_names_use_sha256():
    import hashlib

    from pyrt_core.digest import sha256_hex

    for data in (b"", b"abc", bytes(range(256)) * 40):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
