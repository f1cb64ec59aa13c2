"""Every hook a pyrt plugin can implement, in one place.

A plugin is a module (or object) registered with the plugin manager
(:mod:`pyrt_core.plugins`) that carries functions marked with
:data:`hookimpl` and named like the specs below.  Plugins are found through
the ``pyrt.plugins`` entry-point group; the core's own built-in behaviour is
registered the same way, as ordinary plugins.

Storage drivers are the one capability chosen by *name* rather than by
taking part: they are classes in the ``pyrt.storage.drivers`` entry-point
group, loaded with stevedore (see :mod:`pyrt_core.storage.select`).  The
storage hooks below let every plugin observe and extend what the chosen
driver does.

Conventions, as in pytest:

* ``firstresult=True`` hooks stop at the first implementation that returns
  something other than ``None``; "not mine" is said by returning ``None``.
* Other hooks call every implementation and return the list of non-``None``
  results (order: last registered first, modified by ``tryfirst`` /
  ``trylast``).
* An implementation may accept fewer arguments than its spec, so specs can
  grow without breaking plugins.
* Mechanisms receive resolved, validated configuration objects
  (:mod:`pyrt_core.models`, :mod:`pyrt_core.runtime.config`), never raw JSON.
* Every spec is annotated (types imported for type checkers only, so loading this
  module costs nothing more); an implementation repeats the annotations of the
  parameters it accepts and the return type, with the types from :mod:`pyrt_core.api`.
  ``tox -e typecheck`` runs mypy on the specs and every plugin's implementations, and
  tests/unit/test_hookspec_signatures.py fails when an implementation drifts from its spec.
  A resource ``record`` is the JSON-compatible mapping ``pyrt_resources_apply``
  returned, read back from the container's state (``None`` when there is none).

Hooks are called through :mod:`pyrt_core.hookcall` (from the plans recorded by the
last full load, pluggy as the fallback; docs/architecture.md, "The hot path"), so an
implementation must be a module-level function of the registered plugin module to be
called without pluggy; anything else still works, through pluggy.

Besides hooks, a plugin *declares* (read without calling it):

* ``WARM_UP``, a module attribute of the plugin module: ``{hook name: (module, ...)}``,
  the modules its implementation of that hook imports on first call.  A caller with
  time to spare imports them ahead (:func:`pyrt_core.hookcall.warm_up`): the runtime's
  ``create`` while the engine writes the bundle (for ``pyrt_resources_validate``,
  ``_apply`` and ``pyrt_isolation_create``), the engine while ``create`` runs (for
  ``pyrt_isolation_start``).  Keep the plugin module itself cheap to import.
* configuration sections, as entry points of the ``pyrt.config`` group: the entry's
  name is the config file's table (``[cgroups]``), its value a mapping of the table's
  keys to the environment variables that carry them to the plugin (``{"manager":
  "PYRT_CGROUP_MANAGER"}``), in every pyrt process and across conmon to the runtime; the
  environment wins over the file.  :func:`pyrt_core.config.load_settings` reads them.
"""
from __future__ import annotations

#: True for type checkers only (mypy treats any ``TYPE_CHECKING`` so): the types the specs
#: name are imported for them alone, since importing typing, the models (pyrt_core.models) or
#: the image store would cost every process that loads a plugin, the OCI runtime's too
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .images.store import ImageStore
    from .models import Container, FetchOptions, Image, ImageReference
    from .netmodel import ContainerNetworking, NetworkCreate
    from .runtime.config import ProcessConfig, Resources, RuntimeConfig
    from .runtime.process import ContainerProcess
    from .storage.driver import StorageDriver

PROJECT = "pyrt"


