"""Volumes in the engine: the ``pyrt volume`` operations, and a container's mounts
through its life (docs/volumes.md).

* :func:`prepare_mounts` (``create``): ``--volumes-from`` copied, the image's
  ``VOLUME`` paths given anonymous volumes, every mount checked (duplicate targets, a
  ``--mount type=bind`` of a missing host path, an unknown driver) before anything
  exists, then the volumes that do not exist yet created (returned, so a failed create
  removes them again);
* :func:`mount_volumes` (each start, the rootfs mounted): the driver's ``mount`` for
  each volume (its host path), a ``-v`` bind's missing host path made, and the
  copy-up of the image's content into a new, empty volume
  (:mod:`pyrt_core.containers.copyup`, which reads the image through descriptors
  resolved inside the rootfs);
* :func:`unmount_volumes` (each end of a run, engine.teardown): the driver's
  ``unmount`` for each volume this run mounted;
* :func:`remove_anonymous` (``rm -v``, ``run --rm``);
* :func:`release_stale` (``pyrt system recover``): unmount what runs a crash ended
  left mounted.

Writers hold the volume store's lock (``<root>/volumes.lock``); the record's
``MountedBy`` says which container runs have a volume mounted.
"""
from __future__ import annotations

import os

from ..errors import ConflictError, NotFoundError, UsageError
from .common import event

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..models import Container, ContainerConfig, Image, VolumeSpec

DEFAULT_DRIVER = "local"


def store(engine):
    from ..volumes.store import VolumeStore

    return VolumeStore(engine.settings.root)


def drivers(engine) -> list[str]:
    out: list[str] = []
    for names in engine.pm.hook.pyrt_volume_drivers():
        out += [n for n in names or [] if n not in out]
    return out


def check_driver(engine, driver: str) -> str:
    driver = driver or DEFAULT_DRIVER
    if driver not in drivers(engine):
        raise NotFoundError(f"error looking up volume plugin {driver}: plugin {driver!r} "
                            "not found")
    return driver


def _now() -> str:
    from .common import now

    return now()


# -- pyrt volume ... ---------------------------------------------------------------------


def create_volume(engine, name: str | None, driver: str = "", options: dict | None = None,
                  labels: dict | None = None, anonymous: bool = False,
                  locked: bool = False) -> tuple[dict, bool]:
    """Create a volume (``name`` None: an anonymous one); an existing one of the same
    name is returned as it is (docker's ``volume create`` of an existing name), unless
    another driver is asked for.  Returns (record, made)."""
    from ..volumes.names import anonymous_name, check_name

    if name:
        check_name(name)
    driver = check_driver(engine, driver)
    vs = store(engine)
    lk = None if locked else vs.lock()
    if lk is not None:
        vs.ensure_dir()
        lk.acquire()
    try:
        name = name or anonymous_name()
        old = vs.load(name)
        if old is not None:
            if driver != old["Driver"] and (driver != DEFAULT_DRIVER or options):
                raise ConflictError(f"create {name}: volume name must be unique (it exists "
                                    f"with driver {old['Driver']})")
            return old, False
        path = vs.make_dir(name)
        from ..fsutil import remove_tree

        try:
            got = engine.pm.hook.pyrt_volume_create(driver=driver, name=name,
                                                    options=dict(options or {}),
                                                    root=engine.settings.root)
        except BaseException:
            remove_tree(path)  # the driver refused: it made nothing (the hook's contract)
            raise
        try:
            if got is None:
                raise NotFoundError(f"volume driver {driver} did not create {name}")
            rec = {"Name": name, "Driver": driver, "CreatedAt": _now(),
                   "Labels": dict(labels or {}), "Options": dict(options or {}),
                   "Scope": _scope(engine, driver), "Anonymous": anonymous, "MountedBy": []}
            vs.save(rec)
        except BaseException:
            try:
                engine.pm.hook.pyrt_volume_remove(driver=driver, name=name,
                                                  root=engine.settings.root)
            except Exception:  # noqa: BLE001 - undoing: the first error is the one to say
                pass
            remove_tree(path)
            raise
        event(engine, "volume", "create", name, {"driver": driver})
        return rec, True
    finally:
        if lk is not None:
            lk.release()


