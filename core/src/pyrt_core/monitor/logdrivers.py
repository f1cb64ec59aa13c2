"""Log drivers: ``--log-driver json-file|k8s-file|journald|none`` and ``--log-opt``, as
docker names them, written by conmon for a detached container and by the CLI for one run
in the foreground (monitor.logfile, :class:`JournalWriter`).

* ``k8s-file`` (the default) and ``json-file``: ``<root>/containers/<id>/ctr.log``, one
  record per line, ``TIMESTAMP STREAM F|P DATA`` (RFC 3339 with nanoseconds, ``stdout``
  or ``stderr``, ``F`` a full line, ``P`` a partial one continued by the next record):
  the format conmon writes (CRI's).  ``json-file`` is docker's name for its default
  driver; conmon has no JSON writer, so, as podman does, it is written in the same
  k8s-file format (``inspect`` keeps the name asked for).
* ``journald``: one journal entry per line (``MESSAGE``, ``CONTAINER_ID``,
  ``CONTAINER_ID_FULL``, ``CONTAINER_NAME``, ``CONTAINER_TAG``, ``SYSLOG_IDENTIFIER``,
  ``PRIORITY`` 6 for stdout and 3 for stderr, ``CONTAINER_PARTIAL_MESSAGE=true`` for a
  line without its end), the fields docker and conmon write; ``pyrt logs`` reads them with
  ``journalctl CONTAINER_ID_FULL=<id>``.  Refused when journald does not run (docker's
  "journald is not enabled on this host").
* ``none``: nothing is kept; ``pyrt logs`` says so (docker's "configured logging driver
  does not support reading").

Options (docker's per-driver rules: an option a driver does not take is refused):
``max-size`` (file drivers; default 10m; conmon starts the file again when a record
would pass it), ``max-file`` (file drivers; only 1: conmon has no rotation, it replaces
the full file by a new one, so older files cannot be kept -- refused above 1 rather than
pretending), ``tag`` (all but none; a template of ``{{.ID}}`` (12 characters),
``{{.FullID}}``, ``{{.Name}}``, ``{{.ImageName}}``, ``{{.ImageID}}``,
``{{.ImageFullID}}``, ``{{.DaemonName}}``; default ``{{.ID}}``: journald's
``CONTAINER_TAG``/``SYSLOG_IDENTIFIER``; the k8s-file format has no field for it).

Lean on purpose (``os`` only at import): the foreground ``run`` path imports it.
"""
from __future__ import annotations

import os

from ..errors import UsageError

DRIVERS = ("json-file", "k8s-file", "journald", "none")
DEFAULT = "k8s-file"
OPTIONS = {"json-file": ("max-size", "max-file", "tag"), "k8s-file": ("max-size", "max-file", "tag"),
           "journald": ("tag",), "none": ()}
TAG_FIELDS = ("ID", "FullID", "Name", "ImageName", "ImageID", "ImageFullID", "DaemonName")
DEFAULT_TAG = "{{.ID}}"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
NOT_READABLE = "configured logging driver does not support reading"


def journald_running(socket_path: str = JOURNAL_SOCKET) -> bool:
    """Whether journald listens (its native socket is there), as docker's journal.Enabled."""
    import stat

    try:
        return stat.S_ISSOCK(os.stat(socket_path).st_mode)
    except OSError:
        return False


def file_driver(driver: str | None) -> bool:
    return (driver or DEFAULT) in ("json-file", "k8s-file")


def parse(driver: str | None, opts: list[str]) -> tuple[str, dict[str, str], int | None, str | None]:
    """(driver, the options as given, max-size in bytes or None, tag template or None) from
    ``--log-driver`` and ``--log-opt KEY=VALUE`` flags; UsageError (one line) for a driver
    or option docker would refuse, or one conmon cannot honour."""
    name = driver if driver is not None else DEFAULT
    if name not in DRIVERS:
        raise UsageError(f"logger: no log driver named {name!r} is registered "
                         f"(supported: {', '.join(DRIVERS)})")
    given: dict[str, str] = {}
    for opt in opts:
        k, sep, v = opt.partition("=")
        if not sep or not k:
            raise UsageError(f"invalid --log-opt {opt!r}: expected KEY=VALUE")
        if name != "none" and k not in OPTIONS[name]:  # docker ignores the options of none
            raise UsageError(f"unknown log opt '{k}' for {name} log driver")
        given[k] = v
    if name == "none":
        return name, given, None, None
    size_max = None
    if "max-size" in given:
        from ..units import parse_size

        try:
            size_max = parse_size(given["max-size"])
        except ValueError:
            raise UsageError(f"invalid value for --log-opt max-size: invalid size: "
                             f"{given['max-size']!r}") from None
    if "max-file" in given:
        n = given["max-file"]
        if not n.isdigit() or int(n) < 1:
            raise UsageError(f"invalid --log-opt max-file={n!r}: a number >= 1")
        if int(n) > 1:
            raise UsageError("--log-opt max-file greater than 1 is not supported: conmon keeps "
                             "one log file, which starts again when it reaches max-size")
    tag = given.get("tag")
    if tag is not None:
        expand_tag(tag, {f: "x" for f in TAG_FIELDS})  # the template is checked now
    return name, given, size_max, tag