class _Marker:
    """pluggy's ``HookspecMarker`` / ``HookimplMarker`` for ``PROJECT``, without importing
    pluggy: a marker only sets the attribute ``pyrt_spec`` / ``pyrt_impl`` (a dict of
    options) on the function, which pluggy's ``PluginManager`` reads when it registers
    specs and plugins.  Importing pluggy costs ~20 ms here (it loads ``inspect``), and the
    OCI runtime imports plugin modules, hence this module, on every ``create``
    (:mod:`pyrt_core.hookcall`).  tests/unit/test_hookcall.py checks that the options
    are exactly the ones pluggy's own markers set."""

    def __init__(self, kind: str, defaults: dict[str, object]):
        self._kind = kind
        self._attr = f"{PROJECT}_{kind}"
        self._defaults = defaults

    def __call__(self, function: Callable[..., object] | None = None, **options: object) -> Any:
        # Any: the function itself with a function, a decorator without (mypy still checks
        # the decorated function's body against its annotations)
        unknown = set(options) - set(self._defaults)
        if unknown:
            raise TypeError(f"unknown hook{self._kind} option(s): {', '.join(sorted(unknown))}")
        opts = dict(self._defaults, **options)
        if opts.get("historic") and opts.get("firstresult"):
            raise ValueError("cannot have a historic firstresult hook")

        def mark(func: Callable[..., object]) -> Callable[..., object]:
            setattr(func, self._attr, dict(opts))
            return func

        return mark if function is None else mark(function)


hookspec = _Marker("spec", {"firstresult": False, "historic": False, "warn_on_impl": None,
                            "warn_on_impl_args": None})
hookimpl = _Marker("impl", {"wrapper": False, "hookwrapper": False, "optionalhook": False,
                            "tryfirst": False, "trylast": False, "specname": None})


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------


@hookspec
def pyrt_info() -> dict[str, dict[str, object]] | None:
    """Describe what this plugin provides, for ``pyrt info``.

    Receives nothing.  Called by ``pyrt info`` (and by the test suite) on
    every registered plugin.

    Return a mapping ``{section name: {key: value}}`` of plain strings,
    numbers, booleans or lists (for example the kernel features the plugin
    found), or ``None`` to add nothing.  All results are merged, sections
    from later plugins beside earlier ones.
    """


# --------------------------------------------------------------------------
# Image fetch
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def pyrt_image_fetch(reference: ImageReference, store: ImageStore,
                     options: FetchOptions) -> Image | None:
    """Bring an image that is not in the local store into it.

    Receives ``reference`` (a :class:`pyrt_core.models.ImageReference`
    already parsed), ``store`` (the :class:`pyrt_core.images.store.ImageStore`
    to import into) and ``options`` (a :class:`pyrt_core.models.FetchOptions`:
    platform, quiet, pull policy, plugin-specific settings).

    Called by ``pyrt pull`` and by ``pyrt run``/``create`` when the image is
    missing.  The first plugin that recognises the reference's transport
    fetches it and returns the stored :class:`pyrt_core.models.Image`;
    plugins that do not handle the reference return ``None``.  When every
    plugin returns ``None`` the engine says which plugin would be needed.
    Errors are raised as :class:`pyrt_core.errors.ImageError`; a failed fetch
    must leave the store as it was.
    """


@hookspec(firstresult=True)
def pyrt_image_push(image: Image, reference: ImageReference, store: ImageStore,
                    options: FetchOptions) -> str | None:
    """Send an image from the local store to where ``reference`` points.

    Receives ``image`` (the stored :class:`pyrt_core.models.Image`),
    ``reference`` (a parsed :class:`pyrt_core.models.ImageReference`: the
    destination, e.g. ``registry.example:5000/team/app:1.2``), ``store``
    (the :class:`pyrt_core.images.store.ImageStore` holding the image) and
    ``options`` (a :class:`pyrt_core.models.FetchOptions`: quiet and
    plugin-specific settings such as credentials or TLS).

    Called by ``pyrt push``.  The first plugin that handles the
    reference's transport pushes the image and returns the digest of the
    manifest it wrote (``sha256:...``); plugins that do not handle the
    reference return ``None``.  When every plugin returns ``None`` the
    command says which plugin would be needed.  Errors are raised as
    :class:`pyrt_core.errors.ImageError`; the local store is never changed
    except for recording the pushed digest.
    """


# --------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------


@hookspec
def pyrt_storage_driver_ready(name: str, driver: StorageDriver) -> None:
    """A storage driver has been selected and initialised.

    Receives the driver's entry-point ``name`` and the initialised
    :class:`pyrt_core.storage.driver.StorageDriver` instance.  Called once
    per engine process by the driver selector, after the driver's host
    probe succeeded.  Return values are ignored; a plugin that raises here
    aborts the command (use it to refuse a driver a site does not allow).
    """


