"""pyrt-network-cni's hooks: the ``pyrt_network_*`` hooks (pyrt_core.hookspecs,
"Networking") answered with CNI configurations run by the CNI plugins.

Every hook returns None unless this backend is the chosen one
(:func:`pyrt_network_cni.settings.chosen`), and imports the backend only then: loading
this module costs nothing more than the settings module.
"""
from __future__ import annotations

from pyrt_core.hookspecs import hookimpl

from . import settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrt_core.api import ContainerNetworking, NetworkCreate


@hookimpl
def pyrt_network_backend() -> str | None:
    return settings.BACKEND if settings.chosen() else None


@hookimpl
def pyrt_network_create(request: NetworkCreate, root: str, runroot: str) -> dict[str, Any] | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.create(request, root)


@hookimpl
def pyrt_network_remove(name: str, root: str, runroot: str) -> bool | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.remove(name, root)


@hookimpl
def pyrt_network_list(root: str, runroot: str) -> list[dict[str, Any]] | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.list_all(root)


@hookimpl
def pyrt_network_validate(networking: ContainerNetworking, root: str,
                          runroot: str) -> bool | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.validate(networking, root)


@hookimpl
def pyrt_network_setup(container_id: str, netns: str, networking: ContainerNetworking,
                       root: str, runroot: str) -> dict[str, Any] | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.setup(container_id, netns, networking, root)


@hookimpl
def pyrt_network_teardown(container_id: str, netns: str | None, record: dict[str, Any] | None,
                          root: str, runroot: str) -> bool | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.teardown(container_id, netns, record, root)


@hookimpl
def pyrt_network_connect(container_id: str, netns: str, networking: ContainerNetworking,
                         network: str, record: dict[str, Any] | None, root: str,
                         runroot: str) -> dict[str, Any] | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.connect(container_id, netns, networking, network, root)


@hookimpl
def pyrt_network_disconnect(container_id: str, netns: str | None, network: str,
                            record: dict[str, Any] | None, root: str,
                            runroot: str) -> dict[str, Any] | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.disconnect(container_id, netns, network, root)


@hookimpl
def pyrt_network_recover(live: list[str], root: str, runroot: str) -> list[str] | None:
    if not settings.chosen():
        return None
    from . import backend

    return backend.recover(live, root)
