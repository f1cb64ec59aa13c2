"""``--filter KEY=VALUE`` as docker reads it, for every listing command (ps, images, and
later volume ls, network ls): one key given several times matches any of its values,
different keys must all match, an unknown key is docker's error."""
from __future__ import annotations

from ..errors import UsageError

#: ps's filter keys (the default of parse_filters)
FILTER_KEYS = ("id", "name", "label", "status", "ancestor", "before", "since", "exited",
               "volume", "network", "health")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


def parse_filters(items: list[str] | None, keys=FILTER_KEYS) -> dict[str, list[str]]:
    """``--filter KEY=VALUE`` values by key; unknown keys are docker's error."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {item}")
        key = key.strip().lower()
        if key not in keys:
            raise UsageError(f"invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    for v in out.get("status", ()):
        if v not in STATUSES:
            raise UsageError(f"invalid filter 'status={v}'")
    for v in out.get("health", ()):
        if v not in HEALTH:
            raise UsageError(f"Unrecognised filter value for health: {v}")
    for v in out.get("exited", ()):
        if not v.lstrip("-").isdigit():
            raise UsageError(f"invalid filter 'exited={v}'")
    return out


def labels_match(labels: dict, wanted: list[str]) -> bool:
    """docker's label filter: every ``KEY`` or ``KEY=VALUE`` given must be there."""
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


