"""Trees for driver tests: writing files, a comparable picture of a tree, the mounts
below a path (and a lazy unmount of them, the suite's safety net), and reading and
writing a layer's files through ``get``/``put``."""
from __future__ import annotations

import os
import stat
from typing import Any

from pyrt_core.storage.driver import StorageDriver

from .tars import IS_ROOT


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo), deepest first."""
    import re

    path = os.path.realpath(path).rstrip("/")
    out = set()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            field = line.split(b" ", 5)[4]
            field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
            mp = os.fsdecode(field)
            if mp == path or mp.startswith(path + "/"):
                out.add(mp)
    return sorted(out, key=lambda m: (-m.count("/"), m))


def unmount_all_under(path: str) -> None:
    """Lazily unmount every mount at or below ``path`` (the test safety net)."""
    mps = mounts_under(path)
    if not mps:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(3):  # stacked mounts need one pass each
        for mp in mps:
            libc.umount2(os.fsencode(mp), 2)  # MNT_DETACH
        mps = mounts_under(path)
        if not mps:
            return


def write_files(root: str, files: dict[str, bytes | str | None]) -> None:
    """Write ``{path: content}`` below ``root``; a path ending in "/" is a
    directory, content None deletes the path."""
    import shutil

    for path, content in files.items():
        full = os.path.join(root, path.lstrip("/"))
        if content is None:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
            continue
        if path.endswith("/"):
            os.makedirs(full, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def tree_snapshot(root: str, *, mtimes: bool = True) -> dict[str, tuple]:
    """A comparable picture of the tree at ``root``: for every path its type,
    permission bits, owner and type-specific facts (file content and whole-second
    mtime, symlink target, device number), and which paths are hard links of one
    another.  Directory mtimes are left out (applying a layer touches them) and
    so is a top-level ``lost+found``."""
    out: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], list[str]] = {}

    def walk(dirpath: str, rel: str):
        for name in sorted(os.listdir(dirpath)):
            if rel == "" and name == "lost+found":
                continue
            full = os.path.join(dirpath, name)
            path = f"{rel}/{name}"
            st = os.lstat(full)
            mode = st.st_mode
            facts: tuple[Any, ...]
            if stat.S_ISDIR(mode):
                facts = ("dir",)
            elif stat.S_ISREG(mode):
                with open(full, "rb") as f:
                    facts = ("file", f.read(), int(st.st_mtime) if mtimes else 0)
            elif stat.S_ISLNK(mode):
                facts = ("symlink", os.readlink(full))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                facts = ("chr" if stat.S_ISCHR(mode) else "blk", os.major(st.st_rdev),
                         os.minor(st.st_rdev))
            elif stat.S_ISFIFO(mode):
                facts = ("fifo",)
            else:
                facts = ("other", stat.S_IFMT(mode))
            out[path] = facts + (stat.S_IMODE(mode), st.st_uid, st.st_gid)
            if not stat.S_ISDIR(mode) and st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(path)
            if stat.S_ISDIR(mode):
                walk(full, path)

    walk(root, "")
    for paths in inodes.values():
        if len(paths) > 1:
            for p in paths:
                out[p] = out[p] + (("links", tuple(sorted(paths))),)
    return out


def layer_content(driver: StorageDriver, id: str) -> dict[str, tuple]:
    """:func:`tree_snapshot` of layer ``id``."""
    root = driver.get(id)
    try:
        return tree_snapshot(root)
    finally:
        driver.put(id)


def read_layer_file(driver: StorageDriver, id: str, path: str) -> bytes | None:
    """The content of ``path`` in layer ``id``, None when it is absent."""
    root = driver.get(id)
    try:
        with open(os.path.join(root, path.lstrip("/")), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    finally:
        driver.put(id)


def write_layer_files(driver: StorageDriver, id: str, files: dict[str, bytes | str | None]) -> None:
    """:func:`write_files` into layer ``id``."""
    root = driver.get(id)
    try:
        write_files(root, files)
    finally:
        driver.put(id)


def expected_owner(uid: int) -> int:
    """The owner a layer file unpacked as ``uid`` has (the tester's when not root)."""
    return uid if IS_ROOT else os.geteuid()
