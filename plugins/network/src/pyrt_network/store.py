"""pyrt-network's state: one JSON file under ``<root>/networks/``, changed only under an
flock and replaced atomically.

``state.json`` holds ``networks`` (name -> docker's NetworkResource fields plus this
plugin's own), ``containers`` (container id -> what was set up for it: per network its
address, MAC, veth; its published ports and rule chain) and ``ports``
(``"tcp/8080"`` -> container id).  The addresses a network hands out are the ones its
containers hold, so allocating is "first free address not held", done under the lock:
50 containers starting at once cannot get the same one, and a teardown releases by
deleting the container's entry.  A crash between the write and the kernel work leaves an
entry that teardown/recovery undo (deleting what is missing is not an error).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os

from pyrt_core.api import FileLock, atomic_write, read_json

EMPTY = {"networks": {}, "containers": {}, "ports": {}}
#: pyrt's default store (pyrt_core.config.DEFAULT_ROOT; a unit test checks they agree):
#: the one store whose host objects carry the plain names
DEFAULT_ROOT = "/var/lib/pyrt"


def host_names(root: str) -> tuple[str, str]:
    """The names of a store's objects that the whole host shares: its nftables table and
    its default network's bridge.  ``("pyrt", "pyrt0")`` for the default store (docker:
    ``docker0``, podman: ``podman0``), ``("pyrt-<tag>", "pyrt0-<tag>")`` for any other,
    ``tag`` 6 hex digits of the hash of the store's real path: two stores on one host
    (``--root``) never share a bridge, a chain or a set, and the same store finds its
    own again (after a reboot, or a killed run) without keeping a registry."""
    real = os.path.realpath(root)
    if real == DEFAULT_ROOT:
        return "pyrt", "pyrt0"
    tag = hashlib.sha256(real.encode()).hexdigest()[:6]
    return f"pyrt-{tag}", f"pyrt0-{tag}"


class Store:
    def __init__(self, root: str):
        self.table, self.default_bridge = host_names(root)
        self.dir = os.path.join(root, "networks")
        self.path = os.path.join(self.dir, "state.json")
        self.lock_path = os.path.join(self.dir, "lock")
        #: the state as the file holds it (read or saved last), inside a transaction
        self._written = ""

    def read(self) -> dict:
        """A snapshot, without the lock (for listing)."""
        state = read_json(self.path, None) or {}
        return {k: dict(state.get(k) or {}) for k in EMPTY} | {
            k: v for k, v in state.items() if k not in EMPTY}

    @contextlib.contextmanager
    def transaction(self):
        """The state under the exclusive lock; written back (atomically, durably) when
        the block ends without an exception and changed it."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        with FileLock(self.lock_path):
            state = self.read()
            self._written = json.dumps(state, sort_keys=True)
            yield state
            after = json.dumps(state, sort_keys=True)
            if after != self._written:  # (not again what save() wrote: two fsyncs saved)
                atomic_write(self.path, after + "\n", 0o600)

    def save(self, state: dict) -> None:
        """Write ``state`` now, inside a transaction (before kernel work a crash could
        interrupt)."""
        self._written = json.dumps(state, sort_keys=True)
        atomic_write(self.path, self._written + "\n", 0o600)
