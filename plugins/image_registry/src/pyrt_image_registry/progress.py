"""Progress of a pull or push, shown on stderr.

Modes: ``"tty"`` - one line per layer, redrawn in place at most ten times a
second (state, a bar, bytes, speed); ``"plain"`` - one line per state change
(for logs and pipes); ``"quiet"`` - nothing.  ``auto`` picks ``tty`` when
stderr is a terminal.  Every method is thread-safe.
"""
from __future__ import annotations

import sys
import threading
import time

from pyrt_core.api import short_digest as short


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


class _Row:
    __slots__ = ("id", "total", "done", "state", "start", "end")

    def __init__(self, id: str, total: int | None, state: str):
        self.id, self.total, self.done, self.state = id, total, 0, state
        self.start = time.monotonic()
        self.end = None


class Progress:
    def __init__(self, mode: str = "auto", stream=None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "tty" if hasattr(self.stream, "isatty") and self.stream.isatty() else "plain"
        self.mode = mode
        self._rows: dict[str, _Row] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._drawn = 0
        self._last = 0.0

    # -- events -------------------------------------------------------------------------
    def message(self, text: str) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            if self.mode == "tty":
                self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()
            if self.mode == "tty":
                self._draw(force=True)

    def add(self, digest: str, total: int | None, state: str = "Waiting") -> None:
        with self._lock:
            key = short(digest)
            if key not in self._rows:
                self._order.append(key)
            self._rows[key] = _Row(key, total, state)
            self._emit(key, state)

    def update(self, digest: str, done: int) -> None:
        if self.mode != "tty":
            return
        with self._lock:
            row = self._rows.get(short(digest))
            if row is None:
                return
            row.done = done
            self._draw()

    def state(self, digest: str, state: str) -> None:
        with self._lock:
            key = short(digest)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = _Row(key, None, state)
                self._order.append(key)
            if row.state == state:
                return
            if state == "Downloading":
                row.start = time.monotonic()
            if state in ("Verifying", "Download complete", "Pushed") and row.end is None:
                row.end = time.monotonic()
            row.state = state
            self._emit(key, state)

    def close(self) -> None:
        with self._lock:
            if self.mode == "tty":
                self._draw(force=True)

    # -- output -------------------------------------------------------------------------
    def _emit(self, key: str, state: str) -> None:
        if self.mode == "plain":
            row = self._rows[key]
            extra = ""
            if state in ("Download complete", "Pushed") and row.end is not None and row.done:
                secs = max(row.end - row.start, 1e-6)
                extra = f" ({_size(row.done)} in {secs:.2f}s)"
            self.stream.write(f"{key}: {state}{extra}\n")
            self.stream.flush()
        elif self.mode == "tty":
            self._draw(force=True)

    def _line(self, row: _Row) -> str:
        if row.state in ("Downloading", "Pushing") and row.total:
            frac = min(row.done / row.total, 1.0)
            width = 30
            fill = int(frac * width)
            bar = "=" * fill + (">" if fill < width else "") + " " * (width - fill - 1)
            secs = max(time.monotonic() - row.start, 1e-3)
            return (f"{row.id}: {row.state:<18} [{bar}] {_size(row.done)}/{_size(row.total)} "
                    f"{_size(row.done / secs)}/s")
        return f"{row.id}: {row.state}"

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self._clear()
        lines = [self._line(self._rows[k]) for k in self._order]
        for line in lines:
            self.stream.write("\x1b[2K" + line + "\n")
        self._drawn = len(lines)
        self.stream.flush()


def for_settings(settings: dict | None) -> Progress:
    """The progress object a fetch/push uses: ``settings["progress"]`` may be a
    :class:`Progress` or a mode string; quiet when ``quiet`` is set."""
    settings = settings or {}
    p = settings.get("progress")
    if isinstance(p, Progress):
        return p
    return Progress(p if isinstance(p, str) else "auto")
