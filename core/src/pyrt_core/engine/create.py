"""Create: resolve the image, check the limits, reserve the name, make the record and the
writable layer.  Nothing runs yet (``start``/``run`` do that)."""
from __future__ import annotations

from ..errors import ImageError, NotFoundError, PyrtError, UsageError
from ..models import Container, ContainerConfig, FetchOptions, Image, ImageReference
from .common import fault, log_container_event, now


def resolve_image(engine, text: str, pull: str = "missing", platform: str | None = None) -> Image:
    """The image ``text`` names: the local store's (``pull`` missing or never), else what
    a plugin's ``pyrt_image_fetch`` brings (a registry, an OCI layout, an archive).

    ``platform`` (``--platform``): the image must be for it, as docker: a local image for
    another platform is pulled again for this one (the name then points at it), unless
    ``--pull never``, which refuses it with docker's message; so does an image a fetch
    brought for another platform."""
    ref = ImageReference.parse(text)
    if platform is not None:
        platform = check_platform(platform)
    if ref.transport == "registry" and pull != "always":
        try:
            local = engine.images.get(text)
        except NotFoundError:
            if pull == "never":
                raise NotFoundError(f"image {text} not found locally (--pull never)") from None
        else:
            if platform is None or image_platform_matches(local, platform):
                return local
            if pull == "never":
                raise ImageError(platform_mismatch(text, local, platform))
    settings = dict(engine.plugin_options, config_file=engine.settings.config_file)
    image = engine.pm.hook.pyrt_image_fetch(
        reference=ref, store=engine.images,
        options=FetchOptions(pull=pull, settings=settings, platform=platform))
    if image is None:
        raise NotFoundError(
            f"image {text} is not in the local store, and no plugin can fetch "
            f"{ref.transport} references (install pyrt-image-registry to pull from registries)")
    if platform is not None and not image_platform_matches(image, platform):
        raise ImageError(platform_mismatch(text, image, platform))
    return image


