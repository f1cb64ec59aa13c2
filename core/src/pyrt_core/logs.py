"""``pyrt logs``: read the container log conmon writes.

conmon writes the k8s-file format, one record per line::

    2024-05-01T10:00:00.123456789+00:00 stdout F a whole line
    2024-05-01T10:00:00.123456789+00:00 stderr P the start of a long line

(``F``: the record ends a line, ``P``: partial, the line goes on).  When the
file would exceed ``--log-opt max-size`` conmon starts it again (the previous
content is dropped, so the log never grows past the cap).  :func:`records`
parses it; ``pyrt logs --format json`` prints docker's json-file lines
(``{"log": ..., "stream": ..., "time": ...}``) from it.
"""
from __future__ import annotations

import json
import os
import time


def parse_line(line: bytes):
    """(time, stream, data with its newline if the record ends a line) or None."""
    try:
        ts, stream, tag, rest = line.rstrip(b"\n").split(b" ", 3)
    except ValueError:
        parts = line.rstrip(b"\n").split(b" ")
        if len(parts) == 3:  # an empty record
            ts, stream, tag, rest = parts[0], parts[1], parts[2], b""
        else:
            return None
    data = rest + (b"\n" if tag == b"F" else b"")
    return ts.decode(), stream.decode(), data


def docker_time(ts: str) -> str:
    """conmon's ``...+00:00`` -> docker's ``...Z`` (RFC 3339 with nanoseconds, UTC)."""
    return ts[:-6] + "Z" if ts.endswith("+00:00") else ts


def records(path: str):
    try:
        with open(path, "rb") as f:
            for line in f:
                r = parse_line(line)
                if r is not None:
                    yield r
    except FileNotFoundError:
        return


def _lines(recs):
    """Group records into whole lines: (time of the first record, stream, bytes)."""
    pending: dict[str, tuple[str, bytearray]] = {}
    for ts, stream, data in recs:
        t, buf = pending.setdefault(stream, (ts, bytearray()))
        buf += data
        if data.endswith(b"\n"):
            del pending[stream]
            yield t, stream, bytes(buf)
    for stream, (t, buf) in pending.items():
        if buf:
            yield t, stream, bytes(buf)


def write(out, err, ts: str, stream: str, data: bytes, timestamps: bool, fmt: str) -> None:
    if fmt == "json":
        out.write(json.dumps({"log": data.decode(errors="replace"), "stream": stream,
                              "time": docker_time(ts)}).encode() + b"\n")
        return
    target = err if stream == "stderr" else out
    if timestamps:
        data = docker_time(ts).encode() + b" " + data
    target.write(data)


def show(path: str, out, err, *, tail: int | None = None, timestamps: bool = False,
         follow: bool = False, running=None, fmt: str = "text") -> None:
    """Print the log; with ``follow``, keep printing until ``running()`` is false."""
    lines = list(_lines(records(path)))
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    for ts, stream, data in lines:
        write(out, err, ts, stream, data, timestamps, fmt)
    out.flush()
    err.flush()
    if not follow:
        return
    try:
        st = os.stat(path)
        ino, pos = st.st_ino, st.st_size
    except FileNotFoundError:
        ino, pos = None, 0
    partial = b""
    idle_checks = 0
    while True:
        grew = False
        try:
            st = os.stat(path)
            if st.st_ino != ino or st.st_size < pos:  # conmon started a new file
                ino, pos, partial = st.st_ino, 0, b""
            if st.st_size > pos:
                with open(path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                pos += len(chunk)
                partial += chunk
                *complete, partial = partial.split(b"\n")
                for line in complete:
                    r = parse_line(line + b"\n")
                    if r is not None:
                        write(out, err, r[0], r[1], r[2], timestamps, fmt)
                out.flush()
                err.flush()
                grew = True
        except FileNotFoundError:
            pass
        if not grew:
            if running is not None and not running():
                idle_checks += 1
                if idle_checks > 2:  # let conmon flush the last lines
                    return
            time.sleep(0.05)


def journal_command(cid: str, tail: int | None, follow: bool) -> list[str]:
    """``journalctl`` for the entries the journald driver wrote for container ``cid``."""
    argv = ["journalctl", "--no-pager", "--output", "json", f"CONTAINER_ID_FULL={cid}"]
    if tail is not None and tail >= 0:
        argv += ["--lines", str(tail)]
    if follow:
        argv.append("--follow")
    return argv


def journal_record(line: bytes):
    """(time, stream, data) of one ``journalctl --output json`` entry, or None.  A message
    journald stored as bytes comes as a list of numbers; a partial one has no newline."""
    try:
        e = json.loads(line)
    except ValueError:
        return None
    msg = e.get("MESSAGE")
    if isinstance(msg, list):
        data = bytes(msg)
    elif isinstance(msg, str):
        data = msg.encode()
    else:
        return None
    if e.get("CONTAINER_PARTIAL_MESSAGE") != "true":
        data += b"\n"
    stream = "stderr" if str(e.get("PRIORITY")) == "3" else "stdout"
    try:
        us = int(e.get("__REALTIME_TIMESTAMP"))
    except (TypeError, ValueError):
        us = 0
    ts = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000))
          + f".{us % 1_000_000:06d}000+00:00")
    return ts, stream, data


def show_journal(cid: str, out, err, *, tail: int | None = None, timestamps: bool = False,
                 follow: bool = False, running=None, fmt: str = "text") -> None:
    """:func:`show` for the journald driver: the entries ``journalctl`` finds for ``cid``;
    with ``follow``, until ``running()`` is false."""
    import select
    import subprocess

    p = subprocess.Popen(journal_command(cid, tail, follow), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    assert p.stdout is not None
    buf = b""
    idle = 0
    try:
        while True:
            ready, _, _ = select.select([p.stdout], [], [], 0.1)
            if not ready:
                if follow and running is not None and not running():
                    idle += 1
                    if idle > 5:
                        return
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                return
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for line in complete:
                r = journal_record(line)
                if r is not None:
                    write(out, err, r[0], r[1], r[2], timestamps, fmt)
            out.flush()
            err.flush()
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait()
