"""What the runtime's commands share: the error type, signals, the state lookup,
the plugin manager, pid files and the console socket."""
from __future__ import annotations

import os
import time

from .state import OCI_VERSION, RuntimeState


class RuntimeFailure(Exception):
    """A runtime command failed: one line on stderr (and the log), ``exit_code`` (runc: 1)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


#: the signals whose numbers are the same on every Linux architecture (others, such as
#: SIGUSR1, differ on mips, sparc and alpha: the signal module knows them)
_SAME_EVERYWHERE = {"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGKILL": 9, "SIGTERM": 15}


def parse_signal(text) -> int:
    """A signal given as a number (``9``), a name (``KILL``) or with its prefix (``SIGKILL``)."""
    t = str(text).strip().upper()
    if t.isdigit():  # what engines send: no need for the signal module (and enum)
        n = int(t)
        if 0 < n < 65:
            return n
        raise RuntimeFailure(f"invalid signal {text!r}")
    if not t.startswith("SIG"):
        t = "SIG" + t
    if t in _SAME_EVERYWHERE:  # stop's SIGTERM: no need for the signal module either
        return _SAME_EVERYWHERE[t]
    import signal

    if t.startswith("SIGRTMIN") or t.startswith("SIGRTMAX"):
        base = signal.SIGRTMIN if t.startswith("SIGRTMIN") else signal.SIGRTMAX
        off = t[8:]
        try:
            n = int(base) + (int(off) if off else 0)
        except ValueError:
            raise RuntimeFailure(f"invalid signal {text!r}") from None
        if int(signal.SIGRTMIN) <= n <= int(signal.SIGRTMAX):
            return n
        raise RuntimeFailure(f"invalid signal {text!r}")
    try:
        return int(getattr(signal.Signals, t))
    except AttributeError:
        raise RuntimeFailure(f"invalid signal {text!r}") from None


def not_exist(cid: str) -> RuntimeFailure:
    return RuntimeFailure(f"container {cid} does not exist")


def load(root: str, cid: str) -> tuple[RuntimeState, dict]:
    """The state of an existing container; "container ID does not exist" otherwise."""
    st = RuntimeState(root, cid)
    data = st.load()
    if data is None:
        raise not_exist(cid)
    return st, data


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def oci_state(cid: str, data: dict, status: str | None = None) -> dict:
    """runc's ``state`` document for a stored record."""
    status = status or RuntimeState.status(data)
    return {
        "ociVersion": OCI_VERSION,
        "id": cid,
        "pid": data.get("pid", 0) if status not in ("stopped", "creating") else 0,
        "status": status,
        "bundle": data.get("bundle", ""),
        "rootfs": data.get("rootfs", ""),
        "created": rfc3339(data.get("created") or 0),
        "owner": data.get("owner", ""),
        "annotations": data.get("annotations") or {},
    }


def plugin_manager(disabled: str | None = None):
    """The runtime's plugin manager: pluggy's, or with no plugin disabled the lean caller
    of :mod:`pyrt_core.hookcall` (same hooks, same order, without pluggy's import)."""
    from ..hookcall import plugin_manager as make

    blocked = [x for x in (disabled or os.environ.get("PYRT_DISABLE_PLUGINS", "")).split(",") if x]
    return make(blocked)


def write_pid_file(path: str, pid: int) -> None:
    from ..fsutil import atomic_write

    atomic_write(os.path.abspath(path), str(pid), durable=False)


def console_socket(path: str | None, terminal: bool, stdio) -> str | None:
    """Check ``--console-socket`` against ``process.terminal``; its absolute path.

    The isolation plugin opens the pty inside the container (its own devpts, so
    that ``tty`` and ``ttyname`` work there) and sends the master to the socket
    (SCM_RIGHTS), as runc does."""
    if path:
        if not terminal:
            raise RuntimeFailure("--console-socket needs process.terminal to be true")
        if not os.path.exists(path):
            raise RuntimeFailure(f"console socket {path} does not exist")
        return os.path.abspath(path)
    if terminal and not os.isatty(stdio[0]):
        raise RuntimeFailure("process.terminal is true but no --console-socket was given "
                             "and stdin is not a terminal")
    return None


def check_preserve_fds(n: int) -> int:
    """``--preserve-fds N``: fds 3 .. 3+N-1 must be open in this process."""
    if n < 0:
        raise RuntimeFailure(f"invalid --preserve-fds {n}: must not be negative")
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            raise RuntimeFailure(f"--preserve-fds {n}: file descriptor {fd} is not open") from None
    return n


def read_json_object(path: str, option: str, what: str) -> dict:
    """The JSON object in ``path`` (``-``: stdin) given to ``option``, or a one-line
    RuntimeFailure naming the option (``what``: the runtime-spec object expected)."""
    import json

    try:
        if path == "-":
            import sys

            text = sys.stdin.read()
        else:
            with open(path, "rb") as f:
                text = f.read()
        doc = json.loads(text)
    except OSError as e:
        raise RuntimeFailure(f"cannot read {option} {path}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RuntimeFailure(f"{option} {path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise RuntimeFailure(f"{option} {path} is not a JSON object ({what})")
    return doc