def _scope(engine, driver: str) -> str:
    caps = engine.pm.hook.pyrt_volume_capabilities(driver=driver) or {}
    return str(caps.get("Scope") or "local")


def users(engine, name: str) -> list[str]:
    """The ids of the containers (any state) whose mounts name the volume ``name``."""
    return [c.id for c in engine.containers.list()
            if any(v.type == "volume" and v.source == name for v in c.config.volumes)]


def remove_volume(engine, name: str, force: bool = False, locked: bool = False) -> None:
    """Remove a volume no container uses (docker's message otherwise: ``force`` does not
    remove one in use either, it only makes a missing volume no error)."""
    from ..volumes.names import check_name

    check_name(name, "remove")
    vs = store(engine)
    lk = None if locked else vs.lock()
    if lk is not None:
        vs.ensure_dir()
        lk.acquire()
    try:
        rec = vs.load(name)
        if rec is None:
            if force:
                return
            raise NotFoundError(f"get {name}: no such volume")
        using = users(engine, name)
        if using or rec.get("MountedBy"):
            ids = using or rec.get("MountedBy")
            raise ConflictError(f"remove {name}: volume is in use - "
                                f"[{', '.join(ids)}]")
        engine.pm.hook.pyrt_volume_remove(driver=rec["Driver"], name=name,
                                          root=engine.settings.root)
        vs.remove_dir(name)
        event(engine, "volume", "destroy", name, {"driver": rec["Driver"]})
    finally:
        if lk is not None:
            lk.release()


def inspect_volume(engine, rec: dict) -> dict:
    """docker's shape: CreatedAt, Driver, Labels, Mountpoint, Name, Options, Scope
    (Status when the driver reports one)."""
    got = engine.pm.hook.pyrt_volume_get(driver=rec["Driver"], name=rec["Name"],
                                         root=engine.settings.root) or {}
    out = {"CreatedAt": rec.get("CreatedAt", ""), "Driver": rec["Driver"],
           "Labels": rec.get("Labels") or {}, "Mountpoint": got.get("Mountpoint", ""),
           "Name": rec["Name"], "Options": rec.get("Options") or {},
           "Scope": rec.get("Scope", "local")}
    if got.get("Status"):
        out["Status"] = got["Status"]
    return out


def prune(engine, all_volumes: bool = False, match=None) -> list[str]:
    """Remove unused volumes: anonymous ones (docker 23+), every unused one with
    ``all_volumes``; ``match(created, labels)``: only those it accepts (``--filter
    label``).  Returns the names removed."""
    vs = store(engine)
    vs.ensure_dir()
    removed = []
    with vs.lock():
        used = {v.source for c in engine.containers.list() for v in c.config.volumes
                if v.type == "volume"}
        for rec in vs.list():
            if rec["Name"] in used or rec.get("MountedBy"):
                continue
            if not (all_volumes or rec.get("Anonymous")):
                continue
            if match is not None and not match(rec.get("CreatedAt"), rec.get("Labels")):
                continue
            remove_volume(engine, rec["Name"], locked=True)
            removed.append(rec["Name"])
    return removed


# -- a container's mounts ------------------------------------------------------------------


def _norm(path: str) -> str:
    import posixpath

    return posixpath.normpath("/" + path.lstrip("/")) if path else path


