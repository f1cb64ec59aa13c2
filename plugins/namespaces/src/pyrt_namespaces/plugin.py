"""pluggy hook implementations of the namespaces plugin.

Kept cheap to import (``pyrt`` loads every plugin at start-up): the modules doing
the work, which load ctypes and libc, are imported inside the hooks.
"""
from __future__ import annotations

from pyrt_core.hookspecs import hookimpl

#: True for type checkers only: the hooks' annotations name these types, which the
#: runtime's hot path must not import (docs/architecture.md, "The hot path")
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrt_core.api import ContainerProcess, ProcessConfig, RuntimeConfig

#: what the hooks below import on first call, for callers with time to spare
#: (pyrt_core.hookspecs, "declarations"): create's code, and start's
WARM_UP = {"pyrt_isolation_create": ("pyrt_namespaces.create",),
           "pyrt_isolation_start": ("pyrt_namespaces.fifo",)}


@hookimpl
def pyrt_isolation_create(config: RuntimeConfig, stdio: tuple[int | str, ...],
                          place_process: Callable[..., dict[str, object] | None],
                          join_resources: Callable[[dict[str, object]], None] | None,
                          ) -> ContainerProcess | None:
    from .create import create

    return create(config, stdio, place_process, join_resources)


@hookimpl
def pyrt_isolation_start(container_id: str, fifo: str, status_fifo: str) -> bool | None:
    # the FIFOs were handed to the init by NamespacedProcess.detach_start; fifo.py is kept
    # lean: pyrt-runtime start imports nothing else of this plugin
    from .fifo import start_fifo

    start_fifo(fifo, status_fifo)
    return True


@hookimpl
def pyrt_isolation_join(pid: int, namespaces: list[str], process: ProcessConfig,
                        stdio: tuple[int | str, ...]) -> ContainerProcess | None:
    from .join import join

    return join(pid, namespaces, process, stdio)


@hookimpl
def pyrt_isolation_unshare(namespaces: list[str]) -> bool | None:
    from .unshare import unshare

    unshare(namespaces)
    return True


@hookimpl
def pyrt_info() -> dict[str, dict[str, object]] | None:
    from . import __version__, nstypes

    available = nstypes.available()
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            userns = "user" in available and int(f.read()) > 0
    except (OSError, ValueError):
        userns = "user" in available
    return {"namespaces": {
        "available": available,
        "user namespaces": userns,
        "version": __version__,
    }}


@hookimpl
def pyrt_runtime_features() -> dict[str, object] | None:
    from pyrt_core.api import (SECCOMP_ACTIONS, SECCOMP_ARCHITECTURES, SECCOMP_FLAGS,
                               SECCOMP_OPERATORS)

    from . import caps, nstypes
    from .seccomp import available

    out: dict[str, object] = {"namespaces": sorted(nstypes.NAMESPACES),
                              "capabilities": list(caps.CAP_NAMES)}
    if available():  # the filters are compiled with libseccomp
        out["seccomp"] = {"enabled": True, "actions": sorted(SECCOMP_ACTIONS),
                          "operators": sorted(SECCOMP_OPERATORS),
                          "archs": sorted(SECCOMP_ARCHITECTURES),
                          "knownFlags": sorted(SECCOMP_FLAGS),
                          "supportedFlags": sorted(SECCOMP_FLAGS)}
    return out
