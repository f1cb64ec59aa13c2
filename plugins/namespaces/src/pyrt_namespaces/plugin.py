"""pluggy hook implementations of the namespaces plugin.

Kept cheap to import (``pyrt`` loads every plugin at start-up): the modules doing
the work, which load ctypes and libc, are imported inside the hooks.
"""
from __future__ import annotations

from pyrt_core.hookspecs import hookimpl


@hookimpl
def pyrt_isolation_create(config, stdio, place_process, join_resources):
    from .create import create

    return create(config, stdio, place_process, join_resources)


@hookimpl
def pyrt_isolation_join(pid, namespaces, process, stdio):
    from .join import join

    return join(pid, namespaces, process, stdio)


@hookimpl
def pyrt_isolation_unshare(namespaces):
    from .unshare import unshare

    unshare(namespaces)
    return True


@hookimpl
def pyrt_info():
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
