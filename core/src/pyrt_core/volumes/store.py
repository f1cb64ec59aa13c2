"""The core's record of every volume, whatever its driver (docker keeps the same in its
``metadata.db``): ``<root>/volumes/<name>/volume.json`` with ``Name``, ``Driver``,
``Labels``, ``Options``, ``CreatedAt``, ``Anonymous`` and ``MountedBy`` (the ids of the
containers whose run has it mounted: the driver's ``unmount`` is called once per id,
and recovery releases the ids of containers that no longer run).

The directory ``<root>/volumes`` and each volume's are 0700 (root's only); a driver may
keep its own files in the volume's directory (``local``: ``_data``, ``local.json``).
Writers (create, remove, mount, unmount, prune) hold ``<root>/volumes.lock``; readers
(``ls``, ``inspect``) read records written atomically and need no lock.  Names are
checked (:mod:`.names`) before they become paths.  No attrs: ``pyrt volume ls`` reads
200 records in a few milliseconds.
"""
from __future__ import annotations

import os

from ..errors import ConflictError, NotFoundError
from .names import check_name, valid

RECORD = "volume.json"


class VolumeStore:
    def __init__(self, root: str):
        self.root = root
        self.dir = os.path.join(root, "volumes")

    # -- paths and locks ---------------------------------------------------------------
    def path(self, name: str) -> str:
        check_name(name, "volume")
        return os.path.join(self.dir, name)

    def lock(self):
        from ..fsutil import FileLock

        return FileLock(os.path.join(self.root, "volumes.lock"))

    def ensure_dir(self) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(self.dir, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(self.dir)
        import stat

        if not stat.S_ISDIR(st.st_mode):
            raise ConflictError(f"{self.dir} is not a directory")
        if st.st_mode & 0o077:
            os.chmod(self.dir, 0o700)

    # -- records -----------------------------------------------------------------------
    def load(self, name: str) -> dict | None:
        if not valid(name):
            return None
        from ..jsonlean import loads

        try:
            fd = os.open(os.path.join(self.dir, name, RECORD),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        try:
            rec = loads(data.decode())
        except ValueError:
            return None
        return rec if isinstance(rec, dict) and rec.get("Name") == name else None

    def get(self, name: str) -> dict:
        rec = self.load(name)
        if rec is None:
            raise NotFoundError(f"get {name}: no such volume")
        return rec

    def save(self, rec: dict) -> None:
        from ..fsutil import atomic_write
        from ..jsonlean import dumps

        atomic_write(os.path.join(self.path(rec["Name"]), RECORD), dumps(rec), 0o600)

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if valid(n))
        except FileNotFoundError:
            return []

    def list(self) -> list[dict]:
        out = []
        for n in self.names():
            rec = self.load(n)
            if rec is not None:
                out.append(rec)
        return out

    # -- making and removing (the caller holds lock()) ----------------------------------
    def make_dir(self, name: str) -> str:
        """The volume's directory, new (0700); ConflictError when the name is taken."""
        self.ensure_dir()
        path = self.path(name)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise ConflictError(f"volume {name} already exists") from None
        os.chmod(path, 0o700)
        return path

    def remove_dir(self, name: str) -> None:
        """Remove the volume's directory (the driver removed what it keeps there and
        unmounted what it mounted; remove_tree never follows a symlink)."""
        from ..fsutil import remove_tree

        path = self.path(name)
        # the record first: a crash half-way leaves a directory without a record, which
        # `ls` does not show and a new create of the name replaces
        try:
            os.unlink(os.path.join(path, RECORD))
        except FileNotFoundError:
            pass
        remove_tree(path)
