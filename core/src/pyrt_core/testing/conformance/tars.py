"""Layer tars for driver tests: entry makers (``tar_*``) and :func:`build_tar`.

Entries carry the owners asked for only when the suite runs as root (as anyone
else, the files a driver unpacks are owned by that user anyway)."""
from __future__ import annotations

import io
import os
import tarfile
from typing import Iterable

IS_ROOT = os.geteuid() == 0
#: the mtime given to tar entries (2021-01-01T00:00:00Z)
MTIME = 1609459200


def _info(name: str, type: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = mode
    ti.uid, ti.gid = (uid, gid) if IS_ROOT else (os.geteuid(), os.getegid())
    ti.uname = ti.gname = ""
    ti.mtime = mtime
    return ti


def tar_file(name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,
             mtime: int = MTIME) -> tuple[tarfile.TarInfo, bytes]:
    ti = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    ti.size = len(data)
    return ti, data


def tar_dir(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME):
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime), None


def tar_symlink(name: str, target: str, uid: int = 0, gid: int = 0, mtime: int = MTIME):
    ti = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
    ti.linkname = target
    return ti, None


def tar_hardlink(name: str, target: str):
    """A hard link ``name`` to the earlier entry ``target`` (a path in the layer)."""
    ti = _info(name, tarfile.LNKTYPE, 0o644, 0, 0, MTIME)
    ti.linkname = target
    return ti, None


def tar_device(name: str, major: int, minor: int, block: bool = False, mode: int = 0o666):
    ti = _info(name, tarfile.BLKTYPE if block else tarfile.CHRTYPE, mode, 0, 0, MTIME)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def tar_fifo(name: str, mode: int = 0o644):
    return _info(name, tarfile.FIFOTYPE, mode, 0, 0, MTIME), None


def tar_whiteout(path: str):
    """The image-format deletion of ``path`` (``dir/.wh.name``)."""
    d, base = os.path.split(path.strip("/"))
    return tar_file(os.path.join(d, ".wh." + base))


def tar_opaque(dir: str):
    """The image-format marker hiding the parent's content of ``dir``."""
    return tar_file(os.path.join(dir.strip("/"), ".wh..wh..opq"))


def build_tar(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    """An uncompressed layer tar (PAX) holding ``entries``, rewound."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf
