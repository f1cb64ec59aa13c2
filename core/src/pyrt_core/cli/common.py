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


def ago(ts: str) -> str:
    import datetime

    if not ts:
        return "N/A"
    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    secs = (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()
    for n, unit in ((31536000, "year"), (2592000, "month"), (604800, "week"), (86400, "day"),
                    (3600, "hour"), (60, "minute")):
        if secs >= n:
            k = int(secs // n)
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a minute ago" if secs >= 0 else "N/A"


def split_name(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:
        return name, "<none>"
    return repo, tag


def table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