@hookspec
def pyrt_storage_rootfs_mounted(container: Container, rootfs: str) -> None:
    """A container's root filesystem is mounted and about to be used.

    Receives the :class:`pyrt_core.models.Container` record as ``container``
    and ``rootfs``, the path of the mounted root filesystem (from the
    driver's ``get``).  Called by the
    engine before the OCI bundle is written, each time the container is
    started.  Plugins may add files to the writable layer (for example
    site certificates).  Return values are ignored.
    """


# --------------------------------------------------------------------------
# Isolation
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def pyrt_isolation_create(config: RuntimeConfig, stdio: tuple[int | str, ...],
                          place_process: Callable[..., dict[str, object] | None],
                          join_resources: Callable[[dict[str, object]], None] | None,
                          ) -> ContainerProcess | None:
    """Create the container's init process in its namespaces, stopped before exec.

    Receives ``config`` (a resolved
    :class:`pyrt_core.runtime.config.RuntimeConfig`: namespaces, id maps,
    root, mounts, devices, process), ``stdio`` (a tuple of three file
    descriptors for the process's stdin, stdout and stderr; an entry may be
    :data:`pyrt_core.runtime.config.NULL_STDIO`, the container's own
    /dev/null, which the process opens inside the container),
    ``place_process`` and ``join_resources``.

    ``place_process(pid, self_join=False)`` takes the init process's host pid;
    the implementation must call it exactly once, after the process exists and
    before it unshares its cgroup namespace or runs any user code, so that
    resource control can place it in its cgroups.  With ``self_join=True`` the
    implementation offers to have the process move itself: ``place_process``
    then returns None (placed already) or a JSON-compatible mapping, which the
    implementation hands to the init process and passes, *in that process*
    and before anything else, to ``join_resources(mapping)`` (it raises when
    the process cannot join).  On cgroup v1 a process that moves itself skips
    the kernel's global lock and its RCU grace period (measured 0.4 ms against
    8-20 ms for a move by another process).  An implementation that does not
    accept ``join_resources`` calls ``place_process(pid)`` and is placed from
    outside.

    Called by the runtime (:mod:`pyrt_core.runtime.executor`) for ``create``
    and ``run``.  The first implementation returns a
    :class:`pyrt_core.runtime.process.ContainerProcess` whose root
    filesystem, mounts and identity are fully set up and which waits for
    ``start()`` to exec the user's process.  Setup failures raise
    :class:`pyrt_core.errors.RuntimeError_` and leave no process behind.
    """


@hookspec(firstresult=True)
def pyrt_isolation_start(container_id: str, fifo: str, status_fifo: str) -> bool | None:
    """Start a created container whose init waits on a FIFO, from another process.

    Receives the ``container_id``, ``fifo`` (the path of the FIFO the container's process
    was handed by ``ContainerProcess.detach_start(fifo, status_fifo)`` in the process that
    created it) and ``status_fifo`` (the FIFO it reports a failed exec on).

    Called by the runtime's ``start`` (``pyrt-runtime start``, and the engine's start),
    a process other than the ``create`` that made the container.  The runtime keeps, in
    the container's state, the plan of this hook found at ``create`` and calls that, so
    the isolation plugin that created a container starts it.  The first implementation
    lets the process exec and returns ``True`` once the exec is done; a failed exec
    raises :class:`pyrt_core.errors.ExecError` (exit code 127 when the command is not
    found, 126 when it cannot be run), another failure
    :class:`pyrt_core.errors.RuntimeError_`.  Implementations return ``None`` for a
    container they did not create.
    """


@hookspec(firstresult=True)
def pyrt_isolation_join(pid: int, namespaces: list[str], process: ProcessConfig,
                        stdio: tuple[int | str, ...]) -> ContainerProcess | None:
    """Start a new process inside an existing container's namespaces (setns).

    Receives the host ``pid`` of a process whose namespaces to join,
    ``namespaces`` (a list of namespace type names, in runtime-spec words:
    ``"mount"``, ``"pid"``, ``"network"``, ...), ``process`` (a resolved
    :class:`pyrt_core.runtime.config.ProcessConfig`) and ``stdio``.

    Called by ``pyrt exec`` and the runtime's ``exec``.  The first
    implementation returns a started
    :class:`pyrt_core.runtime.process.ContainerProcess`.
    """


