"""The pyrt plugin: the ``pyrt_network_*`` hooks of the bridge backend.

Registered through the ``pyrt.plugins`` entry point ``network``.  It serves when it is
the chosen backend (``[network] backend`` / ``PYRT_NETWORK_BACKEND`` unset or
``bridge``) and returns ``None`` from every hook otherwise.  Import-cheap: the work is
in :mod:`pyrt_network.backend`, imported by the hooks when called.
"""
from __future__ import annotations

import os

from pyrt_core.hookspecs import hookimpl

from .settings import BACKEND, ENV_BACKEND

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrt_core.api import ContainerNetworking, NetworkCreate


def _chosen() -> bool:
    return os.environ.get(ENV_BACKEND, "") in ("", BACKEND)


def _store(root: str):
    from .store import Store

    return Store(root)


@hookimpl
def pyrt_network_backend() -> str | None:
    return BACKEND if _chosen() else None


@hookimpl
def pyrt_info() -> dict[str, dict[str, object]] | None:
    if not _chosen():
        return None
    from . import netlink

    info: dict[str, object] = {"backend": BACKEND, "ip_forward": netlink.forwarding(),
                               "nftables table": "inet pyrt (the default store; another: inet pyrt-<tag>)"}
    try:
        from .nft import nft

        listing = nft().run([{"list": {"chains": None}}]) or {}
        info["libnftables"] = True
        # read only: a forward chain of another table whose policy drops also drops
        # pyrt's containers' traffic (docs/networking.md, "Forwarding")
        drops = [f"{c['family']} {c['table']} {c['name']}" for c in
                 (x.get("chain") for x in listing.get("nftables", []))
                 if c and c.get("hook") == "forward" and c.get("policy") == "drop"
                 and not str(c.get("table", "")).startswith("pyrt")]
        if drops:
            info["forward dropped by"] = drops
    except Exception as e:  # noqa: BLE001 - reported, not raised
        info["libnftables"] = f"missing: {e}"
    return {"network": info}


@hookimpl
def pyrt_network_create(request: NetworkCreate, root: str, runroot: str) -> dict[str, Any] | None:
    if not _chosen():
        return None
    from . import backend

    return backend.create(_store(root), request.name, driver=request.driver, subnet=request.subnet,
                          gateway=request.gateway, ip_range=request.ip_range,
                          internal=request.internal, ipv6=request.ipv6, labels=request.labels,
                          options=request.options)


@hookimpl
def pyrt_network_remove(name: str, root: str, runroot: str) -> bool | None:
    if not _chosen():
        return None
    from . import backend

    return backend.remove(_store(root), name, runroot, root)


@hookimpl
def pyrt_network_list(root: str, runroot: str) -> list[dict[str, Any]] | None:
    if not _chosen():
        return None
    from . import backend

    return backend.list_networks(_store(root))


@hookimpl
def pyrt_network_validate(networking: ContainerNetworking, root: str, runroot: str) -> bool | None:
    if not _chosen():
        return None
    from . import backend

    return backend.validate(_store(root), networking)


@hookimpl
def pyrt_network_setup(container_id: str, netns: str, networking: ContainerNetworking,
                       root: str, runroot: str) -> dict[str, Any] | None:
    if not _chosen():
        return None
    from . import backend

    return backend.setup(_store(root), container_id, netns, networking, root, runroot)


@hookimpl
def pyrt_network_teardown(container_id: str, netns: str | None, record: dict[str, Any] | None,
                          root: str, runroot: str) -> bool | None:
    if not _chosen():
        return None
    from . import backend

    return backend.teardown(_store(root), container_id, record, root, runroot)


@hookimpl
def pyrt_network_connect(container_id: str, netns: str, networking: ContainerNetworking,
                         network: str, record: dict[str, Any] | None, root: str,
                         runroot: str) -> dict[str, Any] | None:
    if not _chosen():
        return None
    from . import backend

    return backend.connect(_store(root), container_id, netns, networking, network, root, runroot)


@hookimpl
def pyrt_network_disconnect(container_id: str, netns: str | None, network: str,
                            record: dict[str, Any] | None, root: str,
                            runroot: str) -> dict[str, Any] | None:
    if not _chosen():
        return None
    from . import backend

    return backend.disconnect(_store(root), container_id, network, root, runroot)


@hookimpl
def pyrt_network_recover(live: list[str], root: str, runroot: str) -> list[str] | None:
    if not _chosen():
        return None
    from . import backend

    return backend.recover(_store(root), live, root, runroot)
