"""The changes of a layer read from its overlay upper dir (the native diff's side of
``changes``): whiteouts and opaque directories are the overlayfs kind (0/0 character
devices, ``trusted.overlay.opaque``)."""
from __future__ import annotations

import os

from pyrt_core.api import Change


def is_whiteout(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def upper_changes(upper: str, lower_root: str | None) -> list[Change]:
    """Changes recorded in an overlay upper dir against the mounted parent
    ``lower_root`` (None: no parent).  A path counts as changed by the same
    rules as :mod:`pyrt_core.archive.changes` (mode, owner, rdev; for
    non-directories mtime, size and symlink target; ``security.capability``;
    directories holding changes), so both give the same answer; only the
    upper dir is walked, not the whole tree."""
    import stat as S

    out: list[Change] = []

    def lower_stat(path):
        if lower_root is None:
            return None
        try:
            return os.lstat(lower_root + path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def added_below(path):
        for e in sorted(os.scandir(upper + path), key=lambda e: e.name):
            p = f"{path}/{e.name}"
            st = e.stat(follow_symlinks=False)
            if is_whiteout(st):
                continue
            out.append(Change(p, "A"))
            if S.S_ISDIR(st.st_mode):
                added_below(p)

    def visit(path, opaque):
        seen = set()
        for e in sorted(os.scandir(upper + path), key=lambda e: e.name):
            p = f"{path}/{e.name}"
            seen.add(e.name)
            st = e.stat(follow_symlinks=False)
            low = lower_stat(p)
            if is_whiteout(st):
                if low is not None:
                    out.append(Change(p, "D"))
                continue
            if low is None:
                out.append(Change(p, "A"))
                if S.S_ISDIR(st.st_mode):
                    added_below(p)
                continue
            if _differs(st, low, upper + p, lower_root + p):
                out.append(Change(p, "C"))
            if S.S_ISDIR(st.st_mode):
                if S.S_ISDIR(low.st_mode):
                    # below an opaque dir nothing of the parent shows through
                    visit(p, opaque or is_opaque(upper + p))
                else:
                    added_below(p)
        if opaque and lower_root is not None:
            try:
                below = os.listdir(lower_root + path)
            except OSError:
                below = []
            out.extend(Change(f"{path}/{n}", "D") for n in below if n not in seen)

    visit("", is_opaque(upper))
    # as the naive diff does: a directory holding changes is changed itself
    found = {c.path: c.kind for c in out}
    for path in list(found):
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found[parent] = "C"
            parent = parent.rpartition("/")[0]
    return [Change(p, found[p]) for p in sorted(found)]


def _differs(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid, a.st_rdev) != (b.st_mode, b.st_uid, b.st_gid, b.st_rdev):
        return True
    if (a.st_mode & 0o170000) != 0o040000:
        if a.st_size != b.st_size or not _same_time(a.st_mtime_ns, b.st_mtime_ns):
            return True
        if (a.st_mode & 0o170000) == 0o120000 and os.readlink(pa) != os.readlink(pb):
            return True

    def cap(p):
        try:
            return os.getxattr(p, "security.capability", follow_symlinks=False)
        except OSError:
            return None

    return cap(pa) != cap(pb)


def _same_time(a: int, b: int) -> bool:
    """Equal mtimes, or equal seconds with nanoseconds 0 on one side (a tar
    carries whole seconds)."""
    if a == b:
        return True
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)
