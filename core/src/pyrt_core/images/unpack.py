"""Kept for storage drivers outside this repository: the layer unpacker is
:mod:`pyrt_core.archive.unpack`.

docs/writing-a-storage-plugin.md named ``pyrt_core.images.unpack.apply_layer`` for
drivers with native diffs before the archive package existed, so a third-party
driver may import it from here.  pyrt itself does not.
"""
from __future__ import annotations

from ..archive.unpack import apply_layer

__all__ = ["apply_layer"]
