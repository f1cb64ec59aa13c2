"""``pyrt events``: the store's event journal (pyrt_core.events) as docker prints its
events: past ones with ``--since``/``--until``, then new ones as they are written (like
``tail -f``) until ``--until`` or Ctrl-C (exit 0); ``--filter`` and ``--format`` as docker's.

Times are read as docker reads them (``GetTimestamp``): RFC 3339 with or without
fractions and zone (a time without a zone is local), a date, unix seconds
(``1700000000.5``), or a Go duration (``10m``, ``1h30m``) counted back from now."""
from __future__ import annotations

import sys

from ..errors import UsageError

#: docker's event filter keys (those pyrt's events can match)
FILTER_KEYS = ("container", "event", "image", "label", "network", "type", "volume", "scope")
#: docker's event types (a ``type=`` filter names one of them)
TYPES = ("config", "container", "daemon", "image", "network", "node", "plugin", "secret",
         "service", "volume")
#: actions docker matches by prefix (their action names a command or a status)
_PREFIXED = ("exec_create", "exec_start", "health_status")


def _p_events(cmd) -> None:
    ev = cmd("events", "Get real time events from the engine", cmd_events)
    ev.add_argument("--since", metavar="TIME",
                    help="show events since TIME (RFC 3339, unix seconds, or a duration "
                         "such as 10m before now)")
    ev.add_argument("--until", metavar="TIME", help="stream events until TIME")
    ev.add_argument("--filter", "-f", action="append", default=[], metavar="KEY=VALUE",
                    help="type=, event=, container=, image=, label=, volume=, network=, scope=")
    ev.add_argument("--format", metavar="FORMAT",
                    help="'json' (one object per line) or a Go template (e.g. "
                         "'{{.Type}} {{.Action}} {{.Actor.ID}}')")


PARSERS = {"events": _p_events}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)


# -- times ---------------------------------------------------------------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def go_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds (None when ``text`` is not one)."""
    import re

    m = re.fullmatch(r"([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+", text)
    if not m or text in ("", "+", "-"):
        return None
    body = text.lstrip("+-")
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", body):
        total += float(num) * _UNITS[unit]
    return -int(total) if m.group(1) == "-" else int(total)


def parse_time(text: str, now_ns: int) -> int:
    """docker's ``--since``/``--until`` value in nanoseconds since the epoch."""
    import datetime

    value = text.strip()
    d = go_duration(value)
    if value != "0" and d is not None:
        return now_ns - d
    if "-" not in value:  # unix seconds, with an optional fraction
        sec, dot, frac = value.partition(".")
        if sec.isdigit() and (not dot or frac.isdigit()) and frac == frac[:9]:
            return int(sec) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
        raise UsageError(f"failed to parse value as time or duration: {text!r}")
    iso = value
    if iso[-1:] in ("z", "Z"):
        iso = iso[:-1] + "+00:00"
    date, t, rest = iso.partition("T")
    if t:
        clock, zone = rest, ""
        for sign in ("+", "-"):
            if sign in rest:
                clock, _, z = rest.partition(sign)
                zone = sign + z
        parts = clock.split(":")
        if len(parts) == 1:
            clock += ":00:00"
        elif len(parts) == 2:
            clock += ":00"
        iso = f"{date}T{clock}{zone}"
    try:
        when = datetime.datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(f"failed to parse value as time or duration: {text!r}") from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as docker's ParseInLocation
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


# -- filters -------------------------------------------------------------------------------

def _fuzzy(wanted: list[str] | None, *values: str) -> bool:
    """docker's FuzzyMatch: no such filter, or a value equal to / a prefix of one given."""
    if not wanted:
        return True
    return any(v and (v == w or v.startswith(w)) for w in wanted for v in values)


def _exact(wanted: list[str] | None, *values: str) -> bool:
    return not wanted or any(v in wanted for v in values if v)


def _strip_tag(name: str) -> str:
    repo, sep, tag = name.rpartition(":")
    return repo if sep and "/" not in tag else name


