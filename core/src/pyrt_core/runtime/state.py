"""The runtime's own state: one directory per container under the runtime root.

``<root>/<id>/state.json`` holds what ``start``, ``state``, ``kill`` and
``delete`` need after ``create`` has exited: the bundle, the init's pid and
its start time (a pid reused by another process is never signalled), the
resource-control record ``pyrt_resources_apply`` returned, and the created
time.  ``<root>/<id>/exec.fifo`` is the FIFO the init waits on until
``start``; ``<root>/<id>/exec.status`` the FIFO it reports a failed exec on.
"""
from __future__ import annotations

import json
import os
import shutil

from ..fsutil import atomic_write, read_json
from .. import procutil

DEFAULT_ROOT = "/run/pyrt-runtime"


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
    def status(data: dict | None) -> str:
        """OCI status: creating | created | running | stopped."""
        if not data:
            return "stopped"
        if not procutil.alive(data.get("pid", 0), data.get("pid_start"), data.get("boot")):
            return "stopped" if data.get("pid") else "creating"
        return "running" if data.get("started") else "created"
