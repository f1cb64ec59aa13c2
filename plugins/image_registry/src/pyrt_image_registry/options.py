"""Registry settings: where credentials and CAs live, which registries are insecure.

Sources, highest first: the per-call ``settings`` mapping (from CLI flags:
``--authfile``, ``--cert-dir``, ``--tls-verify=false``,
``--max-concurrent-downloads``), the environment (``REGISTRY_AUTH_FILE``,
``PYRT_REGISTRY_CERTS_DIR``, ``PYRT_INSECURE_REGISTRIES`` comma-separated,
``PYRT_MAX_CONCURRENT_DOWNLOADS``), the ``[registries]`` table of the pyrt
config file, built-in defaults::

    [registries]
    insecure = ["127.0.0.1:5000"]       # plain http or unverified TLS allowed
    certs_dir = "/etc/pyrt/certs.d"     # <certs_dir>/<host:port>/ca.crt (docker's layout)
    authfile = "/run/containers/0/auth.json"
    max_concurrent_downloads = 3
    max_concurrent_uploads = 3
    retries = 5
"""
from __future__ import annotations

import os

import attrs

from pyrt_core.errors import UsageError

DEFAULT_CERTS_DIRS = ("/etc/pyrt/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d")
SYSTEM_CONFIG = "/etc/pyrt/pyrt.toml"


@attrs.define
class RegistryOptions:
    authfile: str | None = None
    certs_dirs: list[str] = attrs.field(factory=lambda: list(DEFAULT_CERTS_DIRS))
    insecure: list[str] = attrs.field(factory=list)
    tls_verify: bool | None = None  # None: per registry (insecure list); False: all insecure
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 3
    retries: int = 5
    backoff: float = 0.5  # first retry delay, doubled each time (capped at 8 s)
    timeout: float = 60.0
    chunk_size: int = 16 << 20  # uploads larger than this are sent in chunks (PATCH)
    credentials: tuple[str, str] | None = None  # --creds USER:PASS for this call

    def is_insecure(self, host: str) -> bool:
        if self.tls_verify is False:
            return True
        if self.tls_verify is True:
            return False
        return host in self.insecure or host.split(":")[0] in self.insecure


def _read_config(path: str | None) -> dict:
    if not path:
        path = os.environ.get("PYRT_CONFIG") or (SYSTEM_CONFIG if os.path.exists(SYSTEM_CONFIG) else None)
    if not path:
        return {}
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"config file {path}: {e}") from None
    reg = data.get("registries", {})
    if not isinstance(reg, dict):
        raise UsageError(f"config file {path}: [registries] must be a table")
    return reg


def _int(v, what: str, minimum: int = 1) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be an integer, got {v!r}") from None
    if n < minimum:
        raise UsageError(f"{what} must be at least {minimum}, got {n}")
    return n


def from_settings(settings: dict | None, env=None) -> RegistryOptions:
    """Options for one pull or push from ``FetchOptions.settings`` (or the CLI)."""
    settings = dict(settings or {})
    env = os.environ if env is None else env
    o = RegistryOptions()
    cfg = _read_config(settings.get("config_file"))
    if cfg.get("insecure") is not None:
        if not isinstance(cfg["insecure"], list):
            raise UsageError("config file: registries.insecure must be a list of host[:port]")
        o.insecure = [str(h) for h in cfg["insecure"]]
    if cfg.get("certs_dir"):
        o.certs_dirs = [str(cfg["certs_dir"])]
    if cfg.get("authfile"):
        o.authfile = str(cfg["authfile"])
    for key, attr in (("max_concurrent_downloads", "max_concurrent_downloads"),
                      ("max_concurrent_uploads", "max_concurrent_uploads"),
                      ("retries", "retries")):
        if cfg.get(key) is not None:
            setattr(o, attr, _int(cfg[key], f"registries.{key}", 0 if key == "retries" else 1))
    if env.get("PYRT_INSECURE_REGISTRIES"):
        o.insecure += [h.strip() for h in env["PYRT_INSECURE_REGISTRIES"].split(",") if h.strip()]
    if env.get("PYRT_REGISTRY_CERTS_DIR"):
        o.certs_dirs = [env["PYRT_REGISTRY_CERTS_DIR"]]
    if env.get("REGISTRY_AUTH_FILE"):
        o.authfile = env["REGISTRY_AUTH_FILE"]
    if env.get("PYRT_MAX_CONCURRENT_DOWNLOADS"):
        o.max_concurrent_downloads = _int(env["PYRT_MAX_CONCURRENT_DOWNLOADS"],
                                          "PYRT_MAX_CONCURRENT_DOWNLOADS")
    if env.get("PYRT_REGISTRY_RETRIES"):
        o.retries = _int(env["PYRT_REGISTRY_RETRIES"], "PYRT_REGISTRY_RETRIES", 0)
    if env.get("PYRT_REGISTRY_BACKOFF"):
        o.backoff = float(env["PYRT_REGISTRY_BACKOFF"])
    if settings.get("authfile"):
        o.authfile = settings["authfile"]
    if settings.get("certs_dir"):
        o.certs_dirs = [settings["certs_dir"]]
    if settings.get("tls_verify") is not None:
        o.tls_verify = bool(settings["tls_verify"])
    if settings.get("insecure"):
        o.insecure += list(settings["insecure"])
    if settings.get("max_concurrent_downloads") is not None:
        o.max_concurrent_downloads = _int(settings["max_concurrent_downloads"], "--max-concurrent-downloads")
    if settings.get("max_concurrent_uploads") is not None:
        o.max_concurrent_uploads = _int(settings["max_concurrent_uploads"], "--max-concurrent-uploads")
    if settings.get("retries") is not None:
        o.retries = _int(settings["retries"], "--retries", 0)
    if settings.get("chunk_size"):
        o.chunk_size = _int(settings["chunk_size"], "chunk size")
    if settings.get("creds"):
        user, sep, pw = str(settings["creds"]).partition(":")
        if not sep or not user:
            raise UsageError("--creds must be USERNAME:PASSWORD")
        o.credentials = (user, pw)
    return o
