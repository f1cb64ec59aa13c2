"""The hooks that are events of their own, journalled where the engine calls them.

Networks are created, removed, connected and disconnected, and images pulled, through
hooks that a plugin's command (``pyrt network ...``, ``pyrt pull``) or the engine itself
(a container's start and end, ``run``'s pull) calls on the engine's plugin manager
(``Engine.pm``).  That manager observes these hooks (hookcall.ObservedPluginManager), so
every backend's events reach the journal (pyrt_core.events) from the core, whichever
plugin does the work and whoever calls it; the plugins write no events.

Each observer calls the hook (``call(**kw)``) and journals what happened once it
succeeded, in docker's shape: network events name the network's id, with ``name``,
``type`` (its driver) and, for connect/disconnect, ``container``; ``pull`` names the
reference, with ``name`` its repository.
"""
from __future__ import annotations


def _emit(root, type_, action, actor_id, attributes) -> None:
    from ..events import emit

    emit(root, type_, action, actor_id, attributes)


def _networks(record) -> dict:
    nets = (record or {}).get("networks") if isinstance(record, dict) else None
    return nets if isinstance(nets, dict) else {}


def _net_id(record, name: str) -> str:
    att = _networks(record).get(name)
    return str((att or {}).get("NetworkID") or name) if isinstance(att, dict) else name


def network_create(call, hooks, kw):
    result = call(**kw)
    if isinstance(result, dict):
        _emit(kw["root"], "network", "create", str(result.get("Id") or result.get("Name")),
              {"name": result.get("Name", ""), "type": result.get("Driver", "")})
    return result


def network_remove(call, hooks, kw):
    found: dict = {}
    try:
        for n in hooks.pyrt_network_list(root=kw["root"], runroot=kw["runroot"]) or []:
            if n.get("Name") == kw["name"] or n.get("Id") == kw["name"]:
                found = n
                break
    except Exception:  # noqa: BLE001 - the removal says what is wrong
        pass
    result = call(**kw)
    if result:
        _emit(kw["root"], "network", "destroy", str(found.get("Id") or kw["name"]),
              {"name": found.get("Name", kw["name"]), "type": found.get("Driver", "")})
    return result


def _drivers(hooks, kw, names) -> dict:
    """The driver of each network of ``names`` (docker's ``type`` attribute), as the
    plugin lists them (pyrt-network's are all bridges, a CNI network's is its first
    plugin's type); "" for one it does not list."""
    if not names:
        return {}
    try:
        listed = hooks.pyrt_network_list(root=kw["root"], runroot=kw["runroot"]) or []
    except Exception:  # noqa: BLE001 - the event is still journalled, without the driver
        listed = []
    drivers = {n.get("Name"): n.get("Driver", "") for n in listed if isinstance(n, dict)}
    return {name: drivers.get(name, "") for name in names}


def _journal(hooks, kw, record, names, action: str) -> None:
    """``connect`` or ``disconnect`` events of the container ``kw`` names, one per network
    of ``names`` (its id from ``record``)."""
    for name, driver in _drivers(hooks, kw, names).items():
        _emit(kw["root"], "network", action, _net_id(record, name),
              {"container": kw["container_id"], "name": name, "type": driver})


def network_setup(call, hooks, kw):
    result = call(**kw)
    _journal(hooks, kw, result, list(_networks(result)), "connect")
    return result


def network_connect(call, hooks, kw):
    result = call(**kw)
    if result is not None:
        _journal(hooks, kw, result, [kw["network"]], "connect")
    return result


def network_teardown(call, hooks, kw):
    result = call(**kw)
    record = kw.get("record")
    _journal(hooks, kw, record, list(_networks(record)), "disconnect")
    return result


def network_disconnect(call, hooks, kw):
    result = call(**kw)
    if result is not None:
        _journal(hooks, kw, kw.get("record"), [kw["network"]], "disconnect")
    return result


def image_fetch(call, hooks, kw):
    result = call(**kw)
    ref = kw.get("reference")
    if result is not None and getattr(ref, "transport", None) == "registry":
        text = str(ref)
        _emit(kw["store"].root, "image", "pull", text,
              {"name": getattr(ref, "name", "") or text})
    return result


OBSERVERS = {
    "pyrt_network_create": network_create,
    "pyrt_network_remove": network_remove,
    "pyrt_network_setup": network_setup,
    "pyrt_network_connect": network_connect,
    "pyrt_network_teardown": network_teardown,
    "pyrt_network_disconnect": network_disconnect,
    "pyrt_image_fetch": image_fetch,
}
