"""mount(2) and umount2(2) through libc, for the ``local`` volume driver (its ``type``,
``device`` and ``o`` options are mounted on the host when a container first uses the
volume).  ctypes is imported only when a volume needs a mount."""
from __future__ import annotations

import os

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS = 1, 2, 4, 8, 16
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
MNT_DETACH = 2

#: mount(8) words that are flags, the rest of ``o`` goes to the filesystem as data
FLAGS = {"ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False), "nosuid": (MS_NOSUID, True),
         "suid": (MS_NOSUID, False), "nodev": (MS_NODEV, True), "dev": (MS_NODEV, False),
         "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False),
         "sync": (MS_SYNCHRONOUS, True), "async": (MS_SYNCHRONOUS, False),
         "noatime": (MS_NOATIME, True), "nodiratime": (MS_NODIRATIME, True),
         "relatime": (MS_RELATIME, True), "strictatime": (MS_STRICTATIME, True),
         "bind": (MS_BIND, True), "rbind": (MS_BIND | MS_REC, True)}

_libc = None


def _lib():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def split_options(o: str) -> tuple[int, str]:
    """``o`` (``size=64m,uid=1000,ro``) -> (flags, the filesystem's data string)."""
    flags, data = 0, []
    for word in (o.split(",") if o else []):
        if word in FLAGS:
            bit, on = FLAGS[word]
            flags = (flags | bit) if on else (flags & ~bit)
        elif word:
            data.append(word)
    return flags, ",".join(data)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    import ctypes

    lib = _lib()
    enc = (lambda s: None if s is None else os.fsencode(s))
    if lib.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                 enc(data) if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {source} on {target}: {os.strerror(e)}")


def umount(target: str) -> None:
    """Unmount ``target``; busy (a process still has a file open there): detach it."""
    import ctypes
    import errno

    lib = _lib()
    if lib.umount2(os.fsencode(target), 0) == 0:
        return
    e = ctypes.get_errno()
    if e == errno.EBUSY and lib.umount2(os.fsencode(target), MNT_DETACH) == 0:
        return
    if e == errno.EINVAL:  # not a mount point (already unmounted)
        return
    raise OSError(e, f"unmount {target}: {os.strerror(e)}")


def is_mount_point(path: str) -> bool:
    """Whether something is mounted at ``path`` (its own device, or listed in mountinfo
    for a bind of the same filesystem)."""
    try:
        st, up = os.lstat(path), os.lstat(os.path.join(path, ".."))
    except OSError:
        return False
    if st.st_dev != up.st_dev:
        return True
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == real for line in f)
    except OSError:
        return False