@hookspec(firstresult=True)
def pyrt_isolation_unshare(namespaces: list[str]) -> bool | None:
    """Move the calling process into new namespaces (unshare).

    Receives ``namespaces``, a list of namespace type names.  Called by tools and tests that
    need the current process isolated (the talk's third interface).  The
    first implementation does the work and returns ``True``.
    """


@hookspec
def pyrt_runtime_features() -> dict[str, object] | None:
    """Report what this plugin makes the OCI runtime implement, for ``pyrt-runtime features``.

    Receives nothing.  Called by ``pyrt-runtime features`` on every enabled plugin (a
    disabled plugin is not asked, so what it would add is not reported).

    Return a mapping of keys of the ``linux`` object of runc's features document
    (``namespaces``, ``capabilities``, ``cgroup``, ``seccomp``, ...) to their values,
    or ``None``.  The core starts from "nothing implemented" (no namespaces, no
    capabilities, cgroup v1/v2 false, seccomp disabled) and merges the results, the
    first implementation pluggy calls winning: a value that is a mapping updates the
    core's mapping key by key (``{"cgroup": {"v1": True}}``), any other value replaces it.
    """


# --------------------------------------------------------------------------
# Resource control
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def pyrt_resources_validate(resources: Resources) -> str | None:
    """Check resource limits before anything is created.

    Receives ``resources``, a :class:`pyrt_core.runtime.config.Resources`.
    Called by the engine and the runtime before a container is created.  The first
    implementation that takes responsibility returns the name of the cgroup
    manager that will apply the limits (``"cgroupfs-v1"``, ``"cgroupfs-v2"``,
    ``"none"``, ...); it raises :class:`pyrt_core.errors.UsageError` for
    values it cannot honour.  The core's built-in ``none`` manager runs last
    and refuses any non-empty limit.
    """


@hookspec(firstresult=True)
def pyrt_resources_apply(container_id: str, pid: int, resources: Resources,
                         cgroups_path: str | None, self_join: bool) -> dict[str, object] | None:
    """Place a container's init process under resource control.

    Receives the ``container_id``, the init process's host ``pid``, the
    ``resources`` (a :class:`pyrt_core.runtime.config.Resources`), the
    requested ``cgroups_path`` (may be ``None``) and ``self_join``.  Called by
    the runtime from the ``place_process`` callback of
    :func:`pyrt_isolation_create`.  The first implementation returns a
    mapping to record in the container's state (at least ``{"manager":
    NAME}``, plus whatever it needs to release it).

    ``self_join`` True: the process will call :func:`pyrt_resources_join` with
    this mapping before it runs anything of the container.  An implementation
    that prefers that creates and configures the groups without moving
    ``pid`` and says so with ``"self_join": True`` in the mapping; otherwise it
    places ``pid`` itself, as with ``self_join`` False.
    """


@hookspec(firstresult=True)
def pyrt_resources_join(container_id: str, record: dict[str, object] | None) -> bool | None:
    """Move the calling process into the groups ``record`` describes.

    Receives the ``container_id`` and ``record``, the mapping
    :func:`pyrt_resources_apply` returned with ``"self_join": True``.  Called by
    the runtime in the container's init process itself (the ``join_resources``
    callback of :func:`pyrt_isolation_create`), before that process unshares its
    cgroup namespace or runs anything of the container.  The first implementation whose manager
    matches ``record["manager"]`` moves the process and returns ``True``; it
    raises :class:`pyrt_core.errors.PyrtError` when it cannot.
    """


@hookspec(firstresult=True)
def pyrt_resources_release(container_id: str, record: dict[str, object] | None) -> bool | None:
    """Remove a container's resource control after its processes are gone.

    Receives the ``container_id`` and ``record``, the mapping that
    :func:`pyrt_resources_apply` returned (read back from state, so the
    same manager is used).  Called by the runtime on delete and by recovery.
    The first implementation whose manager matches ``record["manager"]``
    does the work and returns ``True``; others return ``None``.
    """


