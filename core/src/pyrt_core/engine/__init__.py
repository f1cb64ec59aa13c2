"""The engine: images + storage + container records -> OCI bundles -> the runtime.

:class:`Engine` is a façade: it holds the settings and the lazily built parts (plugin
manager, storage driver, image store, container store) and hands each operation to
the module that implements it, one module per operation, imported when it runs:

=================  =====================================================================
``create``         a container's record and writable layer (``create``, the image lookup)
``run``            ``pyrt run`` in the foreground (this process is the monitor)
``start``          a start under conmon (``start``, ``prelaunch``, ``abandon``)
``exit_command``   conmon's exit command: record the exit, ``--rm``, the restart policy
``stop``           ``stop``, ``kill``, ``wait``
``exec``           a process joining a running container
``resources``      ``pause``/``unpause``, ``stats``, ``update`` of a running container
``remove``         ``rm``
``recover``        make the records match reality after a crash
``teardown``       what several of them share, under the container's lock: release what
                   a run held and record its exit (``cleanup_locked``), remove a
                   container (``remove_locked``)
``bundle``         mount the root filesystem and write the OCI bundle
``common``         docker's time stamps, the recovery tests' fault points
=================  =====================================================================

Everything is created lazily, so a command pays only for what it uses
(``pyrt images`` never loads the isolation plugin's heavy modules, ``pyrt
--help`` never scans entry points).

The operations are functions of the engine (``create(engine, config, ...)``): they use
its public face only (settings, the parts above, ``lock``/``reload``/``paths``, the
state checks), never the façade's module, so the package has no import cycle.  They
reach plugins one way, ``engine.pm.hook.NAME(...)``: the plugin manager is
pyrt_core.hookcall's lean caller, so an event no plugin implements loads no plugin
(see docs/architecture.md, "One way to call hooks").
"""
from __future__ import annotations

import os

from ..errors import NotFoundError

TYPE_CHECKING = False  # (not typing's: see containers.store)
if TYPE_CHECKING:
    from ..containers.record import ContainerRecord
    from ..models import Container, ContainerConfig, Image


