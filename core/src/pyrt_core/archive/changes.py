"""What changed between two directory trees: the list a layer diff is made of.

:class:`Change` is one changed path ("A" added, "C" changed, "D" deleted);
:func:`compare_trees` lists them for two directories, for storage drivers
that cannot tell their changes natively (see
:mod:`pyrt_core.storage.naivediff`), and :func:`pyrt_core.archive.pack.pack_paths`
turns such a list into a layer tar.

A path of the new tree counts as changed against the old one when its mode,
uid, gid or rdev differ, or (non-directories) its mtime or size differ, or
its ``security.capability`` xattr differs (a symlink also when its target
differs).  Paths missing from the old tree are added; paths of the old tree
missing from the new one are deleted, reported at the top deleted path only.
As docker does, a directory holding any change is itself reported changed
("C") when it is not already listed, so a diff carries its mode, owner and
mtime (needed when the diff is applied to an empty directory, as overlay
does).  Times are compared as docker does: equal seconds and equal
nanoseconds, or nanoseconds zero on either side (a tar keeps whole seconds).
"""
from __future__ import annotations

import os
import stat

import attrs

from .layerformat import CAP_XATTR as _CAP_XATTR

__all__ = ["Change", "compare_trees"]


@attrs.frozen
class Change:
    """One filesystem change between a layer and its parent."""

    path: str  # absolute within the layer, e.g. "/etc/passwd"
    kind: str  # "A" added, "C" changed, "D" deleted


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, _CAP_XATTR, follow_symlinks=False)
    except OSError:
        return None


def _same_time(a: int, b: int) -> bool:
    if a == b:
        return True
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)


def _differs(nst: os.stat_result, ost: os.stat_result, npath: str, opath: str) -> bool:
    if (nst.st_mode != ost.st_mode or nst.st_uid != ost.st_uid or nst.st_gid != ost.st_gid
            or nst.st_rdev != ost.st_rdev):
        return True
    if not stat.S_ISDIR(nst.st_mode):
        if nst.st_size != ost.st_size or not _same_time(nst.st_mtime_ns, ost.st_mtime_ns):
            return True
        if stat.S_ISLNK(nst.st_mode) and os.readlink(npath) != os.readlink(opath):
            return True
    return _capability(npath) != _capability(opath)


def _scan(path: str) -> list[str]:
    with os.scandir(path) as it:
        return [d.name for d in it]


def compare_trees(new_root: str, old_root: str | None) -> list[Change]:
    """Changes of directory ``new_root`` against ``old_root`` (None: all
    of ``new_root`` is added), sorted by path.  Paths are absolute within
    the tree ("/etc/passwd"); the root itself is never listed."""
    new_root = os.path.abspath(new_root)
    if old_root is not None:
        old_root = os.path.abspath(old_root)
    found: dict[str, str] = {}
    # (relative dir, whether the old tree has it as a directory)
    stack: list[tuple[str, bool]] = [("", old_root is not None)]
    while stack:
        rel, in_old = stack.pop()
        npath_dir = new_root + "/" + rel if rel else new_root
        new_names = _scan(npath_dir)
        old_names = set(_scan(old_root + "/" + rel if rel else old_root)) if in_old else set()
        for name in new_names:
            crel = rel + "/" + name if rel else name
            npath = new_root + "/" + crel
            nst = os.lstat(npath)
            ost = None
            if name in old_names:
                old_names.discard(name)
                opath = old_root + "/" + crel
                ost = os.lstat(opath)
                if _differs(nst, ost, npath, opath):
                    found["/" + crel] = "C"
            else:
                found["/" + crel] = "A"
            if stat.S_ISDIR(nst.st_mode):
                stack.append((crel, ost is not None and stat.S_ISDIR(ost.st_mode)))
        for name in old_names:
            found["/" + (rel + "/" + name if rel else name)] = "D"

    # directories holding changes are changed themselves (see module doc)
    for path in list(found):
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found[parent] = "C"
            parent = parent.rpartition("/")[0]
    return [Change(p, found[p]) for p in sorted(found)]
