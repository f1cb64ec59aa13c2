"""The "example" storage driver: every layer is a full copy of its parent.

Layout under the driver's home::

    <id>/root/     the layer's files (what ``get`` returns)
    <id>/parent    the parent's id (missing for a base layer)

Nothing is mounted, so ``get`` and ``put`` only hand out the directory.
Diffs come from :class:`NaiveDiffDriver`, which compares a layer with its
parent file by file.  ``copy_tree`` from pyrt-core copies exactly (hard
links, owners, devices, xattrs, times).
"""
from __future__ import annotations

import os

from pyrt_core.errors import (
    ConflictError,
    DriverPrerequisitesMissing,
    NotFoundError,
    UsageError,
)
from pyrt_core.api import NaiveDiffDriver, copy_tree, remove_tree


class ExampleDriver(NaiveDiffDriver):
    name = "example"

    def __init__(self, home, options=None):
        super().__init__(home, options)
        # Reject options you do not know: users learn about typos at once.
        unknown = set(self.options) - {"copy"}
        if unknown:
            raise UsageError(f"storage driver 'example': unknown options {', '.join(sorted(unknown))}")
        if self.options.get("copy", "auto") not in ("auto", "python"):
            raise UsageError("storage driver 'example': copy must be 'auto' or 'python'")
        # Probe the host.  Raise DriverNotSupported / DriverPrerequisitesMissing
        # so automatic selection moves on to the next driver.
        os.makedirs(home, mode=0o700, exist_ok=True)
        if not os.access(home, os.W_OK):
            raise DriverPrerequisitesMissing(f"example: {home} is not writable")

    def _layer(self, id):
        if not id or "/" in id or id.startswith("."):
            raise UsageError(f"invalid layer id {id!r}")
        return os.path.join(self.home, id)

    def create(self, id, parent):
        layer = self._layer(id)
        if os.path.exists(layer):
            raise ConflictError(f"layer {id} already exists")
        if parent is not None and not self.exists(parent):
            raise NotFoundError(f"parent layer {parent} does not exist")
        # Build under a temporary name and rename: a crash never leaves a half layer.
        tmp = os.path.join(self.home, f".new-{id}")
        remove_tree(tmp)
        os.mkdir(tmp, 0o700)
        if parent is None:
            os.mkdir(os.path.join(tmp, "root"))
            os.chmod(os.path.join(tmp, "root"), 0o755)
        else:
            use_cp = False if self.options.get("copy") == "python" else None
            copy_tree(self.get(parent), os.path.join(tmp, "root"), use_cp=use_cp)
            with open(os.path.join(tmp, "parent"), "w") as f:
                f.write(parent)
        os.rename(tmp, layer)

    def remove(self, id):
        remove_tree(self._layer(id))

    def exists(self, id):
        return os.path.isdir(os.path.join(self._layer(id), "root"))

    def get(self, id):
        if not self.exists(id):
            raise NotFoundError(f"layer {id} does not exist")
        return os.path.join(self._layer(id), "root")

    def put(self, id):
        pass  # nothing was mounted

    def status(self):
        layers = [n for n in os.listdir(self.home) if not n.startswith(".")]
        return [("Home", self.home), ("Layers", str(len(layers)))]

    def metadata(self, id):
        try:
            with open(os.path.join(self._layer(id), "parent")) as f:
                parent = f.read()
        except FileNotFoundError:
            parent = ""
        return {"Root": self.get(id), "Parent": parent}

    def cleanup(self):
        for name in os.listdir(self.home):
            if name.startswith(".new-"):
                remove_tree(os.path.join(self.home, name))