@hookspec(firstresult=True)
def pyrt_resources_oom_killed(container_id: str, record: dict[str, object] | None) -> bool | None:
    """Whether the kernel's OOM killer killed a process of the container.

    Receives the ``container_id`` and ``record``, the mapping that
    :func:`pyrt_resources_apply` returned.  Called by the runtime after the
    container's init process was reaped and before
    :func:`pyrt_resources_release`.  The first implementation whose manager
    matches ``record["manager"]`` returns ``True`` or ``False``; others
    return ``None``.
    """


@hookspec(firstresult=True)
def pyrt_resources_freeze(container_id: str, record: dict[str, object] | None,
                          frozen: bool) -> bool | None:
    """Pause (freeze) or resume (thaw) every process of a running container.

    Receives the ``container_id``, ``record`` (what
    :func:`pyrt_resources_apply` returned) and ``frozen`` (``True`` to
    pause, ``False`` to resume).  Called by ``pyrt pause`` / ``unpause``.
    The first implementation whose manager matches ``record["manager"]``
    returns ``True`` once the state reads back; others return ``None``.
    """


@hookspec(firstresult=True)
def pyrt_resources_stats(container_id: str, record: dict[str, object] | None,
                         ) -> dict[str, dict[str, object]] | None:
    """Usage figures of a running container.

    Receives the ``container_id`` and ``record`` (what
    :func:`pyrt_resources_apply` returned).  Called by ``pyrt stats``.  The
    first implementation whose manager matches ``record["manager"]`` returns
    a mapping with the sections ``cpu`` (``usage_ns``), ``memory``
    (``usage``, ``limit``), ``pids`` (``current``, ``limit``) and ``blkio``
    (``read_bytes``, ``write_bytes``) where the host has the controller;
    others return ``None``.
    """


@hookspec(firstresult=True)
def pyrt_resources_update(container_id: str, record: dict[str, object] | None,
                          resources: Resources) -> bool | None:
    """Change the limits of a running container.

    Receives the ``container_id``, ``record`` (what
    :func:`pyrt_resources_apply` returned) and the new ``resources`` (a
    :class:`pyrt_core.runtime.config.Resources`).  Called by ``pyrt
    update``.  The first implementation whose manager matches
    ``record["manager"]`` validates and writes them and returns ``True``;
    it raises :class:`pyrt_core.errors.UsageError` for values it cannot
    honour.  Others return ``None``.
    """


# --------------------------------------------------------------------------
# Networking (docs/networking.md)
# --------------------------------------------------------------------------
#
# One network plugin serves a host at a time (pyrt-network: Linux bridges, veth
# pairs, nftables; pyrt-network-cni: CNI configurations): the one the operator names
# in ``[network] backend`` / ``PYRT_NETWORK_BACKEND``, else the first installed.  An
# implementation whose backend is not the chosen one returns ``None`` from every hook
# below (``backend`` is that name).  The core owns the container's network namespace:
# it creates it (a bind mount of a fresh one under ``<runroot>/netns/<id>``), hands
# its path to ``pyrt_network_setup``, names it in the bundle's ``linux.namespaces``, and
# removes it after ``pyrt_network_teardown``.  ``root`` is pyrt's store (the plugin
# keeps its state under ``<root>/networks/``), ``runroot`` its run directory (for
# processes such as a DNS resolver, and what must not survive a reboot).
#
# A network record is the JSON-compatible mapping ``pyrt_network_setup`` returned,
# kept in the container's state and handed back to ``teardown``/``connect``/
# ``disconnect``/``inspect``: ``{"networks": {NAME: {"IPAddress", "IPPrefixLen",
# "Gateway", "MacAddress", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPv6Gateway",
# "Aliases", "NetworkID", "DNSNames"}}, "ports": [{"container_port", "protocol",
# "host_ip", "host_port"}], "dns_servers": [...], "dns_search": [...], "private": {...}}``
# (docker's NetworkSettings names; "ports" with every host port chosen; "private"
# what only the plugin reads).


