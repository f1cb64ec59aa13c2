"""A container's persistent network namespace: a bind mount of a fresh one at
``<runroot>/netns/<id>`` (docs/networking.md, "The network namespace").

The engine makes it before a start in mode ``networks`` (so the network plugin can
plug interfaces into it before the container's process exists), names it by path in
the bundle's ``linux.namespaces`` and removes it after ``pyrt_network_teardown``.  A
bind mount keeps the namespace alive without a process, which is what ``ip netns add``,
docker (``/run/docker/netns``) and podman (``/run/netns``) do.

How the namespace is made: a short-lived thread of this process unshares
``CLONE_NEWNET`` (only that thread changes namespace; the others never see it) and
brings its loopback interface up, bind-mounts ``/proc/thread-self/ns/net`` onto an empty file, then ends.  No child
process and no ``ip`` subprocess: a SIGKILL at any point leaves at most the empty file
or the mount, both of which :func:`remove` and recovery clear.  Standard library and
ctypes only (no attrs): recovery and ``rm`` call :func:`remove`.
"""
from __future__ import annotations

import os

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2
_libc = None


def _lib():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        import ctypes

        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def path_for(runroot: str, cid: str) -> str:
    """Where the namespace of container ``cid`` is kept."""
    return os.path.join(runroot, "netns", cid)


def directory(runroot: str) -> str:
    return os.path.join(runroot, "netns")


def is_netns(path: str) -> bool:
    """Whether ``path`` is a bind mount of a network namespace (the nsfs device: every
    namespace file lives on it, this process's own included)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def create(path: str) -> str:
    """Make a fresh network namespace at ``path`` (idempotent: one that is there already
    is kept).  Returns ``path``; raises OSError when the kernel refuses."""
    if is_netns(path):
        return path
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o444)
        os.close(fd)
    except FileExistsError:
        pass
    err: list[BaseException] = []

    def make() -> None:
        try:
            lib = _lib()
            _check(lib.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _loopback_up()
            _check(lib.mount(b"/proc/thread-self/ns/net", os.fsencode(path), None, MS_BIND, None),
                   f"bind-mounting a network namespace on {path}")
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    import threading

    t = threading.Thread(target=make, name="pyrt-netns")
    t.start()
    t.join()
    if err:
        remove(path)
        raise err[0]
    return path


def _loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace: the runtime does that
    only in namespaces it creates itself, not in one it joins by path (as runc; docker's
    libnetwork and CNI's loopback plugin do it beside the runtime, and so does the core)."""
    import _socket  # socket.py would import enum and selectors
    import fcntl
    import struct

    ifreq = "16sh22x"  # struct ifreq: the name, short ifr_flags, padding to 40 bytes
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        res = fcntl.ioctl(s.fileno(), 0x8913, struct.pack(ifreq, b"lo", 0))  # SIOCGIFFLAGS
        flags = (struct.unpack(ifreq, res)[1] & 0xFFFF) | 0x1  # IFF_UP
        fcntl.ioctl(s.fileno(), 0x8914,  # SIOCSIFFLAGS
                    struct.pack(ifreq, b"lo", flags - 0x10000 if flags & 0x8000 else flags))
    finally:
        s.close()


def remove(path: str) -> bool:
    """Unmount (lazily) and unlink the namespace file at ``path``; True when there was
    something to remove.  Idempotent: a missing file, or one that is not mounted (a
    create killed before its mount), is fine."""
    found = False
    if os.path.lexists(path):
        found = True
        lib = _lib()
        for _ in range(4):  # a mount stacked by a racing create: take them all
            if lib.umount2(os.fsencode(path), MNT_DETACH) != 0:
                break
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return found


def listed(runroot: str) -> list[str]:
    """The container ids that have a namespace file under ``runroot``."""
    try:
        return [n for n in os.listdir(directory(runroot)) if not n.startswith(".")]
    except OSError:
        return []