def matches(ev: dict, f: dict[str, list[str]]) -> bool:
    """docker's events filter (moby's events.Filter.Include)."""
    from .filters import labels_match

    typ, action = ev.get("Type", ""), ev.get("Action", "")
    actor = ev.get("Actor") or {}
    aid, attrs = actor.get("ID", ""), actor.get("Attributes") or {}
    name = attrs.get("name", "")
    if "event" in f and not any(action == w or (w in _PREFIXED and action.startswith(w + ":"))
                                for w in f["event"]):
        return False
    if not _exact(f.get("type"), typ) or not _exact(f.get("scope"), ev.get("scope", "")):
        return False
    for kind in ("container", "volume", "network"):
        if kind in f and not (typ == kind and _fuzzy(f[kind], aid, name)):
            return False
    if "image" in f:
        image = attrs.get("name" if typ == "image" else "image", "")
        if not _exact(f["image"], aid, image, _strip_tag(aid), _strip_tag(image)):
            return False
    return "label" not in f or labels_match(attrs, f["label"])


def check_filters(f: dict[str, list[str]]) -> dict[str, list[str]]:
    """Refuse a ``type=`` that names no event type (docker's message), which would match
    nothing forever."""
    for t in f.get("type", ()):
        if t not in TYPES:
            raise UsageError(f"invalid filter 'type={t}'")
    return f


# -- output --------------------------------------------------------------------------------

def pretty(ev: dict) -> str:
    """docker's line: the local time with nanoseconds, type, action, actor, (attributes)."""
    import time

    ns = int(ev.get("timeNano") or int(ev.get("time") or 0) * 1_000_000_000)
    sec, frac = divmod(ns, 1_000_000_000)
    lt = time.localtime(sec)
    off = lt.tm_gmtoff or 0
    zone = "Z" if off == 0 else "%s%02d:%02d" % ("+" if off > 0 else "-", abs(off) // 3600,
                                                  abs(off) % 3600 // 60)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{frac:09d}{zone}"
    actor = ev.get("Actor") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


class _Message(dict):
    """An event as a template sees it: its fields by their Go names (``.Status``,
    ``.Actor.ID``), and ``{{json .}}`` the event as docker marshals it (its json tags:
    ``status``, ``id``, ``Type``..., the journal's line)."""

    def __init__(self, fields: dict, ev: dict):
        super().__init__(fields)
        self._ev = ev

    def template_json(self) -> dict:
        return self._ev


def template_data(ev: dict) -> dict:
    """The fields a docker ``--format`` template sees (events.Message's Go names)."""
    actor = ev.get("Actor") or {}
    return _Message({"Status": ev.get("status", ""), "ID": ev.get("id", ""), "From": ev.get("from", ""),
            "Type": ev.get("Type", ""), "Action": ev.get("Action", ""),
            "Actor": {"ID": actor.get("ID", ""), "Attributes": dict(actor.get("Attributes") or {})},
            "Scope": ev.get("scope", ""), "Time": ev.get("time", 0),
            "TimeNano": ev.get("timeNano", 0)}, ev)


def cmd_events(args) -> int:
    import json
    import time

    from .. import events
    from ..errors import PyrtError
    from .common import settings_from_args
    from .filters import parse_filters

    now = time.time_ns()
    since = parse_time(args.since, now) if args.since is not None else None
    until = parse_time(args.until, now) if args.until is not None else None
    filters = check_filters(parse_filters(args.filter, FILTER_KEYS))
    fmt = args.format
    tmpl = None
    if fmt and fmt != "json":
        from . import gotemplate

        tmpl = gotemplate.parse(gotemplate.expand_escapes(fmt))
    root = settings_from_args(args).root
    replay = since is not None or until is not None
    follow = until is None or until > now
    out = sys.stdout
    try:
        for raw in events.lines(root, replay=replay, follow=follow, until_ns=until):
            try:
                ev = json.loads(raw)
            except ValueError:
                continue  # a line cut short (a crash while writing): never half an event
            if not isinstance(ev, dict):
                continue
            t = int(ev.get("timeNano") or 0)
            if (since is not None and t < since) or (until is not None and t > until):
                continue
            if not matches(ev, filters):
                continue
            if fmt == "json":
                out.write(raw.decode() + "\n")
            elif tmpl is not None:
                out.write(tmpl.execute(template_data(ev)) + "\n")
            else:
                out.write(pretty(ev) + "\n")
            out.flush()
    except events.UntrustedJournal as e:
        raise PyrtError(str(e)) from None
    except KeyboardInterrupt:
        return 0
    return 0