@hookspec(firstresult=True)
def pyrt_network_backend() -> str | None:
    """The name of the network backend this plugin provides (``"bridge"``, ``"cni"``)
    when it is the chosen one, else ``None``; the first answer counts.

    Receives nothing.  Called by ``pyrt info`` (which reports it) and by the engine
    before it gives a container its default network (no backend: ``none``)."""


@hookspec(firstresult=True)
def pyrt_network_create(request: NetworkCreate, root: str, runroot: str) -> dict[str, Any] | None:
    """Create a network (``pyrt network create``); the first answer counts.

    Receives the resolved ``request`` (:class:`pyrt_core.netmodel.NetworkCreate`), pyrt's
    store ``root`` and run directory ``runroot``.  Called by the backend's ``network
    create`` command.  Returns the network's inspect form (docker's ``NetworkResource``:
    Name, Id, Driver, Scope, IPAM.Config, Internal, EnableIPv6, Labels, Options,
    Created).  Refuses (:class:`pyrt_core.errors.UsageError` or ConflictError) a taken
    name, a subnet that overlaps a host route or another network, a gateway outside its
    subnet, before anything is created.  The default network (``bridge``) is created
    by the plugin itself when first needed."""


@hookspec(firstresult=True)
def pyrt_network_remove(name: str, root: str, runroot: str) -> bool | None:
    """Remove a network (its bridge, rules and resolver); the first answer counts.

    Receives the network's ``name``, ``root`` and ``runroot``.  Called by ``pyrt network
    rm``/``prune``.  Raises ConflictError while a container is attached to it,
    NotFoundError when there is no such network; returns True when removed."""


@hookspec(firstresult=True)
def pyrt_network_list(root: str, runroot: str) -> list[dict[str, Any]] | None:
    """Every network, in inspect form, the default network included once it exists;
    the first answer counts.

    Receives ``root`` and ``runroot``.  Called by ``pyrt network ls``/``inspect``/
    ``prune`` and by the engine to resolve a network name."""


@hookspec(firstresult=True)
def pyrt_network_validate(networking: ContainerNetworking, root: str,
                          runroot: str) -> bool | None:
    """Check a container's networking before anything is created; the first answer
    counts.

    Receives the container's ``networking``
    (:class:`pyrt_core.netmodel.ContainerNetworking`), ``root`` and ``runroot``.  Called by
    the engine in ``create``/``run``.  Raises to refuse: an unknown network, an address
    outside its subnet or taken, a host port another process or container holds (the
    message names it); returns True when checked."""


@hookspec(firstresult=True)
def pyrt_network_setup(container_id: str, netns: str, networking: ContainerNetworking,
                       root: str, runroot: str) -> dict[str, Any] | None:
    """Attach a container's network namespace to its networks and publish its ports;
    the first answer counts.

    Receives the ``container_id``, ``netns`` (the path of the namespace's bind mount the
    core made), its ``networking``, ``root`` and ``runroot``.  Called once per start by
    the engine, before the container's process exists.  Returns the network record
    (above).  On failure it undoes what it did and raises: the core then removes the
    namespace and fails the start."""


@hookspec(firstresult=True)
def pyrt_network_teardown(container_id: str, netns: str | None, record: dict[str, Any] | None,
                          root: str, runroot: str) -> bool | None:
    """Release what ``setup`` made for a container: its addresses, interfaces, port
    rules, resolver entries; the first answer counts.

    Receives the ``container_id``, ``netns`` (None when the namespace is already gone:
    a crash, a reboot), the ``record`` setup returned (None when lost), ``root`` and
    ``runroot``.  Called by the engine when a run ends (conmon's exit command, stop,
    ``rm -f``) and again by recovery after a kill at any step, so it is idempotent and
    works from the plugin's own state when ``record`` is None.  Returns True."""


@hookspec(firstresult=True)
def pyrt_network_connect(container_id: str, netns: str, networking: ContainerNetworking,
                         network: str, record: dict[str, Any] | None, root: str,
                         runroot: str) -> dict[str, Any] | None:
    """Attach a running container to one more network (``pyrt network connect``); the
    first answer counts.

    Receives the ``container_id``, its ``netns``, its ``networking`` (whose attachment
    named ``network`` is the new one), the ``network`` name, its current ``record``,
    ``root`` and ``runroot``.  Called by the backend's ``network connect`` command.
    Returns the updated record."""


