"""The runtime's log: ``--log FILE``, ``--log-format text|json`` and ``--debug``.

As runc: each line is ``{"level", "msg", "time"}`` (json) or
``time=... level=... msg=...`` (text), appended to the ``--log`` file;
containerd and pyrt's conmon show the last error line.  Without ``--log``
nothing is written here (errors still go to stderr, from :mod:`.cli`).
``debug`` lines are written only with ``--debug``.
"""
from __future__ import annotations

import os
import time

from ..jsonlean import dumps  # not json: see pyrt_core.jsonlean

_path: str | None = None
_format = "text"
_debug = False


def setup(path: str | None, fmt: str = "text", debug: bool = False) -> None:
    global _path, _format, _debug
    _path, _format, _debug = path, fmt, debug


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def write(level: str, msg: str, exit_code: int | None = None) -> None:
    if level == "debug" and not _debug:
        return
    if not _path:
        if level == "debug":  # --debug without --log: on stderr, as runc
            import sys

            sys.stderr.write(f"pyrt-runtime: debug: {msg}\n")
        return
    if _format == "json":
        rec = {"level": level, "msg": msg, "time": _now()}
        if exit_code is not None:  # pyrt's conmon path maps it (126/127 as docker)
            rec["exitCode"] = exit_code
        line = dumps(rec)
    else:
        line = f"time={dumps(_now())} level={level} msg={dumps(msg)}"
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


def error(msg: str, exit_code: int | None = None) -> None:
    write("error", msg, exit_code)


def enabled_debug() -> bool:
    return _debug
