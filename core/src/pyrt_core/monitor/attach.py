"""Attaching a terminal (or pipes) to a container, through conmon or a local pty.

* :func:`attach_conmon`: conmon's attach socket (``SOCK_SEQPACKET``): every
  packet from conmon starts with one byte naming the stream (2 stdout, 3
  stderr: conmon's pipe numbers, 1 being stdin); what the client sends is the container's stdin.  Shutting down
  our write side closes the container's stdin.  Window size changes go to
  conmon's ``ctl`` FIFO.
* :class:`PtyProxy`: a foreground ``run -it``: pyrt owns the pty master and
  copies between it and the user's terminal (raw mode, SIGWINCH).

Both understand docker's detach keys (ctrl-p ctrl-q) when attached to a tty.
"""
from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import threading
import tty as ttymod

DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def get_winsize(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def set_winsize(fd: int, rows: int, cols: int) -> None:
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    except OSError:
        pass


class RawMode:
    """Put ``fd`` in raw mode if it is a terminal; restore on exit."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            ttymod.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


class _DetachScanner:
    def __init__(self, keys: bytes):
        self.keys = keys
        self.pos = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, detach requested)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    self.pos = 0
                    return bytes(out), True
                continue
            if self.pos:
                out += self.keys[:self.pos]
                self.pos = 0
            out.append(b)
        return bytes(out), False


def connect(attach_path: str) -> socket.socket:
    """Connect to conmon's attach socket (through /proc/self/fd: the path may be
    longer than a socket address allows)."""
    d = os.open(os.path.dirname(attach_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(f"/proc/self/fd/{d}/{os.path.basename(attach_path)}")
    except OSError as e:
        sock.close()
        from ..errors import ConflictError

        raise ConflictError(f"cannot attach: the container's monitor does not answer ({e.strerror})") \
            from None
    finally:
        os.close(d)
    return sock


def attach_conmon(attach_path: str | socket.socket, *, stdin_fd: int | None, stdout_fd: int = 1,
                  stderr_fd: int = 2, tty: bool = False, on_resize=None,
                  detach_keys: bytes = DETACH_KEYS) -> str:
    """Copy between our stdio and the container until its output ends.  ``attach_path``
    may be a socket :func:`connect` returned (connect before ``start`` to miss nothing).

    Returns ``"exited"`` (the container's output ended) or ``"detached"``."""
    sock = attach_path if isinstance(attach_path, socket.socket) else connect(attach_path)
    scanner = _DetachScanner(detach_keys if tty else b"")
    old_winch = None
    if tty and on_resize is not None and stdin_fd is not None and os.isatty(stdin_fd):
        def winch(*_):
            ws = get_winsize(stdin_fd)
            if ws:
                on_resize(*ws)
        old_winch = signal.signal(signal.SIGWINCH, winch)
        winch()
    raw = RawMode(stdin_fd) if (tty and stdin_fd is not None) else None
    result = "exited"
    try:
        if raw:
            raw.__enter__()
        watch = [sock]
        if stdin_fd is not None:
            watch.append(stdin_fd)
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if sock in ready:
                try:
                    pkt = sock.recv(65536)
                except (ConnectionResetError, OSError):
                    pkt = b""
                if not pkt:
                    break
                stream, data = pkt[0], pkt[1:]
                if data:
                    _write_all(stderr_fd if stream == 3 else stdout_fd, data)
            if stdin_fd is not None and stdin_fd in ready:
                try:
                    data = os.read(stdin_fd, 65536)
                except OSError as e:
                    data = b"" if e.errno == errno.EIO else b""
                if not data:
                    watch.remove(stdin_fd)
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                data, detach = scanner.feed(data)
                if data:
                    try:
                        sock.sendall(data)
                    except OSError:
                        pass
                if detach:
                    result = "detached"
                    break
    finally:
        if raw:
            raw.__exit__()
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        sock.close()
    return result


class PtyProxy:
    """The foreground ``run -t`` terminal: a pty whose slave is the container's stdio."""

    def __init__(self, stdin_fd: int | None = 0, stdout_fd: int = 1):
        self.master, self.slave = os.openpty()
        os.set_inheritable(self.master, False)
        os.set_inheritable(self.slave, False)
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        src = stdin_fd if stdin_fd is not None and os.isatty(stdin_fd) else (
            stdout_fd if os.isatty(stdout_fd) else None)
        ws = get_winsize(src) if src is not None else None
        if ws:
            set_winsize(self.master, *ws)
        self._thread = None
        self.log = None  # the container's log (monitor.logfile.LogFile), set before start
        self._raw = RawMode(stdin_fd) if stdin_fd is not None else None
        self._old_winch = None
        self._stop_r, self._stop_w = os.pipe()

    @property
    def stdio(self) -> tuple[int, int, int]:
        return (self.slave, self.slave, self.slave)

    def adopt(self, master: int) -> None:
        """Proxy ``master`` instead of our own pty: the master of the pty the container's
        init opened in its own devpts (so ``tty`` works inside); called before start."""
        ws = get_winsize(self.master)
        os.close(self.master)
        os.set_inheritable(master, False)
        self.master = master
        if ws:
            set_winsize(master, *ws)

    def _winch(self, *_):
        src = self.stdin_fd if self.stdin_fd is not None and os.isatty(self.stdin_fd) else self.stdout_fd
        ws = get_winsize(src)
        if ws:
            set_winsize(self.master, *ws)

    def start(self) -> None:
        """The container runs: drop our slave copy, go raw, copy in a thread."""
        os.close(self.slave)
        self.slave = -1
        if self._raw:
            self._raw.__enter__()
        if threading.current_thread() is threading.main_thread():
            self._old_winch = signal.signal(signal.SIGWINCH, self._winch)
        self._thread = threading.Thread(target=self._copy, daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        watch = [self.master, self._stop_r]
        if self.stdin_fd is not None:
            watch.append(self.stdin_fd)
        stopping = False
        while True:
            try:
                ready, _, _ = select.select(watch, [], [], 0.05 if stopping else None)
            except InterruptedError:
                continue
            if not ready and stopping:
                return
            if self._stop_r in ready:
                watch.remove(self._stop_r)
                stopping = True
            if self.master in ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    return  # EIO: every slave is closed, the container is gone
                _write_all(self.stdout_fd, data)
                if self.log is not None:
                    self.log.write("stdout", data)
            if self.stdin_fd is not None and self.stdin_fd in ready:
                try:
                    data = os.read(self.stdin_fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    watch.remove(self.stdin_fd)
                    try:
                        _write_all(self.master, b"\x04")  # EOF for a canonical-mode reader
                    except OSError:
                        pass
                    continue
                try:
                    _write_all(self.master, data)
                except OSError:
                    return

    def finish(self) -> None:
        """After the container exited: drain its output, restore the terminal (idempotent)."""
        if self.master < 0:
            return
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
        if self._raw:
            self._raw.__exit__()
        if self._old_winch is not None:
            signal.signal(signal.SIGWINCH, self._old_winch)
        if self.log is not None:
            self.log.close()
        for fd in (self.master, self.slave, self._stop_r, self._stop_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = -1