@hookspec(firstresult=True)
def pyrt_network_disconnect(container_id: str, netns: str | None, network: str,
                            record: dict[str, Any] | None, root: str,
                            runroot: str) -> dict[str, Any] | None:
    """Detach a container from one network; the first answer counts.

    Receives the ``container_id``, its ``netns`` (None when gone), the ``network`` name,
    its current ``record``, ``root`` and ``runroot``.  Called by ``pyrt network
    disconnect``.  Returns the updated record."""


@hookspec(firstresult=True)
def pyrt_network_recover(live: list[str], root: str, runroot: str) -> list[str] | None:
    """Make the plugin's state match reality after a crash; the first answer counts.

    Receives ``live`` (ids of the containers whose network namespace the core still
    holds), ``root`` and ``runroot``.  Called by the engine's recovery (``pyrt system
    recover`` and the start-up check).  Releases everything held for containers not in
    ``live`` and restarts what must run (a network's resolver); returns what was
    cleaned, one line each."""


# --------------------------------------------------------------------------
# Volumes (docs/volumes.md)
# --------------------------------------------------------------------------
#
# Volume drivers are chosen by *name* (``pyrt volume create -d NAME``, ``--mount
# volume-driver=NAME``; default ``local``, the core's own): every hook below but
# ``pyrt_volume_drivers`` receives ``driver``, and an implementation returns ``None``
# for a driver that is not its own.  The hooks follow docker's volume plugin protocol
# (Create, Remove, Mount, Unmount, Path, Get, List, Capabilities).  The core keeps the
# record of every volume (name, driver, labels, options, created time, the containers
# that have it mounted) under ``<root>/volumes/<name>/`` (0700), and a driver may keep
# its own files in that directory; ``root`` is pyrt's store.  The core calls ``create``,
# ``remove``, ``mount`` and ``unmount`` holding its volume lock (one at a time per
# store), checks names (docker's rule) and refuses to remove a volume a container uses.
# ``mount`` is called once per container run that uses the volume, ``unmount`` once
# when that run ends (recovery calls it for runs a crash ended), so a driver can count
# its users.  Errors are raised as :class:`pyrt_core.errors.PyrtError` subclasses
# (UsageError for bad options), with one line.


@hookspec
def pyrt_volume_drivers() -> list[str] | None:
    """The names of the volume drivers this plugin provides (``["local"]``).

    Receives nothing.  Called by the engine before a volume is created or a container
    that names a driver (``-d``, ``volume-driver=``) is created, and by ``pyrt info``.
    Every plugin's list is merged; an unknown name is refused before anything exists.
    """


@hookspec(firstresult=True)
def pyrt_volume_capabilities(driver: str) -> dict[str, Any] | None:
    """docker's ``Capabilities`` of the volume driver named ``driver``.

    Receives the ``driver`` name.  Called by the engine when it creates a volume (the
    record keeps the scope).  The first implementation whose driver it is returns
    ``{"Scope": "local"}`` (or ``"global"``: volumes kept beyond this host); others
    return ``None``.
    """


@hookspec(firstresult=True)
def pyrt_volume_create(driver: str, name: str, options: dict[str, str],
                       root: str) -> dict[str, Any] | None:
    """Create the volume ``name`` (docker's ``Create``).

    Receives the ``driver`` name, the volume's ``name`` (docker's rule checked: never a
    path), the driver's ``options`` (``-o KEY=VALUE``, ``volume-opt``) and ``root``
    (pyrt's store; the core made ``<root>/volumes/<name>/``, 0700, where the driver may
    keep its files).  Called by ``pyrt volume create`` and by ``create``/``run`` for a
    volume named or anonymous that does not exist yet, under the volume lock.  The first
    implementation whose driver it is returns ``{"Mountpoint": path}`` (``""`` when
    there is none before a mount); options it does not know are refused with
    :class:`pyrt_core.errors.UsageError` before it makes anything (the core then
    removes the directory).
    """


