"""Shared helpers of the tests where a real engine (podman, containerd) drives pyrt-runtime."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

CGROUP_ROOT = "/sys/fs/cgroup"


def runtime_path() -> str | None:
    """The pyrt-runtime executable of the interpreter running the tests (the venv's or
    tox's), else one on PATH.  ``PYRT_TEST_OCI_RUNTIME`` overrides it (e.g. ``runc``, to
    check the tests' own machinery against the reference runtime)."""
    override = os.environ.get("PYRT_TEST_OCI_RUNTIME")
    if override:
        return shutil.which(override) or override
    cand = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")
    if os.access(cand, os.X_OK):
        return cand
    return shutil.which("pyrt-runtime")


def cgroup_dirs(name: str) -> set[str]:
    """``name`` (a path relative to each hierarchy) and what is below it, in every v1
    hierarchy and the v2 one."""
    out = set()
    try:
        hierarchies = [os.path.join(CGROUP_ROOT, h) for h in os.listdir(CGROUP_ROOT)]
    except OSError:
        return out
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        hierarchies = [CGROUP_ROOT]  # pure v2
    for h in hierarchies:
        top = os.path.join(h, name)
        if os.path.isdir(top):
            for dirpath, _, _ in os.walk(top):
                out.add(dirpath)
    return out


def remove_cgroups(paths, timeout: float = 5.0) -> list[str]:
    """rmdir the given cgroups, deepest first, retrying while their last tasks exit;
    returns those that could not be removed."""
    left = sorted(paths, key=len, reverse=True)
    deadline = time.monotonic() + timeout
    while left:
        busy = []
        for p in left:
            try:
                os.rmdir(p)
            except FileNotFoundError:
                pass
            except OSError:
                busy.append(p)
        left = busy
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return left


def unmount_under(prefix: str) -> None:
    """Lazily unmount every mount point under ``prefix`` (deepest first)."""
    prefix = os.path.realpath(prefix)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in sorted({m for m in points if m == prefix or m.startswith(prefix + "/")},
                     key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL, check=False)


def wait_for(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """A cgroup file of process ``pid`` read from the host (v1 hierarchy or v2)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as g:
                    return g.read().strip()
            if ctrls == "" and not os.path.isdir(f"/sys/fs/cgroup/{controller}"):  # pure v2
                with open(f"/sys/fs/cgroup{path}/{name}") as g:
                    return g.read().strip()
    raise AssertionError(f"no {controller} cgroup for pid {pid}")
