"""The types of an image config's ``config`` object, checked before pyrt keeps or uses it.

An image's config is the image author's, not the user's: ``"Cmd": 5``, ``"User": 5``,
``"Env": [1]`` or a 6,000-character ``WorkingDir`` must give one clear line (exit 125)
when the image is loaded or pulled, and the image must not be stored.  docker and
podman get the same effect from decoding the JSON into typed Go structures (``json:
cannot unmarshal number into ... of type []string``); this is that decoding's check,
for the fields of docker's ``ContainerConfig`` that an image carries.  Unknown fields
are ignored, as Go ignores them.

:func:`check_config` runs in :func:`parse_config` (so ``load``, ``pull`` and
``add_image`` share it) and again before a container is made from an
image (:func:`check_image`), for images an earlier pyrt stored unchecked.
"""
from __future__ import annotations

from ..errors import ImageError

#: PATH_MAX less the final NUL: a longer working directory can never be entered
MAX_PATH = 4095


def _type(v) -> str:
    return "null" if v is None else {bool: "boolean", int: "number", float: "number",
                                     str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


def _fail(field: str, want: str, v) -> ImageError:
    return ImageError(f"invalid image config: {field} must be {want}, not {_type(v)}")


def _string(field: str, v, *, max_len: int | None = None) -> None:
    if not isinstance(v, str):
        raise _fail(field, "a string", v)
    if "\x00" in v:
        raise ImageError(f"invalid image config: {field} contains a NUL character")
    if max_len is not None and len(v.encode("utf-8", "surrogateescape")) > max_len:
        raise ImageError(f"invalid image config: {field} is longer than {max_len} bytes")


def _strings(field: str, v, *, one_string_ok: bool = False) -> None:
    if one_string_ok and isinstance(v, str):  # docker's StrSlice: "echo hi" -> ["echo hi"]
        _string(field, v)
        return
    if not isinstance(v, list):
        raise _fail(field, "an array of strings", v)
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise _fail(f"{field}[{i}]", "a string", item)
        if "\x00" in item:
            raise ImageError(f"invalid image config: {field}[{i}] contains a NUL character")


def _int(field: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(field, "an integer", v)


def _bool(field: str, v) -> None:
    if not isinstance(v, bool):
        raise _fail(field, "true or false", v)


def _set(field: str, v) -> None:
    """docker's ``map[string]struct{}`` (ExposedPorts, Volumes): keys, each to {}."""
    if not isinstance(v, dict):
        raise _fail(field, "an object", v)
    for k, item in v.items():
        if "\x00" in k:
            raise ImageError(f"invalid image config: a key of {field} contains a NUL character")
        if item is not None and not isinstance(item, dict):
            raise _fail(f"{field}[{k!r}]", "an object", item)


def _labels(field: str, v) -> None:
    if not isinstance(v, dict):
        raise _fail(field, "an object of strings", v)
    for k, item in v.items():
        if not isinstance(item, str):
            raise _fail(f"{field}[{k!r}]", "a string", item)


def _healthcheck(field: str, v) -> None:
    if not isinstance(v, dict):
        raise _fail(field, "an object", v)
    for key, value in v.items():
        if value is None:
            continue
        if key == "Test":
            _strings(f"{field}.Test", value)
        elif key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
            _int(f"{field}.{key}", value)


_CHECKS = {
    "Cmd": lambda f, v: _strings(f, v, one_string_ok=True),
    "Entrypoint": lambda f, v: _strings(f, v, one_string_ok=True),
    "Env": _strings,
    "Shell": _strings,
    "OnBuild": _strings,
    "User": _string,
    "WorkingDir": lambda f, v: _string(f, v, max_len=MAX_PATH),
    "StopSignal": _string,
    "Hostname": _string,
    "Domainname": _string,
    "MacAddress": _string,
    "Image": _string,
    "StopTimeout": _int,
    "ExposedPorts": _set,
    "Volumes": _set,
    "Labels": _labels,
    "Healthcheck": _healthcheck,
    "ArgsEscaped": _bool,
    "AttachStdin": _bool,
    "AttachStdout": _bool,
    "AttachStderr": _bool,
    "Tty": _bool,
    "OpenStdin": _bool,
    "StdinOnce": _bool,
    "NetworkDisabled": _bool,
}


def check_config(config) -> None:
    """Raise ImageError (one line) unless ``config`` (an image config's ``config``
    object, or None) has the types docker decodes it into.  null is allowed anywhere."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise _fail("config", "an object", config)
    for field, check in _CHECKS.items():
        value = config.get(field)
        if value is not None:
            check(field, value)


def check_image(image) -> None:
    """:func:`check_config` for an image already in the store (an earlier pyrt kept
    configs unchecked); the error names the image."""
    try:
        check_config(image.config.to_oci())
    except ImageError as e:
        raise ImageError(f"image {image.short_id}: {e}") from None
    except (TypeError, AttributeError, ValueError):
        raise ImageError(f"image {image.short_id}: invalid image config") from None


def parse_config(config_bytes: bytes) -> dict:
    """The image config blob parsed, its ``rootfs`` and ``config`` checked; any fault is
    an :class:`ImageError` (one line) before anything is stored."""
    import json

    from .digests import check_digest

    try:
        cfg = json.loads(config_bytes)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"malformed image config: {e}") from None
    if not isinstance(cfg, dict):
        raise ImageError("malformed image config: not a JSON object")
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" \
            or not isinstance(rootfs.get("diff_ids", []), list):
        raise ImageError("malformed image config: rootfs must be {\"type\": \"layers\", \"diff_ids\": [...]}")
    for d in rootfs.get("diff_ids") or []:
        check_digest(d, "layer diff id")
    if cfg.get("config") is not None and not isinstance(cfg.get("config"), dict):
        raise ImageError("malformed image config: \"config\" is not an object")
    check_config(cfg.get("config"))  # the field types, before anything is stored
    return cfg
