"""Release a container's cgroups from its state record.

``pyrt_resources_release`` (:mod:`.plugin`) calls :func:`release`, on the
runtime's ``delete`` through pyrt_core.hookcall (no pluggy): nothing here
imports attrs or pluggy.
"""
from __future__ import annotations


def release(container_id: str, record: dict) -> bool:
    """Kill what is left in the container's cgroup and remove it (and the parents
    this manager created, when empty)."""
    from .manager import from_record

    from_record(record).destroy(kill=True)
    return True
