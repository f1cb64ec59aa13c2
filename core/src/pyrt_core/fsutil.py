"""Small file-system helpers shared by the stores: atomic writes, JSON index
files, ``fcntl`` file locks, and :func:`remove_tree` (what storage drivers and the
layer unpacker remove directory trees with).

Writers never modify a file in place: they write ``.tmp-<name>-<random>`` in
the same directory, fsync it, rename it over the target and fsync the
directory, so a reader (or a crash) sees either the old or the new file.
Readers never look at ``.tmp-*`` files; :func:`clean_temp_files` removes the
ones a crashed writer left.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

TEMP_PREFIX = ".tmp-"


def _fsync_dir(dirpath: str) -> None:
    try:
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(path: str) -> str:
    """A fresh temporary name next to ``path`` (``.tmp-<name>-<random>``)."""
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f"{TEMP_PREFIX}{name}-{os.urandom(6).hex()}")


def atomic_write(path: str, data: bytes | str, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir).

    ``durable=False`` skips the two fsyncs, for transient files under the run
    root (gone at reboot anyway): the rename still makes the update atomic."""
    if isinstance(data, str):
        data = data.encode()
    path = os.path.abspath(path)
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # not subject to the umask
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_dir(d)


def read_json(path: str, default=None):
    """The JSON value stored in ``path``, or ``default`` when the file does not exist.

    A file that exists but is not valid JSON raises ``ValueError`` (the
    caller decides whether that is corruption or user input)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return default
    from .jsonlean import loads  # not json: it imports re and enum (~6 ms)

    return loads(data)


def write_json(path: str, obj, mode: int = 0o644) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    import json

    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True) + "\n", mode)


def clean_temp_files(dirpath: str, older_than: float = 0.0) -> list[str]:
    """Remove ``.tmp-*`` files (and directories) left in ``dirpath`` by crashed
    writers; only those older than ``older_than`` seconds.  Returns the removed names.

    Call it with the lock that guards ``dirpath`` held, or with a generous
    ``older_than``, so a live writer's temp file is not taken from it."""
    import shutil

    removed = []
    try:
        names = os.listdir(dirpath)
    except FileNotFoundError:
        return removed
    now = time.time()
    for name in names:
        if not name.startswith(TEMP_PREFIX):
            continue
        p = os.path.join(dirpath, name)
        try:
            st = os.lstat(p)
            if older_than and now - st.st_mtime < older_than:
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


class FileLock:
    """An ``flock`` lock on ``path`` (created if missing), as a context manager.

    ``shared=True`` takes a shared (reader) lock, otherwise an exclusive one.
    The lock is not re-entrant: acquiring it twice from one process (two
    ``FileLock`` objects, or two threads) blocks like any other contender.
    """

    def __init__(self, path: str, shared: bool = False):
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock.  Returns False when ``blocking`` is False (or
        ``timeout`` seconds passed) and someone else holds it."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            if blocking and timeout is None:
                while True:
                    try:
                        fcntl.flock(fd, op)
                        break
                    except InterruptedError:
                        continue
            else:
                deadline = time.monotonic() + (timeout or 0.0)
                while True:
                    try:
                        fcntl.flock(fd, op | fcntl.LOCK_NB)
                        break
                    except OSError as e:
                        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                            raise
                        if not blocking or time.monotonic() >= deadline:
                            os.close(fd)
                            return False
                        time.sleep(0.02)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass


def remove_tree(path: str) -> None:
    """Remove ``path`` and everything under it; a missing path is fine.

    Iterative, on directory descriptors: a container can make a tree thousands of
    directories deep (``mkdir d; cd d`` in a loop), deeper than PATH_MAX and than
    Python's recursion limit, where ``shutil.rmtree`` failed with RecursionError and
    the container could never be removed.  Never follows a symlink.  Directories whose
    modes forbid listing or unlinking (a layer may hold ``d---------`` directories,
    overlay's ``work/work`` is one) are made accessible and retried, which matters when
    not running as root.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    # the directories being emptied, outermost first: [descriptor or None, name in its
    # parent, (st_dev, st_ino)]; at most _OPEN_FDS descriptors stay open (a tree can be
    # deeper than the descriptor limit): a closed parent is reopened through ".." of its
    # child and must be the same directory
    top = _open_dir(path, None)
    stack: list[list] = [[top, "", _ident(top)]]
    open_count = 1
    try:
        while stack:
            entry = stack[-1]
            sub = _empty_but_subdir(entry[0])
            if sub is not None:  # go down into it first
                fd = _open_dir(sub, entry[0])
                stack.append([fd, sub, _ident(fd)])
                open_count += 1
                if open_count > _OPEN_FDS:
                    far = next(e for e in stack[1:] if e[0] is not None)
                    os.close(far[0])
                    far[0] = None
                    open_count -= 1
                continue
            fd, name, _ = stack.pop()
            if stack:
                parent = stack[-1]
                if parent[0] is None:
                    pfd = os.open("..", _DIR_FLAGS, dir_fd=fd)
                    if _ident(pfd) != parent[2]:
                        os.close(pfd)
                        raise OSError(errno.EBUSY, "a directory moved while it was removed",
                                      path)
                    parent[0] = pfd
                    open_count += 1
                os.close(fd)
                open_count -= 1
                _writable(lambda: os.rmdir(name, dir_fd=parent[0]), parent[0])
            else:
                os.close(fd)
                open_count -= 1
    finally:
        for e in stack:
            if e[0] is not None:
                os.close(e[0])
    os.rmdir(path)


def remove_tree_quietly(path: str) -> None:
    """:func:`remove_tree`, errors ignored (what ``shutil.rmtree(path, ignore_errors=True)``
    did, without importing shutil: with fnmatch and re, ~5 ms of ``rm`` and ``stop``)."""
    try:
        remove_tree(path)
    except OSError:
        pass


def which(name: str) -> str | None:
    """``shutil.which(name)`` for a plain command name: the first executable file of that
    name on ``$PATH`` (without importing shutil, see :func:`remove_tree_quietly`)."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        p = os.path.join(d or ".", name)
        if os.access(p, os.X_OK) and not os.path.isdir(p):
            return p
    return None


_OPEN_FDS = 64


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None) -> int:
    """A descriptor of directory ``name`` (made readable first if it is not)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        # only without root (root opens any directory); a directory a moment ago
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _writable(op, dir_fd: int) -> None:
    """Run ``op`` (an unlink or rmdir in ``dir_fd``); on EACCES make the directory
    writable and try once more."""
    try:
        op()
    except FileNotFoundError:
        pass
    except PermissionError:
        os.fchmod(dir_fd, 0o700)
        op()


def _empty_but_subdir(fd: int) -> str | None:
    """Unlink every non-directory in the directory ``fd``; return the name of a
    subdirectory left in it, or None once it is empty."""
    try:
        names = os.listdir(fd)
    except PermissionError:
        os.fchmod(fd, 0o700)
        names = os.listdir(fd)
    for name in names:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            return name
        _writable(lambda: os.unlink(name, dir_fd=fd), fd)
    return None
