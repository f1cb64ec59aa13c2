"""The runtime's own state: one directory per container under the runtime root.

``<root>/<id>/state.json`` holds what the later commands (``start``,
``state``, ``kill``, ``exec``, ``pause``, ``delete``...) need after
``create`` has exited:

* ``pid``, ``pid_start``, ``boot``: the init process (a pid reused by another
  process is never signalled);
* ``bundle``, ``rootfs``, ``created`` (epoch seconds), ``owner``,
  ``annotations``: what ``state`` reports;
* ``resources``: the record ``pyrt_resources_apply`` returned;
* ``started``, ``paused``: what the caller asked for last;
* ``namespaces``: the init's namespace types (``exec`` joins them);
* ``process``: the config's ``process`` object as written in the bundle
  (``exec`` without ``--process`` starts from it, as runc does);
* ``hooks``: the ``poststart`` and ``poststop`` hooks, so that ``start``
  and ``delete`` need not read the bundle again (it may be gone).

``<root>/<id>/exec.fifo`` is the FIFO the init waits on until ``start``;
``<root>/<id>/exec.status`` the FIFO it reports a failed exec on.

The runtime root is the caller's choice (``--root``): ``create`` refuses one another
user can write to, and a record is only read when no other user can have written it
(:mod:`pyrt_core.trusted`).
"""
from __future__ import annotations

import os

from .. import procutil, trusted
from ..fsutil import atomic_write
from ..jsonlean import dumps_indented, loads  # not json: see pyrt_core.jsonlean

DEFAULT_ROOT = "/run/pyrt-runtime"

#: the runtime-spec version this runtime implements (state's ``ociVersion``)
OCI_VERSION = "1.1.0"


class RuntimeState:
    def __init__(self, root: str, cid: str):
        if not cid or "/" in cid or cid in (".", ".."):
            from ..errors import UsageError

            raise UsageError(f"invalid container id {cid!r}")
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, "exec.fifo")

    @property
    def status_fifo(self) -> str:
        return os.path.join(self.dir, "exec.status")

    @property
    def path(self) -> str:
        return os.path.join(self.dir, "state.json")

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def load(self) -> dict | None:
        """The record, None when there is none.  It names the hooks ``start`` and
        ``delete`` run and the processes they signal, as root: one that another user
        can have written (pyrt_core.trusted: a runtime root they control) is refused."""
        text = trusted.read(self.path)
        if text is None:
            if not os.path.lexists(self.path):
                return None
            why = (trusted.why_untrusted_dir(self.dir)
                   or "not a regular file of this user's or root's, writable by no one else")
            from ..errors import UsageError

            raise UsageError(f"refusing the state of container {self.id} ({self.path}): {why}")
        try:
            return loads(text)
        except ValueError:
            return None

    def save(self, data: dict) -> None:
        """Replace the record atomically (no fsync: the runtime root is a tmpfs, gone at
        reboot anyway)."""
        atomic_write(self.path, dumps_indented(data, 1), 0o600, durable=False)

    def remove(self) -> None:
        """Remove the container's directory (flat: the record, the FIFOs, temporary
        files; shutil only for anything else, as its import costs delete ~2 ms)."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        try:
            for name in names:
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)
        except OSError:
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)

    # -- status ---------------------------------------------------------------------
    @staticmethod
    def alive(data: dict | None) -> bool:
        """Whether the container's init (the recorded process, not a reused pid) runs."""
        if not data:
            return False
        return procutil.alive(data.get("pid", 0), data.get("pid_start"), data.get("boot"))

    @staticmethod
    def status(data: dict | None) -> str:
        """OCI status: creating | created | running | paused | stopped."""
        if not data:
            return "stopped"
        if not RuntimeState.alive(data):
            return "stopped" if data.get("pid") else "creating"
        if data.get("paused"):
            return "paused"
        return "running" if data.get("started") else "created"


def list_ids(root: str) -> list[str]:
    """Ids of the containers with a state directory under ``root``, sorted."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, "state.json")))
