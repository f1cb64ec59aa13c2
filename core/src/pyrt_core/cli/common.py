"""Helpers shared by the CLI's command modules."""
from __future__ import annotations


def settings_from_args(args):
    """The engine's settings for the global flags (--root, --runroot, --storage-driver, ...)."""
    from ..config import load_settings

    return load_settings(
        root=getattr(args, "root", None), runroot=getattr(args, "runroot", None),
        storage_driver=getattr(args, "storage_driver", None),
        storage_opts=getattr(args, "storage_opt", None), config=getattr(args, "config", None),
    )


def engine_from_args(args, pm=None):
    """An Engine for the global flags (and the plugins' flags of the command:
    ``args.plugin_options``, see cli/extensions.py)."""
    from ..engine import Engine

    engine = Engine(settings_from_args(args), pm)
    engine.plugin_options = dict(getattr(args, "plugin_options", None) or {})
    return engine



def human_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return str(n)


def seconds_since(ts: str) -> float | None:
    """Seconds from the RFC 3339 time ``ts`` to now (None when there is no time)."""
    import datetime

    if not ts or ts.startswith("0001-"):
        return None
    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()


def human_duration(secs: float) -> str:
    """docker's units.HumanDuration: "Less than a second", "5 seconds", "About a minute",
    "3 hours", "2 weeks"..."""
    s = int(secs)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = int(secs / 3600 + 0.5)  # Go's Duration.Round(time.Hour)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{s // 3600 // 24 // 365} years"


def ago(ts: str) -> str:
    """``ts`` as docker's CREATED column says it: "5 minutes ago" (N/A without a time)."""
    secs = seconds_since(ts)
    if secs is None:
        return "N/A" if not ts or ts.startswith("0001-") else ts
    return human_duration(max(secs, 0)) + " ago"


def docker_time(ts: str) -> str:
    """RFC 3339 ``ts`` as Go prints a time.Time (docker's CreatedAt): "2024-05-01 10:00:00
    +0000 UTC"."""
    if not ts or len(ts) < 19:
        return ts
    return ts[:10] + " " + ts[11:19] + " +0000 UTC"


def split_name(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:
        return name, "<none>"
    return repo, tag


def table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
