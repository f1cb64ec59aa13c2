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
"""
from __future__ import annotations

import json
import os
import shutil

from ..fsutil import atomic_write, read_json
from .. import procutil

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
        try:
            return read_json(self.path, None)
        except ValueError:
            return None

    def save(self, data: dict) -> None:
        atomic_write(self.path, json.dumps(data, indent=1), mode=0o600, durable=False)

    def remove(self) -> None:
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
