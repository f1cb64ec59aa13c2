"""Another OCI runtime than pyrt's own (``--runtime runc|crun|NAME|PATH``), as docker's
``--runtime`` and podman's ``--runtime``.

A container names its runtime in its config (``ContainerConfig.runtime``, docker's
``HostConfig.Runtime``): empty (or ``pyrt``) is pyrt-runtime, driven in-process where
the engine can (the fast path: its Python functions, the early start of conmon); any
other is an OCI runtime with runc's command line, run as a program for every operation
on the container: ``create`` (by conmon), ``start``, ``kill``, ``pause``/``resume``,
``exec``, ``state`` and ``delete`` (by the engine, its clean-up and recovery).

Where a name leads (:func:`resolve`): an absolute path as given; else the config file's
``[runtimes]`` table (``runc = "/usr/sbin/runc"`` or a list of candidates, the first
present wins, as podman's ``[engine.runtimes]``); else runc and crun are looked up on
PATH.  Each runtime keeps its state under its own directory of the run root
(``<runroot>/runtimes/<name>``, the runtime's ``--root``), so its own ``state`` sees
pyrt's containers: ``runc --root /run/pyrt/runtimes/runc state ID``.

pyrt runs the runtime as root with the container's whole configuration: a program
another user could have written would be theirs to run as root.  So the file is used
only when, after symlinks are resolved, it is a regular, executable file owned by root
(or the caller), writable by neither group nor others, in directories with the same
property (:mod:`pyrt_core.trusted`, the rule OpenSSH and sudo apply) -- checked when the
container is created and again before every use.  The resolved path is recorded
(``Container.runtime``) and used for the rest of the container's run.
"""
from __future__ import annotations

import os
import stat

from ..errors import RuntimeError_, UsageError

#: names meaning pyrt's own runtime
PYRT_NAMES = ("", "pyrt", "pyrt-runtime")
#: runtimes found on PATH without a [runtimes] entry
BUILTIN = ("runc", "crun")


def is_pyrt(name: str | None) -> bool:
    return (name or "") in PYRT_NAMES


def why_untrusted(path: str) -> str | None:
    """None when ``path`` (symlinks resolved) is a regular executable file owned by root or
    the caller, writable by neither group nor others, in a trusted directory chain; else
    why not."""
    from ..trusted import why_untrusted_dir

    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError as e:
        return f"{path}: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{real} is not a regular file"
    if not st.st_mode & 0o111:
        return f"{real} is not executable"
    if st.st_uid not in (0, os.geteuid()):
        return f"{real} is owned by uid {st.st_uid}, not by root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{real} is writable by group or others"
    why = why_untrusted_dir(os.path.dirname(real))
    if why:
        return why
    return None


def trusted_path(path: str, name: str) -> str:
    """``path`` resolved, once :func:`why_untrusted` accepts it; else UsageError."""
    why = why_untrusted(path)
    if why:
        raise UsageError(f"refusing the OCI runtime {name}: {why} (a runtime must be a "
                         "root-owned file that no other user can write)")
    return os.path.realpath(path)


def resolve(name: str, runtimes: dict | None = None) -> str:
    """The trusted absolute path of the runtime ``name`` (see the module's docstring);
    UsageError (exit 125, one line) when it is unknown or untrusted."""
    from ..fsutil import which

    if "/" in name:
        if not os.path.isabs(name):
            raise UsageError(f"invalid --runtime {name!r}: a runtime name or an absolute path")
        return trusted_path(name, name)
    if not name or any(c.isspace() for c in name) or "\0" in name:
        raise UsageError(f"invalid --runtime {name!r}")
    candidates = (runtimes or {}).get(name)
    if candidates:
        for c in [candidates] if isinstance(candidates, str) else candidates:
            if os.path.exists(c):
                return trusted_path(c, name)
        raise UsageError(f"the OCI runtime {name} is configured but none of its paths exist: "
                         + ", ".join([candidates] if isinstance(candidates, str) else candidates))
    if name in BUILTIN:
        found = which(name)
        if found:
            return trusted_path(found, name)
    raise UsageError(f"unknown or invalid runtime name: {name}")


def root_for(runroot: str, name: str) -> str:
    """The runtime's ``--root`` for pyrt's containers: ``<runroot>/runtimes/<name>`` (a path's
    runtime by its file name)."""
    base = os.path.basename(name.rstrip("/")) if "/" in name else name
    return os.path.join(runroot, "runtimes", base)


class OCIRuntime:
    """An OCI runtime program with runc's command line, for one run root."""

    def __init__(self, path: str, root: str, name: str = ""):
        self.path = path
        self.root = root
        self.name = name or os.path.basename(path)

    @classmethod
    def of(cls, settings, c) -> OCIRuntime | None:
        """The runtime of container ``c`` (a record with ``config.runtime`` and the resolved
        ``runtime`` path of its run), or None for pyrt's own."""
        name = getattr(c.config, "runtime", "") or ""
        if is_pyrt(name):
            return None
        path = c.runtime if c.runtime and os.path.isabs(c.runtime) else \
            resolve(name, getattr(settings, "runtimes", None))
        return cls(path, root_for(settings.runroot, name), name)

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root] + list(args)

    def _run(self, *args: str, check: bool = True, quiet: bool = False):
        import subprocess

        why = why_untrusted(self.path)  # again before every use: never run what was swapped
        if why:
            raise RuntimeError_(f"refusing the OCI runtime {self.name}: {why}")
        p = subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace")
        if check and p.returncode != 0:
            err = (p.stderr.strip().splitlines() or [""])[-1]
            raise RuntimeError_(f"{self.name} {args[0]} failed: {err or f'exit {p.returncode}'}")
        return p

    def start(self, cid: str) -> None:
        self._run("start", cid)

    def kill(self, cid: str, sig: int) -> None:
        self._run("kill", cid, str(sig))

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid)

    def state(self, cid: str) -> dict | None:
        """The runtime's ``state`` of ``cid``, None when it knows no such container."""
        from ..jsonlean import loads

        p = self._run("state", cid, check=False)
        if p.returncode != 0:
            return None
        try:
            return loads(p.stdout)
        except ValueError:
            return None

    def delete(self, cid: str, force: bool = True) -> None:
        """Delete ``cid``'s runtime state (its cgroup too); nothing when there is none."""
        if not os.path.isdir(os.path.join(self.root, cid)):
            return
        self._run("delete", *(["--force"] if force else []), cid)

    def ids(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.root) if not n.startswith(".")]
        except OSError:
            return []


def all_roots(runroot: str) -> list[str]:
    """The state directories of the other runtimes pyrt used under ``runroot``."""
    d = os.path.join(runroot, "runtimes")
    try:
        return [os.path.join(d, n) for n in sorted(os.listdir(d))]
    except OSError:
        return []
