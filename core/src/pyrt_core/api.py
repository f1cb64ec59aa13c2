"""pyrt's public plugin API: what a plugin may use of pyrt-core.

A plugin imports from here (and from :mod:`pyrt_core.errors`,
:mod:`pyrt_core.hookspecs` and :mod:`pyrt_core.testing`), never from the
core's other modules: those may move between releases, these names do not
(import-linter checks it in CI, see ``.importlinter``).

Names are resolved lazily (PEP 562): ``from pyrt_core.api import X`` imports
only the module X lives in, so a plugin on the runtime's hot path (which must
not import attrs or pluggy, see docs/architecture.md) pays for nothing else.
"""
from __future__ import annotations

#: True for type checkers only (mypy treats any ``TYPE_CHECKING`` so); importing typing
#: would cost every plugin's start-up
TYPE_CHECKING = False

#: name -> module it lives in (the attribute has the same name there)
_HOMES = {
    # errors and markers
    "PyrtError": "pyrt_core.errors",
    "UsageError": "pyrt_core.errors",
    "NotFoundError": "pyrt_core.errors",
    "ConflictError": "pyrt_core.errors",
    "ImageError": "pyrt_core.errors",
    "StorageError": "pyrt_core.errors",
    "RuntimeError_": "pyrt_core.errors",
    "ExecError": "pyrt_core.errors",
    "DriverNotSupported": "pyrt_core.errors",
    "DriverPrerequisitesMissing": "pyrt_core.errors",
    "hookimpl": "pyrt_core.hookspecs",
    # images and references
    "ImageReference": "pyrt_core.models",
    "FetchOptions": "pyrt_core.models",
    # the command line (plugins that add commands: pyrt.commands entry points)
    "engine_from_args": "pyrt_core.cli.common",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    __import__(home)
    import sys

    value = getattr(sys.modules[home], name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return __all__


if TYPE_CHECKING:  # for type checkers and editors: the same names, eagerly
    from .cli.common import engine_from_args  # noqa: F401
    from .errors import (ConflictError, DriverNotSupported, DriverPrerequisitesMissing,  # noqa: F401
                         ExecError, ImageError, NotFoundError, PyrtError, RuntimeError_,
                         StorageError, UsageError)
    from .hookspecs import hookimpl  # noqa: F401
    from .models import FetchOptions, ImageReference  # noqa: F401
