"""docker's ``--filter`` of the prune commands (``system prune``, ``container prune``,
``image prune``, ``volume prune``): which of the unused objects may go.

* ``until=TIMESTAMP``: only what was created before it (a Unix time, an RFC 3339 date
  or a Go duration before now, as ``events --since``); not for volumes, which docker
  refuses it for;
* ``label=KEY`` / ``label=KEY=VALUE``: only what carries the label (with that value);
* ``label!=KEY`` / ``label!=KEY=VALUE``: only what lacks the label (or has another
  value).

Several ``label`` filters must all hold; ``until`` given twice is docker's error.  A
bad filter is one line and exit 125 before anything is removed.
"""
from __future__ import annotations

from ..errors import UsageError

KEYS = ("until", "label", "label!")


class PruneFilter:
    """The resolved filters: ``until_ns`` (None: any age), ``labels`` and
    ``not_labels`` (``KEY`` or ``KEY=VALUE`` each)."""

    def __init__(self, until_ns: int | None = None, labels: list[str] | None = None,
                 not_labels: list[str] | None = None) -> None:
        self.until_ns = until_ns
        self.labels = list(labels or [])
        self.not_labels = list(not_labels or [])

    @classmethod
    def parse(cls, items: list[str] | None, now_ns: int | None = None,
              volumes: bool = False) -> PruneFilter:
        """``--filter`` values; ``volumes``: they apply to volumes too (no ``until``)."""
        until = None
        labels: list[str] = []
        not_labels: list[str] = []
        for item in items or []:
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise UsageError(f"bad format of filter (expected name=value): {item}")
            if key not in KEYS:
                raise UsageError(f"invalid filter '{key}'")
            if key == "until":
                if volumes:
                    raise UsageError("invalid filter 'until': volumes have no creation "
                                     "time filter (docker's volume prune refuses it too)")
                if until is not None:
                    raise UsageError("more than one until filter specified")
                if now_ns is None:
                    import time

                    now_ns = time.time_ns()
                from .events import parse_time

                until = parse_time(value, now_ns)
            elif not value.partition("=")[0]:
                raise UsageError(f"invalid filter '{key}={value}': a label key is needed")
            else:
                (labels if key == "label" else not_labels).append(value)
        return cls(until, labels, not_labels)

    def __bool__(self) -> bool:
        return self.until_ns is not None or bool(self.labels or self.not_labels)

    def matches(self, created: str | None, labels: dict | None) -> bool:
        """Whether an object created at ``created`` (RFC 3339) with ``labels`` may go."""
        labels = labels or {}
        for w in self.labels:
            k, sep, v = w.partition("=")
            if k not in labels or (sep and labels[k] != v):
                return False
        for w in self.not_labels:
            k, sep, v = w.partition("=")
            if k in labels and (not sep or labels[k] == v):
                return False
        if self.until_ns is not None:
            when = rfc3339_ns(created)
            if when is None or when >= self.until_ns:
                return False  # docker: an object without a time is kept
        return True


def rfc3339_ns(text: str | None) -> int | None:
    """Nanoseconds since the epoch of a record's RFC 3339 time (``2026-12-07T19:00:00.
    123456Z``, ``...+00:00``); None when it is not one."""
    if not isinstance(text, str) or len(text) < 19 or text[4] != "-" or text[10] != "T":
        return None
    import datetime

    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    main, dot, rest = iso.partition(".")
    frac = ""
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, zone = rest[:digits], rest[digits:]
        iso = main + zone
    try:
        when = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    seconds = int(when.timestamp())
    return seconds * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))
