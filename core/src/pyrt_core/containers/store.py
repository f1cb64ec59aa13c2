"""Container records on disk.

Layout under the store root::

    containers/<id>/container.json   the record (config, state, drivers used)
    containers/<id>/lock             flock(2) per container: held by whoever changes
                                     the container (create, start, cleanup, rm,
                                     recovery); released by the kernel when the
                                     holder dies, so a free lock on a record in a
                                     transitional state means its writer is gone
    containers/<id>/ctr.log          the container's output (written by conmon)
    containers/names/<name>          symlink -> <id>; created with symlink(2),
                                     which fails if the name exists, so two
                                     processes can never take one name
    containers.lock                  serialises writers

Transient per-run files (the bundle) live under the run root:
``<runroot>/containers/<id>/``.
"""
from __future__ import annotations

import os

from ..errors import ConflictError, NotFoundError, UsageError
from ..fsutil import FileLock, atomic_write, read_json, remove_tree_quietly
from ..jsonlean import dumps_indented
from .record import ContainerRecord

TYPE_CHECKING = False  # (not typing's: importing typing costs ~3 ms of `run -d`'s start-up)
if TYPE_CHECKING:
    from ..models import Container

#: docker's rule for a new name (moby's RestrictedNamePattern): two characters at least, a
#: letter or digit first; a leading "/" is accepted and dropped, as docker does
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NEW_NAME_RE = r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+"  # fullmatch: no "$" (it allows a final "\n")
#: what a name lookup or a name release accepts: any name an earlier pyrt may have stored
#: that is a plain file name in ``containers/names`` (never "", ".", ".." or a path);
#: a set of characters, not a regular expression: ``re`` (with enum, ~5-10 ms) is imported
#: only to check a new name, not by every lookup (``rm``, ``stop``, conmon's exit command)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_HEX = frozenset("0123456789abcdef")
_ADJ = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
        "merry", "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zen")
_NOUN = ("turing", "hopper", "lovelace", "ritchie", "thompson", "knuth", "dijkstra",
         "torvalds", "liskov", "hamilton", "lamport", "perlman", "wirth", "kay")


