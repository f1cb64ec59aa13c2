"""Run OCI hooks: each hook gets the container state JSON on its stdin.

A hook that exits non-zero, cannot be started or outlives its timeout
raises :class:`~pyrt_core.errors.RuntimeError_` naming the phase and the
hook; the caller decides whether that fails the operation (prestart,
createRuntime, createContainer, startContainer) or is only reported
(poststart, poststop).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess

from ..errors import RuntimeError_


def _describe(hook) -> str:
    return " ".join([hook.path, *hook.args[1:]]) if hook.args else hook.path


def run_hook(hook, state: dict, phase: str) -> None:
    """Run one hook with ``state`` (a dict) serialized on its stdin."""
    data = json.dumps(state).encode()
    argv = list(hook.args) if hook.args else [hook.path]
    env = dict(e.split("=", 1) for e in hook.env if "=" in e)
    try:
        proc = subprocess.Popen(argv, executable=hook.path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                close_fds=True, start_new_session=True)
    except OSError as exc:
        raise RuntimeError_(f"{phase} hook {_describe(hook)} failed: {exc.strerror or exc}") from None
    try:
        out, _ = proc.communicate(data, timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        # Its killed children came to us if we are a child subreaper (as while
        # creating a container): reap them too.
        while True:
            try:
                os.waitpid(-proc.pid, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
        raise RuntimeError_(f"{phase} hook {_describe(hook)} timed out after "
                            f"{hook.timeout}s") from None
    if proc.returncode != 0:
        detail = (out or b"").decode(errors="replace").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        raise RuntimeError_(f"{phase} hook {_describe(hook)} {how}{tail}")


def run_hooks(hooks, state: dict, phase: str) -> None:
    """Run ``hooks`` (a list of config.Hook) in order; the first failure raises."""
    for hook in hooks or ():
        run_hook(hook, state, phase)