def check_platform(text: str) -> str:
    """``--platform``'s value, ``OS/ARCH[/VARIANT]`` (docker's), or UsageError (one line)."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts) or any(c.isspace() for c in text):
        raise UsageError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT] (linux/amd64)")
    return text.lower()


def image_platform(image: Image) -> str:
    return f"{image.os or 'linux'}/{image.architecture or 'unknown'}"


def image_platform_matches(image: Image, want: str) -> bool:
    """os and architecture as ``want`` names them (the store keeps no variant: an
    ``linux/arm/v7`` image matches ``linux/arm``'s variants)."""
    parts = want.split("/")
    return (image.os or "linux") == parts[0] and image.architecture == parts[1]


def platform_mismatch(text: str, image: Image, want: str) -> str:
    return (f"image with reference {text} was found but does not match the specified platform: "
            f"wanted {want}, actual: {image_platform(image)}")  # docker's words


def warn_foreign_platform(image: Image) -> None:
    """docker's warning for an image of another platform than the host's run without
    ``--platform`` (it runs, if the host can execute it)."""
    from ..images.platforms import host_platform

    host = host_platform()
    if image.architecture and not image_platform_matches(image, "/".join(host.split("/")[:2])):
        import sys

        sys.stderr.write(f"WARNING: The requested image's platform ({image_platform(image)}) does "
                         f"not match the detected host platform ({host}) and no specific "
                         "platform was requested\n")


def create(engine, config: ContainerConfig, name: str | None = None, pull: str = "missing",
           cid: str | None = None) -> Container:
    """A new container in state ``created``: its record (under a reserved name) and its
    writable layer on the image's top layer.  A failure leaves neither behind; a killed
    creator leaves a ``creating`` record that recovery removes."""
    if name:  # docker's rule, checked before anything exists ("" means a generated name)
        from ..containers.store import check_name

        name = check_name(name)
    else:
        name = None
    if config.runtime:  # --runtime: known and trusted before anything exists
        from ..monitor.ociruntime import is_pyrt, resolve

        if not is_pyrt(config.runtime):
            resolve(config.runtime, engine.settings.runtimes)
    if config.log_driver:  # journald must run (docker's check)
        from ..monitor.logdrivers import check_usable

        check_usable(config.log_driver)
    validate_resources(engine, config)
    default_pids_limit(engine, config)
    if config.ipc_mode or config.pid_mode or config.uts_mode or config.cgroupns_mode:
        from .namespaces import check as check_namespaces

        check_namespaces(engine, config, cid)  # container:NAME: a running one of the store
    networked = config.network not in ("none", "host") or bool(config.networking)
    if networked:  # the default network, container:NAME, a plugin for the networks named
        from .network import resolve as resolve_networking

        resolve_networking(engine, config)
    image = engine.resolve_image(config.image, pull, config.platform)
    if config.platform is None:
        warn_foreign_platform(image)
    from ..images.configcheck import check_image

    check_image(image)  # one an earlier pyrt stored unchecked: refused before anything exists
    from ..health.config import for_create

    config.healthcheck = for_create(engine, config.healthcheck, image)  # + the image's HEALTHCHECK
    if networked:
        from .network import validate as validate_networking

        validate_networking(engine, config, image)  # -P, the plugin's checks
    from .volumes import discard, prepare_mounts

    made = prepare_mounts(engine, config, image)  # volumes checked, then the new ones made
    try:
        return _create(engine, config, name, image, cid)
    except BaseException:
        discard(engine, made)
        raise


def _create(engine, config: ContainerConfig, name: str | None, image: Image,
            cid: str | None) -> Container:
    store = engine.containers
    cid = cid or store.new_id()
    lk = store.begin_create(cid)
    try:
        container = Container(
            id=cid, name=name or "", image_id=image.id, image_name=config.image, created=now(),
            storage_driver=engine.driver_name, config=config,
        )
        container.state.status = "creating"
        store.publish(container, lk)
        fault("create:published")
        layer_made = False
        try:
            container.name = store.reserve_name(name, cid)
            store.save(container, durable=False)
            parent = image.top_layer.split(":", 1)[-1] if image.top_layer else None
            with engine.storage_lock():
                engine.driver.create_rw(cid, parent, dict(config.storage_opts) or None)
            layer_made = True
            fault("create:layer")
            container.state.status = "created"
            store.save(container)
        except BaseException:
            if layer_made:
                with engine.storage_lock():
                    engine.driver.remove(cid)
            store.delete(container)
            raise
    finally:
        lk.release()
    log_container_event(engine, container, "create")
    engine.pm.hook.pyrt_container_created(container=container)
    return container


def validate_resources(engine, config: ContainerConfig) -> None:
    """Refuse limits the resource manager cannot honour before anything exists.  Device
    rules count: but for ``--privileged``, the bundle denies every device but the
    allowed ones (containers/spec), which only a resource manager enforces."""
    from ..runtime.config import DeviceRule
    from ..runtime.spec import resources_from_spec

    resources = resources_from_spec(config.resources)
    if not config.privileged:
        resources.devices.insert(0, DeviceRule(False))  # the bundle's "deny all" first
    engine.pm.hook.pyrt_resources_validate(resources=resources)


def default_pids_limit(engine, config: ContainerConfig) -> None:
    """The engine's default ``--pids-limit`` (``[containers] pids_limit``, podman's
    2048), for a container given none, where the resource plugin that takes it can
    apply it (the pids controller is there): a fork bomb then stops at the limit
    instead of taking every pid of the host.  Without such a plugin the container
    runs without a limit, as before (never refused for a default).  The default is
    the engine's: pyrt-runtime applies what a spec says and adds nothing."""
    limit = engine.settings.pids_limit
    if not limit or limit <= 0 or "pids" in (config.resources or {}):
        return  # --pids-limit given (-1 and 0 too: unlimited), or no default wanted
    from ..runtime.spec import resources_from_spec

    wanted = dict(config.resources or {})
    wanted["pids"] = {"limit": limit}
    try:
        manager = engine.pm.hook.pyrt_resources_validate(resources=resources_from_spec(wanted))
    except (PyrtError, OSError):
        return  # no resource plugin, cgroups off, or no pids controller here
    if manager not in (None, "none"):
        config.resources = wanted