class ContainerStore:
    def __init__(self, root: str, runroot: str):
        self.dir = os.path.join(root, "containers")
        self.names = os.path.join(self.dir, "names")
        self.rundir = os.path.join(runroot, "containers")
        self.lock_path = os.path.join(root, "containers.lock")
        # records and bundles hold the containers' environment (-e values): root's only.
        # Nobody else needs to traverse them: conmon and the runtime run as root, and the
        # runtime opens a bundle's bind sources (hosts, hostname, resolv.conf) before it
        # enters a user namespace, so a user-namespaced container needs no path to them.
        if private_dir(self.dir, 0o700):
            _tighten_files(self.dir, "container.json")  # a store made by an earlier pyrt
        os.makedirs(self.names, mode=0o700, exist_ok=True)
        if private_dir(self.rundir, 0o700):
            _tighten_files(self.rundir, "config.json")

    def lock(self):
        return FileLock(self.lock_path)

    def container_lock(self, cid: str, blocking: bool = True) -> "ContainerLock | None":
        """The per-container lock (see the module docstring), held; ``None`` when
        ``blocking`` is False and someone else holds it.  Raises NotFoundError
        when the container's directory is gone."""
        lk = ContainerLock(os.path.join(self.path(cid), "lock"), cid)
        if blocking:
            lk.acquire(True)
            return lk
        return lk if lk.try_acquire() else None

    def begin_create(self, cid: str) -> "ContainerLock":
        """Make the container's directory with its lock already held: the directory
        is built under a temporary name and renamed into place, so no reader ever
        sees a record whose lock is free while its creator is still working."""
        prep = os.path.join(self.dir, f".tmp-prep-{cid}")  # recovery leaves these alone
        tmp = os.path.join(self.dir, f".tmp-create-{cid}")
        os.makedirs(prep, mode=0o700)
        lk = ContainerLock(os.path.join(prep, "lock"), cid)
        lk.acquire(True)
        os.rename(prep, tmp)  # only now can recovery see it, and its lock is held
        lk.path = os.path.join(tmp, "lock")
        return lk

    def publish(self, c: Container, lk: "ContainerLock") -> None:
        """Save the first record of a container made by :meth:`begin_create` and
        move its directory into place (the lock stays held: same inode)."""
        import errno

        tmp = os.path.join(self.dir, f".tmp-create-{c.id}")
        final = self.path(c.id)
        atomic_write(os.path.join(tmp, "container.json"),
                     dumps_indented(c.to_dict(), 1), RECORD_MODE, durable=False)
        try:
            os.rename(tmp, final)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # the directory made by prepare_dir holds the monitor's log already (and
            # prepare_dir's lock, which the caller still holds): move the record in, then
            # our lock (same inode: still held; it replaces prepare_dir's).  In this order
            # the temporary directory always holds a held lock while it holds anything, so
            # a concurrent recovery never takes it for a killed creator's; once empty it
            # may remove it first.
            os.rename(os.path.join(tmp, "container.json"), os.path.join(final, "container.json"))
            os.rename(os.path.join(tmp, "lock"), os.path.join(final, "lock"))
            try:
                os.rmdir(tmp)
            except OSError as e:  # a recovery is removing it (it may have put a lock in)
                if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                    raise
        lk.path = os.path.join(final, "lock")

    def prepare_dir(self, cid: str) -> "ContainerLock":
        """Make the directory of a container about to be created, before its record, for
        a monitor started early (it opens ``ctr.log`` at once, see Engine.prelaunch),
        and return its lock, held: a record-less directory whose lock is free was left
        by a killed creator (recovery removes it).  Readers skip a directory without a
        record; :meth:`publish` moves the record and its own lock in (the caller then
        releases this one); :meth:`discard_prepared` removes it if the create never
        happens."""
        prep = os.path.join(self.dir, f".tmp-prep-{cid}")  # locked before anyone can see it
        os.makedirs(prep, mode=0o700)
        lk = ContainerLock(os.path.join(prep, "lock"), cid)
        lk.acquire(True)
        os.rename(prep, self.path(cid))
        lk.path = os.path.join(self.path(cid), "lock")
        return lk

    def discard_prepared(self, cid: str) -> None:
        """Remove a :meth:`prepare_dir` directory that never got a record."""
        path = self.path(cid)
        if not os.path.exists(os.path.join(path, "container.json")):
            remove_tree_quietly(path)

    # -- ids and names -----------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        return os.urandom(32).hex()

    def _random_name(self) -> str:
        for _ in range(100):
            a, b = os.urandom(2)
            name = f"{_ADJ[a % len(_ADJ)]}_{_NOUN[b % len(_NOUN)]}"
            if not os.path.lexists(os.path.join(self.names, name)):
                return name
        return "pyrt_" + os.urandom(6).hex()

    def reserve_name(self, name: str | None, cid: str) -> str:
        """Claim ``name`` (or a generated one) for container ``cid``, atomically."""
        if name is not None:
            name = check_name(name)
        for _ in range(20):
            candidate = name or self._random_name()
            try:
                os.symlink(cid, os.path.join(self.names, candidate))
                return candidate
            except FileExistsError:
                if name is not None:
                    other = os.readlink(os.path.join(self.names, name))
                    raise ConflictError(
                        f'the container name "{name}" is already in use by container {other[:12]}; '
                        f"remove or rename that container to be able to reuse that name") from None
        raise ConflictError("could not generate a free container name")

    def release_name(self, name: str, cid: str) -> None:
        """Drop ``name`` if it is ``cid``'s.  A name that cannot be an entry of the names
        directory (".", "..", "a/b": a record left by an older pyrt, which stored the name
        before checking it) names nothing to release."""
        if not _is_entry_name(name):
            return
        path = os.path.join(self.names, name)
        try:
            if os.readlink(path) == cid:
                os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as e:  # EINVAL: not a symlink, so not a name pyrt made
            import errno

            if e.errno != errno.EINVAL:
                raise

    # -- records ---------------------------------------------------------------------
    def path(self, cid: str) -> str:
        return os.path.join(self.dir, cid)

    def bundle_dir(self, cid: str) -> str:
        return os.path.join(self.rundir, cid)

    def save(self, c: Container | ContainerRecord, durable: bool = True) -> None:
        """Write the record atomically (a model ``Container``, or the lean view, whose
        dict keeps every key it was read with); ``durable=False`` skips fsync (state
        updates that recovery can reconstruct)."""
        os.makedirs(self.path(c.id), mode=0o700, exist_ok=True)
        atomic_write(os.path.join(self.path(c.id), "container.json"),
                     dumps_indented(c.to_dict(), 1), RECORD_MODE, durable=durable)

    # Two ways to read a record: ``load``/``list``/``get`` build the models
    # (``Container``) for the commands that need them; ``load_record``/``records``/``find``
    # give the lean view (containers.record) to the hot commands, which build no model.

    def _read(self, cid: str, statuses: tuple | None) -> dict | None:
        d = read_json(os.path.join(self.path(cid), "container.json"), None)
        if not d:
            return None
        if statuses is not None and (d.get("state") or {}).get("status") not in statuses:
            return None
        return d

    def load(self, cid: str, statuses: tuple | None = None) -> Container | None:
        """The record of ``cid`` (None without one, or, with ``statuses``, when its
        status is none of them: the model is then never built)."""
        d = self._read(cid, statuses)
        if d is None:
            return None
        from ..models import Container  # attrs: loaded with the first record, not before

        return Container.from_dict(d)

    def load_record(self, cid: str, statuses: tuple | None = None) -> ContainerRecord | None:
        """:meth:`load`'s lean view (no model is built)."""
        d = self._read(cid, statuses)
        return None if d is None else ContainerRecord(d)

    def records(self, statuses: tuple | None = None) -> list[ContainerRecord]:
        """:meth:`list`'s lean views."""
        return self._list(self.load_record, statuses)

    def _list(self, load, statuses):
        out: list = []
        try:
            entries = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for e in entries:
            if len(e) == 64:
                try:
                    c = load(e, statuses)
                except (ValueError, TypeError, KeyError, AttributeError) as err:
                    # a damaged record must not break every command that lists containers
                    import sys

                    sys.stderr.write(f"pyrt: warning: skipping the unreadable container record "
                                     f"{e[:12]}: {' '.join(str(err).split())}\n")
                    continue
                if c is not None:
                    out.append(c)
        out.sort(key=lambda c: c.created, reverse=True)
        return out

    def list(self, statuses: tuple | None = None) -> list[Container]:
        """Every container (with ``statuses``, those in one of them: the recovery pass
        every command starts with builds no model for the others)."""
        return self._list(self.load, statuses)

    def get(self, ref: str) -> Container:
        """Look up by name, full id, or unique id prefix."""
        return self._get(ref, self.load)

    def find(self, ref: str) -> ContainerRecord:
        """:meth:`get`'s lean view."""
        return self._get(ref, self.load_record)

    def _get(self, ref: str, load):
        link = os.path.join(self.names, ref)
        if _is_entry_name(ref) and os.path.islink(link):
            c = load(os.readlink(link))
            if c is not None:
                return c
        if ref and len(ref) <= 64 and _HEX.issuperset(ref):
            matches = [e for e in os.listdir(self.dir) if len(e) == 64 and e.startswith(ref)]
            if len(matches) == 1:
                c = load(matches[0])
                if c is not None:
                    return c
            elif len(matches) > 1:
                raise ConflictError(f"container id prefix {ref!r} is ambiguous: {len(matches)} containers match")
        raise NotFoundError(f"no such container: {ref}")

    def delete(self, c: Container | ContainerRecord) -> None:
        """Remove the name, then the record (renamed away first, so a crash
        leaves either the whole record or nothing under its id)."""
        self.release_name(c.name, c.id)
        doomed = os.path.join(self.dir, f".tmp-delete-{c.id}")
        try:
            os.rename(self.path(c.id), doomed)
        except FileNotFoundError:
            doomed = None
        if doomed:
            remove_tree_quietly(doomed)
        remove_tree_quietly(self.bundle_dir(c.id))

    def log_path(self, cid: str) -> str:
        return os.path.join(self.path(cid), "ctr.log")


