"""JSON for hot paths (the runtime's commands, the entry-point cache) without :mod:`json`.

``import json`` imports :mod:`re` (and with it :mod:`enum`): ~6 ms, paid by each
``start``, ``state`` and ``delete`` an engine runs for every container, for a
document of a few hundred bytes.  The parsing and encoding themselves are the
C accelerator's (:mod:`_json`, the same code :mod:`json` uses), so the
documents read and written are exactly :mod:`json`'s:

* :func:`loads` is ``json.loads`` (strict, as its default);
* :func:`dumps` is ``json.dumps(obj)`` (compact separators: ``","`` and ``":"``);
* :func:`dumps_text` is ``json.dumps(obj, ensure_ascii=False)``, compact;
* :func:`dumps_indented` is ``json.dumps(obj, indent=N, ensure_ascii=...)`` for the
  types JSON has.

Only when :mod:`_json` is missing (an interpreter built without it) is
:mod:`json` used.
"""
from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - CPython always builds it
    _json = None

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict = {}


_scan = None
_encode = None


class JSONDecodeError(ValueError):
    """Not a JSON document (a ValueError, as ``json.JSONDecodeError``)."""


def loads(text: str | bytes):
    global _scan
    if _json is None:  # pragma: no cover
        import json

        return json.loads(text)
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    if _scan is None:
        _scan = _json.make_scanner(_Context())
    n = len(text)
    i = _skip_ws(text, 0, n)
    try:
        obj, end = _scan(text, i)
    except StopIteration as e:
        raise JSONDecodeError(f"Expecting value at {e.value}") from None
    except SystemError:
        # _json reports a malformed document with json.decoder's error class, which it
        # finds only when json is imported (else SystemError): json gives the message
        import json

        return json.loads(text)
    if _skip_ws(text, end, n) != n:
        raise JSONDecodeError(f"Extra data at {end}")
    return obj


def _skip_ws(text: str, i: int, n: int) -> int:
    while i < n and text[i] in " \t\n\r":
        i += 1
    return i


def dumps(obj) -> str:
    global _encode
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":"))
    if _encode is None:
        _encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None,
                                     ":", ",", False, False, True)
    return "".join(_encode(obj, 0))


_encode_text = None


def dumps_text(obj, default=None) -> str:
    """``json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=default)``
    (the Go templates' ``json`` function, cli/gotemplate.py)."""
    global _encode_text
    if _json is None or default is not None:
        if _json is None:  # pragma: no cover
            import json

            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=default)
        return "".join(_json.make_encoder({}, default, _json.encode_basestring, None, ":", ",",
                                          False, False, True)(obj, 0))
    if _encode_text is None:
        _encode_text = _json.make_encoder({}, _default, _json.encode_basestring, None,
                                          ":", ",", False, False, True)
    return "".join(_encode_text(obj, 0))


def _default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps_indented(obj, indent: int = 2, _level: int = 0, ensure_ascii: bool = True) -> str:
    """``json.dumps(obj, indent=indent, ensure_ascii=ensure_ascii)``."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        scalar = dumps if ensure_ascii else dumps_text
        pad = "\n" + " " * (indent * (_level + 1))
        items = []
        for k, v in obj.items():
            if not isinstance(k, str):
                k = dumps(k) if isinstance(k, (bool, type(None))) else str(k)
            items.append(f"{scalar(k)}: {dumps_indented(v, indent, _level + 1, ensure_ascii)}")
        return "{" + pad + ("," + pad).join(items) + "\n" + " " * (indent * _level) + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        pad = "\n" + " " * (indent * (_level + 1))
        items = [dumps_indented(v, indent, _level + 1, ensure_ascii) for v in obj]
        return "[" + pad + ("," + pad).join(items) + "\n" + " " * (indent * _level) + "]"
    return dumps(obj) if ensure_ascii else dumps_text(obj)