@hookspec(firstresult=True)
def pyrt_volume_remove(driver: str, name: str, root: str) -> bool | None:
    """Remove the volume ``name`` and its data (docker's ``Remove``).

    Receives the ``driver`` name, the volume's ``name`` and ``root``.  Called by ``pyrt
    volume rm``/``prune``, ``rm -v`` and ``run --rm`` (anonymous volumes), under the
    volume lock, once no container uses the volume (the core checked).  The first
    implementation whose driver it is returns True.
    """


@hookspec(firstresult=True)
def pyrt_volume_mount(driver: str, name: str, container_id: str, root: str) -> str | None:
    """Make the volume available to a container's run (docker's ``Mount``).

    Receives the ``driver`` name, the volume's ``name``, the ``container_id`` whose run
    starts, and ``root``.  Called by the engine at each start, with the container's root
    filesystem mounted and before the bundle is written, under the volume lock.  The
    first implementation whose driver it is returns the host directory to bind into the
    container (one the driver owns: the core never follows a path inside the container
    to reach it); the core copies the image's content into it when it is empty.
    """


@hookspec(firstresult=True)
def pyrt_volume_unmount(driver: str, name: str, container_id: str,
                        root: str) -> bool | None:
    """The run that ``mount`` served is over (docker's ``Unmount``).

    Receives the ``driver`` name, the volume's ``name``, the ``container_id`` and
    ``root``.  Called by the engine when the container's run ends (and by recovery for
    a run a crash ended), once per ``mount``, under the volume lock.  The first
    implementation whose driver it is releases what the run held (a driver that mounted
    something unmounts it after its last user) and returns True; idempotent.
    """


@hookspec(firstresult=True)
def pyrt_volume_path(driver: str, name: str, root: str) -> str | None:
    """docker's ``Path``: the volume's host path.

    Receives the ``driver`` name, the volume's ``name`` and ``root``.  Called by tools
    that need the data's place.  The first implementation whose driver it is returns the
    path (``""`` while the volume is not mounted).
    """


@hookspec(firstresult=True)
def pyrt_volume_get(driver: str, name: str, root: str) -> dict[str, Any] | None:
    """docker's ``Get``: what the driver knows of one volume.

    Receives the ``driver`` name, the volume's ``name`` and ``root``.  Called by ``pyrt
    volume inspect``.  The first implementation whose driver it is returns ``{"Name",
    "Mountpoint", "Status": {...}}`` (``Status`` shown when not empty), or ``None`` for
    a volume it does not have.
    """


@hookspec(firstresult=True)
def pyrt_volume_list(driver: str, root: str) -> list[dict[str, Any]] | None:
    """docker's ``List``: every volume the driver has.

    Receives the ``driver`` name and ``root``.  Called by checks and tools (``pyrt
    volume ls`` lists the core's records without asking the drivers).  The first
    implementation whose driver it is returns ``[{"Name", "Mountpoint"}]``.
    """


# --------------------------------------------------------------------------
# Lifecycle events
# --------------------------------------------------------------------------


@hookspec
def pyrt_container_created(container: Container) -> None:
    """A container record and its writable layer now exist.

    Receives the ``container`` (a :class:`pyrt_core.models.Container`).
    Called by the engine after ``create``/``run`` stored the record.  Return values are ignored.
    """


@hookspec
def pyrt_container_started(container: Container, pid: int) -> None:
    """A container's process is running.

    Receives the ``container`` (a :class:`pyrt_core.models.Container`) and
    the host ``pid`` of its init process.  Called by the engine right after ``start``.  Return
    values are ignored.
    """


@hookspec
def pyrt_container_exited(container: Container, exit_code: int) -> None:
    """A container's process ended and its resources were released.

    Receives the ``container`` (a :class:`pyrt_core.models.Container`) and
    the ``exit_code`` (``128 + N`` for a signal ``N``).  Called by whoever recorded the
    exit: the CLI for a foreground run, ``pyrt container cleanup`` (conmon's exit
    command) for a detached one, or recovery / ``stop`` / ``rm -f`` when the monitor
    is gone or slower.  Return values are ignored.
    """


@hookspec
def pyrt_container_removed(container: Container) -> None:
    """A container and its writable layer were removed.

    Receives the ``container`` (a :class:`pyrt_core.models.Container`) as
    it was.  Called by
    the engine after ``rm`` or ``run --rm``.  Return values are ignored.
    """
