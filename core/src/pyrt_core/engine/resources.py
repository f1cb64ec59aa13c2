"""Resource control of a running container through the resource plugin's hooks: pause
and unpause (the freezer), statistics, and changed limits (``update``)."""
from __future__ import annotations

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..containers.record import ContainerRecord
    from ..models import Container


def running_for_resources(engine, ref: str | Container, what: str) -> Container:
    """The container ``ref`` names, refused unless it runs (``what``: the message's verb)."""
    from ..errors import ConflictError

    c = engine.containers.get(ref) if isinstance(ref, str) else ref
    if c.state.status not in ("running", "starting") or not engine.is_running(c):
        raise ConflictError(f"container {c.name} is not running: cannot {what} it")
    return c


def pause(engine, ref: str | Container, paused: bool = True) -> Container:
    """Freeze (``paused=True``) or thaw every process of a running container."""
    from ..errors import ConflictError

    what = "pause" if paused else "unpause"
    c = running_for_resources(engine, ref, what)
    with engine.lock(c.id):
        c = engine.reload(c.id)
        if c.state.paused == paused:
            raise ConflictError(f"container {c.name} is {'already' if paused else 'not'} paused")
        if c.config.runtime:  # --runtime: its own pause/resume (its own cgroup)
            from .teardown import other_runtime

            other = other_runtime(engine, c)
            if other is not None:
                (other.pause if paused else other.resume)(c.id)
                c.state.paused = paused
                engine.containers.save(c, durable=False)
                return c
        engine.pm.hook.pyrt_resources_freeze(container_id=c.id, record=c.state.resources,
                                             frozen=paused)
        c.state.paused = paused
        engine.containers.save(c, durable=False)
    from .common import log_container_event

    log_container_event(engine, c, what)
    return c


def stats(engine, ref: str | Container) -> dict:
    """The resource plugin's statistics of a running container ({} when it has none)."""
    c = running_for_resources(engine, ref, "read the statistics of")
    return engine.pm.hook.pyrt_resources_stats(container_id=c.id, record=c.state.resources) or {}


def update(engine, ref: str | Container, resources: dict) -> Container:
    """Change the limits of a running container (``resources``: OCI linux.resources);
    the new values are kept in its config for later starts."""
    from ..runtime.spec import resources_from_spec

    c = running_for_resources(engine, ref, "update")
    with engine.lock(c.id):
        c = engine.reload(c.id)
        merged = dict(c.config.resources)
        for key, value in resources.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        engine.pm.hook.pyrt_resources_update(container_id=c.id, record=c.state.resources,
                                             resources=resources_from_spec(merged))
        c.config.resources = merged
        engine.containers.save(c)
    return c


def thaw_if_paused(engine, c: Container | ContainerRecord) -> None:
    """A frozen container cannot act on signals: thaw it before stop/kill (docker does).
    The caller holds the container's lock."""
    if c.state.paused:
        try:
            from .teardown import other_runtime

            other = other_runtime(engine, c) if c.config.runtime else None
            if other is not None:
                other.resume(c.id)
            else:
                engine.pm.hook.pyrt_resources_freeze(container_id=c.id, record=c.state.resources,
                                                     frozen=False)
        except Exception:
            pass
        c.state.paused = False
        engine.containers.save(c, durable=False)
