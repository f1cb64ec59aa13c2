"""Release a container's cgroups from its state record, without the plugin manager.

``pyrt_resources_release`` (:mod:`.plugin`) calls :func:`release`; so does the
runtime's ``delete`` directly, through this distribution's
``pyrt.resources.release`` entry points (one per manager name this plugin
records): building the plugin manager (pluggy and every plugin) would cost
``delete`` several times its own work.  Nothing here imports attrs or pluggy.
"""
from __future__ import annotations


def release(container_id: str, record: dict) -> bool:
    """Kill what is left in the container's cgroup and remove it (and the parents
    this manager created, when empty)."""
    from .manager import from_record

    from_record(record).destroy(kill=True)
    return True