def prepare_mounts(engine, config: ContainerConfig, image: Image) -> list[str]:
    """Resolve and check ``config``'s mounts (``create``, before the record exists), then
    create the volumes that do not exist; returns the names created."""
    from ..records import evolve

    specs: list[VolumeSpec] = [evolve(v, destination=_norm(v.destination))
                               for v in config.volumes]
    # --volumes-from: the source container's binds and volumes, at its paths
    for ref in config.volumes_from:
        cref, _, mode = ref.partition(":")
        if mode not in ("", "ro", "rw"):
            raise UsageError(f"invalid --volumes-from {ref!r}: the mode is ro or rw")
        try:
            src = engine.containers.get(cref)
        except NotFoundError:
            raise NotFoundError(f"no such container: {cref}") from None
        for v in src.config.volumes:
            if v.type == "tmpfs" or any(s.destination == v.destination for s in specs):
                continue
            specs.append(evolve(v, readonly=(mode == "ro") if mode else v.readonly,
                                      anonymous=False, create_source=False))
    seen: set[str] = set()
    for v in specs:
        if v.destination in seen:
            raise UsageError(f"Duplicate mount point: {v.destination}")
        seen.add(v.destination)
        if v.destination == "/":
            raise UsageError("invalid mount target \"/\": the root cannot be a mount")
    # the image's VOLUME paths not mounted otherwise: anonymous volumes
    for path in image.config.volumes:
        p = _norm(path)
        if p and p != "/" and p not in seen:
            specs.append(_volume_spec(p))
            seen.add(p)
    for v in specs:
        if v.type == "bind" and not v.create_source and not os.path.exists(v.source):
            raise UsageError(f"invalid mount config for type \"bind\": bind source path does "
                             f"not exist: {v.source}")
        if v.type == "volume":
            check_driver(engine, v.driver)
            if v.source:
                rec = store(engine).load(v.source)
                if rec is not None and v.driver and v.driver != rec["Driver"]:
                    raise ConflictError(f"volume {v.source} exists with driver "
                                        f"{rec['Driver']}, not {v.driver}")
                if rec is not None:
                    check_driver(engine, rec["Driver"])  # its plugin still there
    # create what does not exist (names filled in for anonymous ones)
    from ..volumes.names import anonymous_name

    made: list[str] = []
    out: list[VolumeSpec] = []
    vs = store(engine)
    vs.ensure_dir()
    try:
        with vs.lock():
            for v in specs:
                if v.type == "volume":
                    name = v.source or anonymous_name()
                    rec, new = create_volume(engine, name, v.driver, v.driver_opts,
                                             anonymous=v.anonymous, locked=True)
                    if new:
                        made.append(name)
                    v = evolve(v, source=name, driver=rec["Driver"])
                out.append(v)
    except BaseException:
        discard(engine, made)
        raise
    config.volumes = out
    return made


def _volume_spec(path: str) -> VolumeSpec:
    from ..models import VolumeSpec

    return VolumeSpec(source="", destination=path, type="volume", anonymous=True)


def discard(engine, names: list[str]) -> None:
    """Remove volumes a failed create made."""
    for name in names:
        try:
            remove_volume(engine, name, force=True)
        except Exception:  # noqa: BLE001 - undoing a failed create: keep going
            pass


def mount_volumes(engine, c: Container, rootfs: str) -> dict[int, str]:
    """Before the bundle is written (each start): the host path of each volume mount of
    ``c`` (by its index in ``c.config.volumes``), mounted by its driver for this run and,
    when new and empty, filled from the image; a ``-v`` bind's missing host path made."""
    sources: dict[int, str] = {}
    vols = c.config.volumes
    if not vols:
        return sources
    vs = store(engine)
    for i, v in enumerate(vols):
        if v.type == "bind" and v.create_source and not os.path.lexists(v.source):
            os.makedirs(v.source, 0o755, exist_ok=True)
    if not any(v.type == "volume" for v in vols):
        return sources
    vs.ensure_dir()
    with vs.lock():
        for i, v in enumerate(vols):
            if v.type != "volume":
                continue
            rec = vs.load(v.source)
            if rec is None:  # removed meanwhile (it was not in use): made again, as docker
                rec, _ = create_volume(engine, v.source, v.driver, v.driver_opts,
                                       anonymous=v.anonymous, locked=True)
            path = engine.pm.hook.pyrt_volume_mount(driver=rec["Driver"], name=v.source,
                                                    container_id=c.id,
                                                    root=engine.settings.root)
            if not path:
                raise NotFoundError(f"volume driver {rec['Driver']} did not mount {v.source}")
            if c.id not in rec["MountedBy"]:
                rec["MountedBy"].append(c.id)
                vs.save(rec)
            sources[i] = path
            event(engine, "volume", "mount", v.source,
                  {"container": c.id, "destination": v.destination, "driver": rec["Driver"],
                   "propagation": v.propagation or "", "read/write": str(not v.readonly).lower()})
            if not v.nocopy and not rec.get("Populated"):
                from ..containers.copyup import copy_up

                copy_up(rootfs, v.destination, path)
                rec["Populated"] = True
                vs.save(rec)
    return sources


