"""The runtime's log: ``--log FILE``, ``--log-format text|json`` and ``--debug``.

As runc: each line is ``{"level", "msg", "time"}`` (json) or
``time=... level=... msg=...`` (text), appended to the ``--log`` file;
containerd and pyrt's conmon show the last error line.  Without ``--log``
nothing is written here (errors still go to stderr, from :mod:`.cli`).
``debug`` lines are written only with ``--debug``.
"""
from __future__ import annotations

import json
import os
import time

_path: str | None = None
_format = "text"
_debug = False


def setup(path: str | None, fmt: str = "text", debug: bool = False) -> None:
    global _path, _format, _debug
    _path, _format, _debug = path, fmt, debug


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def write(level: str, msg: str) -> None:
    if level == "debug" and not _debug:
        return
    if not _path:
        if level == "debug":  # --debug without --log: on stderr, as runc
            import sys

            sys.stderr.write(f"pyrt-runtime: debug: {msg}\n")
        return
    if _format == "json":
        line = json.dumps({"level": level, "msg": msg, "time": _now()})
    else:
        line = f"time={json.dumps(_now())} level={level} msg={json.dumps(msg)}"
    try:
        fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def debug(msg: str) -> None:
    if _debug:
        write("debug", msg)


def warning(msg: str) -> None:
    write("warning", msg)


def error(msg: str) -> None:
    write("error", msg)


def enabled_debug() -> bool:
    return _debug