def expand_tag(template: str, values: dict[str, str]) -> str:
    """docker's log tag template: ``{{.Field}}`` of :data:`TAG_FIELDS`, the rest as is."""
    out = []
    i = 0
    while True:
        j = template.find("{{", i)
        if j < 0:
            out.append(template[i:])
            break
        k = template.find("}}", j)
        if k < 0:
            raise UsageError(f"invalid --log-opt tag={template!r}: unclosed '{{{{'")
        field = template[j + 2:k].strip()
        if not field.startswith(".") or field[1:] not in TAG_FIELDS:
            raise UsageError(f"invalid --log-opt tag={template!r}: {{{{{field}}}}} is not one of "
                             + ", ".join("{{." + f + "}}" for f in TAG_FIELDS))
        out.append(template[i:j])
        out.append(values[field[1:]])
        i = k + 2
    return "".join(out)


def tag_values(c) -> dict[str, str]:
    """The template's fields for container ``c`` (a record or a model)."""
    image_id = (c.image_id or "").split(":")[-1]
    return {"ID": c.id[:12], "FullID": c.id, "Name": c.name, "ImageName": c.image_name,
            "ImageID": image_id[:12], "ImageFullID": c.image_id, "DaemonName": "pyrt"}


def tag_for(c) -> str:
    return expand_tag(getattr(c.config, "log_tag", None) or DEFAULT_TAG, tag_values(c))


def conmon_log_args(driver: str | None, path: str) -> list[str]:
    """conmon's ``-l DRIVER:PATH`` (json-file is written as k8s-file, as podman does)."""
    name = driver or DEFAULT
    conmon_name = "k8s-file" if name in ("json-file", "k8s-file") else name
    return ["-l", f"{conmon_name}:{path}"]


def check_usable(driver: str | None) -> None:
    """Refuse a driver this host cannot serve (journald not running), before anything exists."""
    if driver == "journald" and not journald_running():
        raise UsageError("failed to initialize logging driver: journald is not enabled on this host")


class JournalWriter:
    """The journal entries of a foreground run (what conmon writes for a detached one), sent
    on journald's native datagram protocol: ``KEY=VALUE`` lines, a value holding a newline
    as ``KEY\\n`` + its length (64-bit little endian) + the bytes + ``\\n``."""

    def __init__(self, container, socket_path: str = JOURNAL_SOCKET):
        import _socket  # not socket: it imports enum

        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        self.sock.setblocking(True)
        self.path = socket_path
        tag = tag_for(container)
        self.fixed = [("CONTAINER_ID", container.id[:12]), ("CONTAINER_ID_FULL", container.id),
                      ("CONTAINER_NAME", container.name), ("CONTAINER_TAG", tag),
                      ("SYSLOG_IDENTIFIER", tag)]

    @staticmethod
    def encode(fields: list[tuple[str, bytes | str]]) -> bytes:
        out = bytearray()
        for k, v in fields:
            b = v.encode() if isinstance(v, str) else v
            if b"\n" in b:
                out += k.encode() + b"\n" + len(b).to_bytes(8, "little") + b + b"\n"
            else:
                out += k.encode() + b"=" + b + b"\n"
        return bytes(out)

    def write(self, stream: str, data: bytes) -> None:
        if self.sock is None or not data:
            return
        prio = "3" if stream == "stderr" else "6"
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            fields = [("MESSAGE", line), ("PRIORITY", prio)] + self.fixed
            if last:
                fields.append(("CONTAINER_PARTIAL_MESSAGE", "true"))
            try:
                self.sock.sendto(self.encode(fields), self.path)
            except OSError:
                self.close()  # journald went away: the output still reaches the terminal
                return

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
