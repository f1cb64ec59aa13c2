"""OCI mount options -> mount(2) flags, propagation, data and mount attributes.

Part of the spec conversion (:mod:`pyrt_core.runtime.spec`): a mount's ``options``
list becomes the ``flags``, ``propagation``, ``data``, ``rec_set`` and ``rec_clr`` of
a :class:`pyrt_core.runtime.config.Mount`.  ``pyrt-runtime features`` lists the
options known here.
"""
from __future__ import annotations

from .config import (
    MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME,
    MS_NOEXEC, MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME,
    MS_REMOUNT, MS_SHARED, MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE,
)

# option -> (set?, flag)
MOUNT_FLAGS = {
    "ro": (True, MS_RDONLY), "rw": (False, MS_RDONLY),
    "nosuid": (True, MS_NOSUID), "suid": (False, MS_NOSUID),
    "nodev": (True, MS_NODEV), "dev": (False, MS_NODEV),
    "noexec": (True, MS_NOEXEC), "exec": (False, MS_NOEXEC),
    "sync": (True, MS_SYNCHRONOUS), "async": (False, MS_SYNCHRONOUS),
    "dirsync": (True, MS_DIRSYNC),
    "remount": (True, MS_REMOUNT),
    "mand": (True, MS_MANDLOCK), "nomand": (False, MS_MANDLOCK),
    "atime": (False, MS_NOATIME), "noatime": (True, MS_NOATIME),
    "diratime": (False, MS_NODIRATIME), "nodiratime": (True, MS_NODIRATIME),
    "bind": (True, MS_BIND), "rbind": (True, MS_BIND | MS_REC),
    "relatime": (True, MS_RELATIME), "norelatime": (False, MS_RELATIME),
    "strictatime": (True, MS_STRICTATIME), "nostrictatime": (False, MS_STRICTATIME),
    "nosymfollow": (True, MS_NOSYMFOLLOW), "symfollow": (False, MS_NOSYMFOLLOW),
    "lazytime": (True, MS_LAZYTIME), "nolazytime": (False, MS_LAZYTIME),
}
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}


# mount_setattr(2) attributes, for the recursive options (runc's "rro" and friends; docker
# 25 asks "rro" for a read-only bind): option -> (attributes to set, to clear)
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_STRICTATIME = 0x70, 0x10, 0x20
MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOSYMFOLLOW = 0x80, 0x200000
RECURSIVE = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rrelatime": (0, MOUNT_ATTR__ATIME), "ratime": (0, MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, MOUNT_ATTR__ATIME), "rnorelatime": (0, MOUNT_ATTR__ATIME),
}


def recursive_attrs(options) -> tuple[int, int]:
    """The recursive options (``rro``, ``rnosuid``, ...) as mount attributes (set, clear)."""
    attr_set = attr_clr = 0
    for opt in options:
        if opt in RECURSIVE:
            on, off = RECURSIVE[opt]
            attr_set = (attr_set & ~off) | on
            attr_clr = (attr_clr & ~on) | off
    return attr_set, attr_clr


def parse_mount_options(options: list[str]) -> tuple[int, int, str]:
    """Split OCI mount options into (flags, propagation flags, data string); the
    recursive options are :func:`recursive_attrs`'s and are left out."""
    flags = 0
    prop = 0
    data = []
    for opt in options:
        if opt in RECURSIVE:
            continue
        if opt in MOUNT_FLAGS:
            on, bit = MOUNT_FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in PROPAGATION:
            prop |= PROPAGATION[opt]
        else:
            data.append(opt)
    return flags, prop, ",".join(data)




def known_options() -> list[str]:
    """The per-mount and propagation options (runc's ``features`` ``mountOptions``)."""
    return sorted(set(MOUNT_FLAGS) | set(PROPAGATION))
