"""The image layer format as pyrt writes and reads it: the names every module of
:mod:`pyrt_core.archive` must agree on.

A layer is a tar (ustar with PAX and GNU extensions) whose deletions are
``.wh.NAME`` entries and whose opaque directories hold a ``.wh..wh..opq``
entry (the OCI image spec's "whiteouts"); other ``.wh..wh.*`` names are
aufs-internal.  Of the extended attributes, ``security.capability`` is
carried; overlayfs' own (``trusted.overlay.*``, ``user.overlay.*``) are
never taken from a layer, because they would steer the overlay mount.
"""
from __future__ import annotations

#: the read and write unit of tar data and file content
CHUNK = 1 << 20
#: the tar block size
BLOCK = 512

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"

#: the one xattr an image layer carries (file capabilities)
CAP_XATTR = "security.capability"
#: what the unpacker sets on an opaque directory of an overlay layer
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
#: the opaque marks the packer recognises in an overlay upper directory
OVERLAY_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
#: overlayfs' own attributes, never taken from a layer
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