def unmount_volumes(engine, c: Container) -> list[str]:
    """The run of ``c`` is over: the driver's ``unmount`` for each volume it mounted.
    Returns the errors (the caller records them; they never stop the clean-up)."""
    if not any(v.type == "volume" for v in c.config.volumes):
        return []
    vs = store(engine)
    errors = []
    if not os.path.isdir(vs.dir):
        return []
    with vs.lock():
        for name in dict.fromkeys(v.source for v in c.config.volumes if v.type == "volume"):
            try:
                release(engine, vs, name, c.id)
            except Exception as e:  # noqa: BLE001
                errors.append(f"volume {name}: {e}")
    return errors


def release(engine, vs, name: str, cid: str) -> bool:
    rec = vs.load(name)
    if rec is None or cid not in rec.get("MountedBy", []):
        return False
    engine.pm.hook.pyrt_volume_unmount(driver=rec["Driver"], name=name, container_id=cid,
                                       root=engine.settings.root)
    rec["MountedBy"] = [x for x in rec["MountedBy"] if x != cid]
    vs.save(rec)
    event(engine, "volume", "unmount", name, {"container": cid, "driver": rec["Driver"]})
    return True


def remove_anonymous(engine, c: Container) -> None:
    """``rm -v`` / ``run --rm``: the container's anonymous volumes that no other container
    uses (docker keeps those)."""
    names = [v.source for v in c.config.volumes if v.type == "volume" and v.anonymous]
    for name in names:
        try:
            remove_volume(engine, name, force=True)
        except ConflictError:
            pass


def release_stale(engine, running: set[str]) -> list[str]:
    """Recovery: unmount the volumes held for container runs that are over (the run's
    pyrt or monitor died before its clean-up, or the host rebooted)."""
    vs = store(engine)
    if not os.path.isdir(vs.dir):
        return []
    actions = []
    with vs.lock():
        for rec in vs.list():
            for cid in list(rec.get("MountedBy") or []):
                if cid in running:
                    continue
                try:
                    release(engine, vs, rec["Name"], cid)
                    actions.append(f"released volume {rec['Name']} of {cid[:12]}")
                except Exception as e:  # noqa: BLE001
                    actions.append(f"releasing volume {rec['Name']} of {cid[:12]} failed: {e}")
    return actions


def inspect_mounts(engine, c: Container) -> list[dict]:
    """A container's mounts in docker's ``inspect`` shape (``Mounts``): Type, Name (a
    volume's), Source (the host path; a volume's ``_data`` for the local driver),
    Destination, Driver, Mode, RW, Propagation."""
    out = []
    for v in c.config.volumes:
        if getattr(v, "tmpfs_flag", False):
            continue  # docker lists --tmpfs in HostConfig.Tmpfs only
        m: dict = {"Type": v.type}
        if v.type == "volume":
            src = ""
            if v.driver in ("", DEFAULT_DRIVER):
                src = os.path.join(engine.settings.root, "volumes", v.source, "_data")
            m.update(Name=v.source, Source=src, Destination=v.destination,
                     Driver=v.driver or DEFAULT_DRIVER, Mode="" if not v.readonly else "ro")
        else:
            m.update(Source=v.source, Destination=v.destination,
                     Mode="ro" if v.readonly else "")
        m["RW"] = not v.readonly
        m["Propagation"] = v.propagation or ("rprivate" if v.type == "bind" else "")
        out.append(m)
    return out