#: container.json and the bundle's config.json hold the -e values: readable by root only
RECORD_MODE = 0o600


def private_dir(path: str, mode: int) -> bool:
    """Make directory ``path`` with exactly ``mode`` (its parents as usual), or give an
    existing one that mode.  True when an existing directory had other permissions
    (made by an earlier pyrt, or by hand): its files may need tightening too."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        os.chmod(path, mode)  # not cut by the umask
        return False
    if stat.S_IMODE(st.st_mode) == mode:
        return False
    os.chmod(path, mode)
    return True


def _tighten_files(top: str, name: str) -> None:
    """``top/*/name`` -> RECORD_MODE (the records and bundles an earlier pyrt wrote 0644)."""
    try:
        entries = os.listdir(top)
    except OSError:
        return
    import stat

    for e in entries:
        try:  # never through a symlink, never a fifo's open
            fd = os.open(os.path.join(top, e, name),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, RECORD_MODE)
        except OSError:
            pass
        finally:
            os.close(fd)


def check_name(name: str) -> str:
    """``name`` as docker accepts it for a new container (a leading "/" dropped), else
    docker's error (exit 125).  Checked before anything of the container exists."""
    import re

    if not isinstance(name, str) or not re.fullmatch(_NEW_NAME_RE, name):
        raise UsageError(f"Invalid container name ({name}), only {NAME_CHARS} are allowed")
    return name[1:] if name.startswith("/") else name


def _is_entry_name(name) -> bool:
    return (isinstance(name, str) and bool(name) and _NAME_CHARS.issuperset(name)
            and name not in (".", ".."))


class ContainerLock:
    """An exclusive flock on ``containers/<id>/lock`` (never creates the directory)."""

    def __init__(self, path: str, cid: str):
        self.path = path
        self.cid = cid
        self.fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no such container: {self.cid[:12]}") from None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                    break
                except InterruptedError:
                    continue
                except BlockingIOError:
                    os.close(fd)
                    raise
        except BlockingIOError:
            raise
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def try_acquire(self) -> bool:
        try:
            return self.acquire(False)
        except BlockingIOError:
            return False

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
