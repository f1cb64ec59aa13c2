"""docker's health check settings: the ``--health-*`` flags, the image's ``Healthcheck``
(moby's ``container.HealthConfig``: ``Test``, and ``Interval``, ``Timeout``,
``StartPeriod``, ``StartInterval`` in nanoseconds, ``Retries``), and their merge.

The merge follows moby's (``daemon/commit.go``, ``merge``): without health flags the
image's check is used as it is; with some, the missing ``Test`` and the zero durations and
retries come from the image.  ``--no-healthcheck`` is ``Test: ["NONE"]``.  The record keeps
the effective check in docker's shape (zero fields left out, as docker's JSON), so ``ps``
and the runner never read the image again; the defaults (30 s, 30 s, 0 s, 5 s, 3) apply
when it runs (:func:`effective`).

No imports: ``ps`` reads records through this module.
"""
from __future__ import annotations

SECOND = 1_000_000_000
#: moby's defaults (daemon/health.go)
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0,
            "StartInterval": 5 * SECOND, "Retries": 3}
DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")
#: docker's flag of each field
FLAGS = {"Interval": "--health-interval", "Timeout": "--health-timeout",
         "StartPeriod": "--health-start-period", "StartInterval": "--health-start-interval",
         "Retries": "--health-retries"}
#: moby's minimum for a duration that is set (api/types/container: MinimumDuration)
MINIMUM = 1_000_000

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND}


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` (what docker's duration flags use) in nanoseconds:
    ``1s``, ``500ms``, ``1m30s``, ``1.5h``, ``0``; a sign; no bare numbers but 0."""
    s = text
    orig = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError(f'time: invalid duration "{orig}"')
    total = 0.0
    total_int = 0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() and s[i].isascii()):
            i += 1
        whole = s[:i]
        s = s[i:]
        frac = ""
        if s[:1] == ".":
            s = s[1:]
            j = 0
            while j < len(s) and s[j].isdigit() and s[j].isascii():
                j += 1
            frac = s[:j]
            s = s[j:]
        if not whole and not frac:
            raise DurationError(f'time: invalid duration "{orig}"')
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit = s[:j]
        s = s[j:]
        if not unit:
            raise DurationError(f'time: missing unit in duration "{orig}"')
        if unit not in _UNITS:
            raise DurationError(f'time: unknown unit "{unit}" in duration "{orig}"')
        scale = _UNITS[unit]
        total_int += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale / (10 ** len(frac))
    value = total_int + int(total)
    if value > (1 << 63) - 1:
        raise DurationError(f'time: invalid duration "{orig}"')
    return -value if neg else value


def format_duration(ns: int) -> str:
    """Go's ``Duration.String()``: ``30s``, ``1m30s``, ``500ms``, ``1.5s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < SECOND:
        for unit, scale in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= scale:
                return sign + _frac(ns, scale) + unit
    h, rest = divmod(ns, 3600 * SECOND)
    m, rest = divmod(rest, 60 * SECOND)
    out = sign
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + _frac(rest, SECOND) + "s"


def _frac(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")


def from_flags(args) -> dict | None:
    """The check the flags ask for (docker's ``HealthConfig``, zero fields left out), or
    None when no health flag is given.  Raises ``UsageError`` (one line, exit 125) for a
    bad duration, a negative one, or ``--no-healthcheck`` with another health flag."""
    from ..errors import UsageError

    cmd = getattr(args, "health_cmd", None)
    texts = {"Interval": getattr(args, "health_interval", None),
             "Timeout": getattr(args, "health_timeout", None),
             "StartPeriod": getattr(args, "health_start_period", None),
             "StartInterval": getattr(args, "health_start_interval", None)}
    retries = getattr(args, "health_retries", None)
    out: dict = {}
    for key, text in texts.items():
        if text is None:
            continue
        try:
            ns = parse_duration(text)
        except DurationError as e:
            raise UsageError(f'invalid argument "{text}" for "{FLAGS[key]}" flag: {e}') from None
        if ns < 0:
            raise UsageError(f"{FLAGS[key]} cannot be negative")
        if 0 < ns < MINIMUM:
            raise UsageError(f"{FLAGS[key]} cannot be less than {format_duration(MINIMUM)}")
        if ns:
            out[key] = ns
    if retries is not None:
        try:
            n = int(retries, 10) if isinstance(retries, str) else int(retries)
        except ValueError:
            raise UsageError(f'invalid argument "{retries}" for "--health-retries" flag: '
                             "strconv.ParseInt: parsing "
                             f'"{retries}": invalid syntax') from None
        if n < 0:
            raise UsageError("--health-retries cannot be negative")
        if n:
            out["Retries"] = n
    if getattr(args, "no_healthcheck", False):
        if cmd is not None or out or retries is not None:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if cmd is not None:
        if "\0" in cmd:
            raise UsageError("invalid --health-cmd: it holds a NUL byte")
        if cmd:
            out = {"Test": ["CMD-SHELL", cmd], **out}
    return out or None  # all zero: no settings (docker's haveHealthSettings)


def image_healthcheck(oci_config: dict | None) -> dict | None:
    """The image's ``Healthcheck`` (its config's ``config.Healthcheck``), checked: a
    malformed one (not docker's shape) is ignored, as an unknown field."""
    hc = (oci_config or {}).get("Healthcheck") if isinstance(oci_config, dict) else None
    if not isinstance(hc, dict):
        return None
    out: dict = {}
    test = hc.get("Test")
    if isinstance(test, list) and all(isinstance(t, str) for t in test):
        if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
            return None
        if test:
            out["Test"] = list(test)
    for key in DURATIONS + ("Retries",):
        v = hc.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out[key] = v
    return out or None


def merge(user: dict | None, image: dict | None) -> dict | None:
    """moby's merge of the container's check with the image's."""
    if user is None:
        return dict(image) if image else None
    out = dict(user)
    if image:
        if not out.get("Test") and image.get("Test"):
            out = {"Test": list(image["Test"]), **out}
        for key in DURATIONS + ("Retries",):
            if not out.get(key) and image.get(key):
                out[key] = image[key]
    return out


def for_create(engine, user: dict | None, image) -> dict | None:
    """The check a new container records: the flags' merged with the image's
    ``Healthcheck`` (read from its config blob: the image index keeps only a few fields)."""
    from ..errors import PyrtError
    from ..jsonlean import loads  # json.loads, without json's import (run's path)

    try:
        oci = loads(engine.images.config_bytes(image)).get("config")
    except (OSError, ValueError, AttributeError, PyrtError):
        oci = None
    return merge(user, image_healthcheck(oci))


def enabled(hc) -> bool:
    """Whether ``hc`` (a record's effective check) runs anything: a ``CMD`` or
    ``CMD-SHELL`` test with a command (``NONE`` or none: no health checks)."""
    if not isinstance(hc, dict):
        return False
    test = hc.get("Test")
    if not isinstance(test, list) or len(test) < 2:
        return False
    return test[0] in ("CMD", "CMD-SHELL") and all(isinstance(t, str) for t in test)


def effective(hc: dict) -> dict:
    """``hc`` with docker's defaults where a field is zero or missing."""
    out = dict(DEFAULTS)
    for key in DURATIONS + ("Retries",):
        v = hc.get(key)
        if isinstance(v, int) and v > 0:
            out[key] = v
    return out


def argv(hc: dict) -> list[str]:
    """The command a check runs in the container: ``CMD`` as given, ``CMD-SHELL`` through
    ``/bin/sh -c`` (docker's shell on Linux)."""
    test = hc["Test"]
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    return list(test[1:])
