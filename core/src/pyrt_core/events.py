"""The event journal: what ``pyrt events`` reports, written by every pyrt process.

docker keeps its events in the daemon's memory; pyrt has no daemon, so each operation
appends one line to a journal in the store (``<root>/events/events.log``) and ``pyrt
events`` reads and follows it.  A line is one JSON object in docker's shape (``Type``,
``Action``, ``Actor{ID, Attributes}``, ``scope``, ``time``, ``timeNano``, and for
containers and images the older ``status``/``id``/``from``).

Why it can be trusted and shared:

* one ``write(2)`` of the whole line on a descriptor opened with ``O_APPEND``: the
  kernel serialises appends to a regular file (the inode lock), so lines of concurrent
  writers (the CLI, conmon's exit command, recovery) never interleave;
* bounded: once the file passes :data:`MAX_SIZE` it is renamed to ``events.log.1``
  (replacing the previous one) under ``events.lock``, so the journal holds at most about
  twice that; a writer still holding the renamed file finishes its line there;
* root's: the directory is made 0700 and must be trusted as pyrt's caches are
  (:mod:`pyrt_core.trusted`: the chain owned by the caller or root, writable by no one
  else); the file is opened with ``O_NOFOLLOW`` and ``fstat`` must say a regular file
  of the caller's or root's, writable by neither group nor others.  A journal that
  fails this is never written (the operation goes on: an event is a report) and never
  read (``pyrt events`` says why, exit 125).

Cheap on the hot paths (``rm``, ``stop``, conmon's exit command): only ``os``, ``stat``,
``time`` and :mod:`pyrt_core.jsonlean` (no ``json``); a few system calls per event.
"""
from __future__ import annotations

import os
import stat

#: the journal's size at which it is rotated (bytes); at most two files are kept
MAX_SIZE = 1 << 20
_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def journal_dir(root: str) -> str:
    return os.path.join(root, "events")


def journal_path(root: str) -> str:
    return os.path.join(root, "events", "events.log")


def emit(root: str, type_: str, action: str, actor_id: str, attributes: dict | None = None,
         scope: str = "local") -> None:
    """Append one event to the journal of the store at ``root``.  Never raises: an event
    that cannot be written (an untrusted journal, a full disk) is dropped, not a reason for
    the operation to fail."""
    try:
        _append(root, _line(type_, action, actor_id, attributes, scope))
    except Exception:  # noqa: BLE001 - a report, never an operation's failure
        pass


def _line(type_: str, action: str, actor_id: str, attributes: dict | None,
          scope: str) -> bytes:
    import time

    from .jsonlean import dumps

    ns = time.time_ns()
    attrs = {str(k): str(v) for k, v in (attributes or {}).items()}
    ev: dict = {}
    if type_ in ("container", "image"):  # docker's older fields, still in its JSON
        ev["status"] = action
        ev["id"] = actor_id
        if type_ == "container" and attrs.get("image"):
            ev["from"] = attrs["image"]
    ev.update({"Type": type_, "Action": action,
               "Actor": {"ID": actor_id, "Attributes": attrs},
               "scope": scope, "time": ns // 1_000_000_000, "timeNano": ns})
    return (dumps(ev) + "\n").encode()


def _checked_fd(fd: int, path: str) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file")
    if st.st_uid not in (0, os.geteuid()):
        raise OSError(f"{path} is owned by uid {st.st_uid}")
    if st.st_mode & _WRITABLE:
        raise OSError(f"{path} is writable by group or others")


def why_untrusted(root: str, create: bool = False) -> str | None:
    """None when the journal's directory may be used (``create``: made, 0700, when
    missing), else why not."""
    from .trusted import why_untrusted_dir

    return why_untrusted_dir(journal_dir(root), create=create)


def _append(root: str, line: bytes) -> None:
    if why_untrusted(root, create=True):
        return
    path = journal_path(root)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        _checked_fd(fd, path)
        os.write(fd, line)
        if os.fstat(fd).st_size > MAX_SIZE:
            _rotate(path, fd)
    finally:
        os.close(fd)


def _rotate(path: str, fd: int) -> None:
    """Rename the full journal to ``events.log.1``, once: under ``events.lock``, and only
    while ``path`` is still the file ``fd`` wrote (another writer may have rotated it)."""
    import fcntl

    lock = os.open(os.path.join(os.path.dirname(path), "events.lock"),
                   os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mine = os.fstat(fd)
        try:
            cur = os.lstat(path)
        except FileNotFoundError:
            return
        if (cur.st_dev, cur.st_ino) == (mine.st_dev, mine.st_ino) and cur.st_size > MAX_SIZE:
            os.rename(path, path + ".1")
    finally:
        os.close(lock)


# -- reading (pyrt events) -----------------------------------------------------------------

class UntrustedJournal(Exception):
    pass


def open_journal(path: str):
    """A descriptor of the journal file ``path`` (None when missing), refused
    (:class:`UntrustedJournal`) unless it is a regular file of the caller's or root's that
    no one else may write (a symlink is refused: ``O_NOFOLLOW``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        import errno

        if e.errno == errno.ELOOP:
            raise UntrustedJournal(f"the event journal {path} is a symbolic link") from None
        raise UntrustedJournal(f"the event journal {path}: {e.strerror}") from None
    try:
        _checked_fd(fd, path)
    except OSError as e:
        os.close(fd)
        raise UntrustedJournal(f"the event journal is not trusted: {e}") from None
    return fd


def lines(root: str, replay: bool, follow: bool, until_ns: int | None = None,
          poll: float = 0.1):
    """The journal's lines (bytes, newline stripped): with ``replay`` from its start (the
    rotated file first), else only what is written from now on; with ``follow`` going on
    as lines are written (across a rotation) until ``until_ns`` (nanoseconds since the
    epoch) has passed, else ending at the end of the file.  Raises UntrustedJournal for a
    journal another user could have written."""
    import time

    path = journal_path(root)
    d = journal_dir(root)

    def check_dir() -> None:
        if os.path.lexists(d):
            why = why_untrusted(root)
            if why:
                raise UntrustedJournal(f"the event journal's directory is not trusted: {why}")

    check_dir()
    if replay:
        fd = open_journal(path + ".1")
        if fd is not None:
            try:
                yield from _whole_lines(fd, b"")[0]
            finally:
                os.close(fd)
    fd = open_journal(path)
    pending = b""
    try:
        if fd is not None and not replay:
            os.lseek(fd, 0, os.SEEK_END)
        while True:
            if fd is not None:
                got, pending = _whole_lines(fd, pending)
                yield from got
            if not follow or (until_ns is not None and time.time_ns() > until_ns):
                return
            time.sleep(poll)
            # rotated (or made) meanwhile: finish the old file, go on with the new one
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            cur = os.fstat(fd) if fd is not None else None
            if cur is None or (st.st_dev, st.st_ino) != (cur.st_dev, cur.st_ino):
                if fd is not None:
                    got, pending = _whole_lines(fd, pending)
                    yield from got
                    os.close(fd)
                    fd = None
                check_dir()
                fd = open_journal(path)
                pending = b""
    finally:
        if fd is not None:
            os.close(fd)


def _whole_lines(fd: int, pending: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines readable from ``fd`` now, and what is left of a line being
    written."""
    chunks = [pending]
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    *done, rest = data.split(b"\n")
    return [x for x in done if x], rest