class _cached:
    """``functools.cached_property`` without functools (with collections, ~2 ms of every
    container command): computed on first access, then kept in the instance's dict."""

    def __init__(self, func) -> None:
        self.func, self.name, self.__doc__ = func, func.__name__, func.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class Engine:
    def __init__(self, settings, pm=None):
        self.settings = settings
        self._pm = pm
        #: values of the plugins' flags of the command (cli/extensions.py), for the plugins
        self.plugin_options: dict = {}
        # the plugins read their config file settings from the environment, which also
        # carries them to pyrt-runtime under conmon
        settings.export_plugin_env()

    # -- lazily built parts ------------------------------------------------------------
    @_cached
    def pm(self):
        """The plugin manager (pyrt_core.hookcall): hooks are called from the recorded
        plans, so a hook no plugin implements loads none, and pluggy is built only when
        the record cannot be used."""
        from ..hookcall import ObservedPluginManager, plugin_manager
        from .hook_events import OBSERVERS

        pm = self._pm if self._pm is not None else plugin_manager(self.settings.disabled_plugins)
        # the hooks that are events of their own (a network created, an image pulled) are
        # journalled as the engine calls them, whoever asked (engine.hook_events)
        return ObservedPluginManager(pm, OBSERVERS)

    @_cached
    def _driver(self):
        from ..storage.select import select_driver

        os.makedirs(self.settings.root, mode=0o700, exist_ok=True)
        return select_driver(self.settings, self.pm)

    @property
    def driver_name(self) -> str:
        return self._driver[0]

    @property
    def driver(self):
        return self._driver[1]

    @_cached
    def images(self):
        from ..images.store import ImageStore

        store = ImageStore(self.settings.root, self.driver, self.driver_name,
                           in_use=self._image_in_use)
        store.recover()  # drop layers a killed pyrt left incomplete (cheap when none)
        return store

    @_cached
    def containers(self):
        from ..containers.store import ContainerStore

        return ContainerStore(self.settings.root, self.settings.runroot)

    def storage_lock(self):
        from ..fsutil import FileLock

        return FileLock(os.path.join(self.settings.root, "storage.lock"))

    def _image_in_use(self, image_id: str) -> list[str]:
        return [c.short_id for c in self.containers.records() if c.image_id == image_id]

    # -- records, locks, paths ------------------------------------------------------------
    #
    # Every change to a container happens under its lock (containers/<id>/lock, see
    # containers.store), and a record's status says which step it is at: creating ->
    # created -> starting -> running -> exited (-> starting ...) -> removing.  A free
    # lock on a record in a transitional state means its writer died: recovery
    # (engine.recover) finishes or undoes the step.

    def get(self, ref: str) -> Container:
        return self.containers.get(ref)

    def reload(self, cid: str) -> Container:
        c = self.containers.load(cid)
        if c is None:
            raise NotFoundError(f"no such container: {cid[:12]}")
        return c

    # the lean view of a record (containers.record), for the operations of the hot
    # commands (stop, kill, wait, rm, conmon's exit command, recovery): no model
    def find(self, ref: str) -> ContainerRecord:
        return self.containers.find(ref)

    def record(self, cid: str) -> ContainerRecord:
        c = self.containers.load_record(cid)
        if c is None:
            raise NotFoundError(f"no such container: {cid[:12]}")
        return c

    @staticmethod
    def full(c: Container | ContainerRecord) -> Container:
        """The model ``Container`` of ``c`` (a lean view's record, as it stands now; fields
        this version does not know are left out, as ``from_dict`` leaves them out of
        ``config`` and ``state``)."""
        from ..containers.record import ContainerRecord

        if isinstance(c, ContainerRecord):
            from ..models import Container
            from ..records import fields

            known = set(fields(Container))
            return Container.from_dict({k: v for k, v in c.to_dict().items() if k in known})
        return c

    def lock(self, cid: str, blocking: bool = True):
        return self.containers.container_lock(cid, blocking)

    def paths(self, cid: str):
        from ..monitor.conmon import Paths

        return Paths(self.settings.root, self.settings.runroot, cid)

    # -- state checks -------------------------------------------------------------------
    @staticmethod
    def monitor_alive(c: Container | ContainerRecord) -> bool:
        from .. import procutil

        s = c.state
        return procutil.alive(s.monitor_pid, s.monitor_start, s.boot_id)

    @staticmethod
    def process_alive(c: Container | ContainerRecord) -> bool:
        from .. import procutil

        s = c.state
        return procutil.alive(s.pid, s.pid_start, s.boot_id)

    def is_running(self, c: Container | ContainerRecord) -> bool:
        return c.state.status in ("running", "starting") and (
            self.monitor_alive(c) or self.process_alive(c))

    # -- the operations (each in its module; see the module docstring) ---------------------
    def resolve_image(self, text: str, pull: str = "missing", platform: str | None = None) -> Image:
        from .create import resolve_image

        return resolve_image(self, text, pull, platform)

    def create(self, config: ContainerConfig, name: str | None = None, pull: str = "missing",
               cid: str | None = None) -> Container:
        from .create import create

        return create(self, config, name, pull, cid)

    def run(self, config: ContainerConfig, name: str | None = None, stdio=(0, 1, 2), pull: str = "missing",
            on_started=None, on_exited=None, on_console=None, on_created=None) -> int:
        from .run import run

        return run(self, config, name, stdio, pull, on_started=on_started,
                   on_exited=on_exited, on_console=on_console, on_created=on_created)

    def start(self, ref: str | Container, before_start=None, launched=None) -> Container:
        from .start import start

        return start(self, ref, before_start, launched)

    def prelaunch(self, cid: str, **kw):
        from .start import prelaunch

        return prelaunch(self, cid, **kw)

    def abandon(self, launched) -> None:
        from .start import abandon

        abandon(self, launched)

    def cleanup(self, cid: str, run: int | None = None) -> ContainerRecord | None:
        from .exit_command import cleanup

        return cleanup(self, cid, run)

    def stop(self, ref: str | Container | ContainerRecord,
             timeout: int | None = None) -> ContainerRecord:
        from .stop import stop

        return stop(self, ref, timeout)

    def restart(self, ref: str | Container | ContainerRecord,
                timeout: int | None = None) -> Container:
        from .stop import restart

        return restart(self, ref, timeout)

    def kill(self, ref: str | Container | ContainerRecord,
             sig: int) -> Container | ContainerRecord:
        from .stop import kill

        return kill(self, ref, sig)

    def wait(self, ref: str | Container, poll: float = 0.02) -> int:
        from .stop import wait

        return wait(self, ref, poll)

    def exec(self, ref: str | Container, args: list[str], *, env: list[str] | None = None,
             user: str | None = None, workdir: str | None = None, tty: bool = False,
             stdio=(0, 1, 2), detach: bool = False, on_started=None, on_console=None,
             privileged: bool = False) -> int:
        from .exec import exec_in

        return exec_in(self, ref, args, env=env, user=user, workdir=workdir, tty=tty,
                       stdio=stdio, detach=detach, on_started=on_started, on_console=on_console,
                       privileged=privileged)

    def pause(self, ref: str | Container, paused: bool = True) -> Container:
        from .resources import pause

        return pause(self, ref, paused)

    def stats(self, ref: str | Container) -> dict:
        from .resources import stats

        return stats(self, ref)

    def update(self, ref: str | Container, resources: dict) -> Container:
        from .resources import update

        return update(self, ref, resources)

    def network_connect(self, ref: str, network: str, aliases=(), ipv4: str | None = None,
                        ipv6: str | None = None) -> dict:
        from .network import connect

        return connect(self, ref, network, aliases, ipv4, ipv6)

    def network_disconnect(self, ref: str, network: str, force: bool = False) -> dict:
        from .network import disconnect

        return disconnect(self, ref, network, force)

    def remove(self, ref: str | Container, force: bool = False, volumes: bool = False) -> None:
        from .remove import remove

        remove(self, ref, force, volumes)

    def recover(self, full: bool = False) -> list[str]:
        """Reconcile records with reality (see :mod:`pyrt_core.engine.recover`)."""
        from .recover import reconcile

        return reconcile(self, full=full)
