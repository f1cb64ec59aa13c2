"""Errors pyrt reports to users, each carrying the exit code the CLI returns.

Exit codes follow docker and podman: 125 for the engine's own errors
(bad flags, missing images, storage failures), 126 when the container's
command cannot be run, 127 when it is not found.
"""
from __future__ import annotations


class PyrtError(Exception):
    """Base of every error shown to a user as one line: ``pyrt: <message>``."""

    exit_code = 125


class UsageError(PyrtError):
    """A flag, option or configuration value is invalid."""


class NotFoundError(PyrtError):
    """An image, container or layer that was named does not exist."""


class ConflictError(PyrtError):
    """A name or id is already in use, or an object is in use."""


class ImageError(PyrtError):
    """An image or archive is corrupt, truncated or not understood."""


class LayerError(ImageError):
    """A layer tar cannot be applied (for example an entry escapes the root)."""


class StorageError(PyrtError):
    """The storage driver failed."""


class DriverNotSupported(StorageError):
    """The host's kernel or filesystem cannot support this storage driver."""


class DriverPrerequisitesMissing(StorageError):
    """A tool or filesystem this storage driver needs is not there."""


class PluginError(PyrtError):
    """A plugin failed to load or misbehaved."""


class RuntimeError_(PyrtError):
    """The runtime could not create or run the container."""


class ExecError(RuntimeError_):
    """The container's command could not be executed (126) or found (127)."""

    def __init__(self, message: str, exit_code: int = 126):
        super().__init__(message)
        self.exit_code = exit_code
