"""Registry credentials in the auth file format docker and podman share::

    {"auths": {"registry.example:5000": {"auth": base64("user:password")}}}

Where: ``--authfile``, else ``$REGISTRY_AUTH_FILE``, else (podman's rule)
``$XDG_RUNTIME_DIR/containers/auth.json``, else
``/run/containers/<uid>/auth.json``.  Reading also falls back to docker's
``~/.docker/config.json``.  Files are written atomically with mode 0600.
Credential helpers (``credsStore``) are not supported: such entries are skipped.
"""
from __future__ import annotations

import base64
import json
import os

from pyrt_core.api import atomic_write, read_json
from pyrt_core.errors import UsageError

_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


def default_path(env=None) -> str:
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return env["REGISTRY_AUTH_FILE"]
    if env.get("XDG_RUNTIME_DIR"):
        return os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json")
    return f"/run/containers/{os.getuid()}/auth.json"


def _docker_path() -> str:
    return os.path.join(os.path.expanduser("~"), ".docker", "config.json")


def _read(path: str) -> dict:
    try:
        data = read_json(path, None)
    except ValueError as e:
        raise UsageError(f"auth file {path} is not valid JSON: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot read auth file {path}: {e.strerror}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise UsageError(f"auth file {path}: expected {{\"auths\": {{...}}}}")
    return data


def _keys_for(host: str) -> list[str]:
    if host in _HUB_KEYS:
        return list(_HUB_KEYS)
    return [host, "https://" + host, "http://" + host]


def _decode(entry) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            raw = base64.b64decode(entry["auth"]).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, pw = raw.partition(":")
        if sep:
            return user, pw
    if entry.get("username") and entry.get("password") is not None:
        return entry["username"], entry["password"]
    return None


def lookup(host: str, path: str | None = None) -> tuple[str, str] | None:
    """(username, password) stored for ``host``, or None."""
    paths = [path] if path else [default_path(), _docker_path()]
    for p in paths:
        auths = _read(p).get("auths", {})
        for k in _keys_for(host):
            found = _decode(auths.get(k))
            if found:
                return found
    return None


def store(host: str, username: str, password: str, path: str | None = None) -> str:
    """Save credentials for ``host``; returns the file written."""
    path = path or default_path()
    data = _read(path)
    auths = data.setdefault("auths", {})
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths[host] = {"auth": token}
    _write(path, data)
    return path


def remove(host: str | None, path: str | None = None) -> bool:
    """Forget ``host`` (every host when None).  Returns whether anything was removed."""
    path = path or default_path()
    data = _read(path)
    auths = data.get("auths", {})
    if host is None:
        found = bool(auths)
        data["auths"] = {}
    else:
        keys = [k for k in _keys_for(host) if k in auths]
        for k in keys:
            del auths[k]
        found = bool(keys)
    if found:
        _write(path, data)
    return found


def _write(path: str, data: dict) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps(data, indent="\t") + "\n", mode=0o600)
