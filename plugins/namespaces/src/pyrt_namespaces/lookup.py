"""Find the file to execute the way execvp(3) does, using the container's PATH."""
from __future__ import annotations

import os
import stat

# Docker's default PATH, used when the process's environment has none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

NOT_FOUND = 127
CANNOT_EXECUTE = 126


class LookupFailed(Exception):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def env_path(env: list[str]) -> str:
    """The PATH in a runtime-spec ``KEY=value`` environment list (last one wins)."""
    value = None
    for item in env:
        if item.startswith("PATH="):
            value = item[5:]
    return DEFAULT_PATH if value is None else value


def env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep and key:
            out[key] = value
    return out


def find_executable(name: str, search_path: str) -> str:
    """Return the path execvp would run for ``name`` searching ``search_path``.

    A name with a ``/`` is returned as is (execve reports its errors).  Otherwise
    each PATH entry is tried in order (an empty entry means the working
    directory); the first regular file that is executable wins.  When none is,
    raises :class:`LookupFailed` with 126 if a matching file exists but is not
    executable, else 127.
    """
    if not name:
        raise LookupFailed("exec: empty command name", NOT_FOUND)
    if "/" in name:
        return name
    denied = None
    for entry in search_path.split(":"):
        candidate = os.path.join(entry or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if os.access(candidate, os.X_OK):
            return candidate
        denied = denied or candidate
    if denied:
        raise LookupFailed(f"exec {name!r}: permission denied ({denied})", CANNOT_EXECUTE)
    raise LookupFailed(f"exec {name!r}: executable file not found in $PATH", NOT_FOUND)
