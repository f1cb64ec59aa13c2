"""A pyrt command run on a pty the test holds the master of (the terminal tests of
the CLI, the runtime and the security tier)."""
import fcntl
import os
import select
import struct
import subprocess
import termios
import time


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Term:
    """A pyrt command whose controlling terminal is a pty this test holds the master of."""

    def __init__(self, argv, rows=24, cols=80):
        self.master, slave = os.openpty()
        set_size(slave, rows, cols)

        def ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=ctty,
                                  close_fds=True)
        os.close(slave)
        self.buf = b""

    def send(self, data: bytes):
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout=15.0) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.buf!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {needle!r}; got {self.buf!r}")
                self.buf += chunk
        i = self.buf.index(needle) + len(needle)
        seen, self.buf = self.buf[:i], self.buf[i:]
        return seen

    def resize(self, rows, cols):
        set_size(self.master, rows, cols)  # the kernel sends SIGWINCH to the pyrt CLI

    def wait(self, timeout=20):
        try:
            return self.p.wait(timeout)
        finally:
            self.close()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        if self.master >= 0:
            # drain, so a blocked writer does not keep pyrt alive
            try:
                while select.select([self.master], [], [], 0)[0] and os.read(self.master, 65536):
                    pass
            except OSError:
                pass
            os.close(self.master)
            self.master = -1
