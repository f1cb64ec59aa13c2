"""A third-party volume driver, ``example``, as a plugin outside pyrt-core would write it
(tests/privileged/test_volumes.py installs it through a ``pyrt.plugins`` entry point of
a distribution on ``PYTHONPATH``, and drives it with ``pyrt volume create -d example``
and ``--mount volume-driver=example``).

It imports only ``pyrt_core.hookspecs`` and ``pyrt_core.api``, keeps each volume's data
in ``<root>/volumes/<name>/example-data`` (the directory the core made for it), reports
a ``Status``, and writes every call it gets to ``<root>/volume-example.log``, so the
test sees the protocol's order: create, mount, unmount, remove.
"""
from __future__ import annotations

import os

from pyrt_core.hookspecs import hookimpl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DRIVER = "example"


def _log(root: str, *words: str) -> None:
    with open(os.path.join(root, "volume-example.log"), "a") as f:
        f.write(" ".join(words) + "\n")


def _data(root: str, name: str) -> str:
    return os.path.join(root, "volumes", name, "example-data")


@hookimpl
def pyrt_volume_drivers() -> list[str] | None:
    return [DRIVER]


@hookimpl
def pyrt_volume_capabilities(driver: str) -> dict[str, Any] | None:
    return {"Scope": "global"} if driver == DRIVER else None


@hookimpl
def pyrt_volume_create(driver: str, name: str, options: dict[str, str],
                       root: str) -> dict[str, Any] | None:
    if driver != DRIVER:
        return None
    from pyrt_core.api import UsageError

    unknown = set(options) - {"greeting"}
    if unknown:
        raise UsageError(f"example driver: unknown option {sorted(unknown)[0]!r}")
    os.mkdir(_data(root, name), 0o755)
    if "greeting" in options:
        with open(os.path.join(_data(root, name), "greeting"), "w") as f:
            f.write(options["greeting"] + "\n")
    _log(root, "create", name)
    return {"Mountpoint": _data(root, name)}


@hookimpl
def pyrt_volume_remove(driver: str, name: str, root: str) -> bool | None:
    if driver != DRIVER:
        return None
    from pyrt_core.api import remove_tree

    remove_tree(_data(root, name))
    _log(root, "remove", name)
    return True


@hookimpl
def pyrt_volume_mount(driver: str, name: str, container_id: str, root: str) -> str | None:
    if driver != DRIVER:
        return None
    _log(root, "mount", name, container_id[:12])
    return _data(root, name)


@hookimpl
def pyrt_volume_unmount(driver: str, name: str, container_id: str, root: str) -> bool | None:
    if driver != DRIVER:
        return None
    _log(root, "unmount", name, container_id[:12])
    return True


@hookimpl
def pyrt_volume_path(driver: str, name: str, root: str) -> str | None:
    return _data(root, name) if driver == DRIVER else None


@hookimpl
def pyrt_volume_get(driver: str, name: str, root: str) -> dict[str, Any] | None:
    if driver != DRIVER or not os.path.isdir(_data(root, name)):
        return None
    return {"Name": name, "Mountpoint": _data(root, name), "Status": {"driver": "example"}}


@hookimpl
def pyrt_volume_list(driver: str, root: str) -> list[dict[str, Any]] | None:
    if driver != DRIVER:
        return None
    d = os.path.join(root, "volumes")
    return [{"Name": n, "Mountpoint": _data(root, n)} for n in sorted(os.listdir(d))
            if os.path.isdir(_data(root, n))]
