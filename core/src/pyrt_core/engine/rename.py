"""Rename a container (``pyrt rename OLD NEW``), running or not, as docker does: the new
name must be valid and free, and differ from the current one.

The new name is claimed first (``symlink(2)`` in the names directory: atomic, so two
renames or a create racing for one name cannot both win), the record is saved under the
container's lock, and only then is the old name released; a failure in between gives the
new name back.  Nothing a running container uses holds its name (the monitor's exit
command names it by id), so a running container is renamed in place.
"""
from __future__ import annotations

from ..errors import ConflictError, UsageError


def rename(engine, ref: str, new: str) -> str:
    """Rename the container ``ref`` to ``new``; return its id."""
    from ..containers.store import check_name

    if not new:
        raise UsageError("Error when allocating new name: Invalid container name: the new name "
                         "must not be empty")
    new = check_name(new)
    cid = engine.containers.get(ref).id
    with engine.lock(cid):
        c = engine.reload(cid)
        if c.name == new:
            raise ConflictError("Renaming a container with the same name as its current name")
        if c.state.status == "removing":
            raise ConflictError(f"cannot rename container {c.name}: it is being removed")
        engine.containers.reserve_name(new, cid)
        old = c.name
        try:
            c.name = new
            engine.containers.save(c)
        except BaseException:
            engine.containers.release_name(new, cid)
            raise
        engine.containers.release_name(old, cid)
    from .common import log_container_event

    log_container_event(engine, c, "rename", oldName=old)
    return cid
