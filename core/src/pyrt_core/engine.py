"""The engine: images + storage + container records -> OCI bundles -> the runtime.

Everything is created lazily, so a command pays only for what it uses
(``pyrt images`` never loads the isolation plugin's heavy modules, ``pyrt
--help`` never scans entry points).
"""
from __future__ import annotations

import functools
import json
import os

from .errors import NotFoundError, PyrtError, StorageError
from .fsutil import FileLock, atomic_write
from .models import Container, ContainerConfig, FetchOptions, Image, ImageReference


def now() -> str:
    """The current UTC time in RFC 3339 with microseconds, as docker prints it."""
    import time

    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def fault(point: str) -> None:
    """Fault injection for the recovery tests: ``PYRT_FAULT=point[,point...]`` makes this
    process SIGKILL itself when it reaches ``point`` (a pyrt process killed there)."""
    want = os.environ.get("PYRT_FAULT")
    if want and point in want.split(","):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class Engine:
    def __init__(self, settings, pm=None):
        self.settings = settings
        self._pm = pm
        # the plugins read their config file settings from the environment, which also
        # carries them to pyrt-runtime under conmon
        settings.export_plugin_env()

    # -- lazily built parts ------------------------------------------------------------
    @functools.cached_property
    def pm(self):
        """The plugin manager (pyrt_core.hookcall): hooks are called from the recorded
        plans, so a hook no plugin implements loads none, and pluggy is built only when
        the record cannot be used."""
        if self._pm is not None:
            return self._pm
        from .hookcall import plugin_manager

        return plugin_manager(self.settings.disabled_plugins)

    @functools.cached_property
    def _driver(self):
        from .storage.select import select_driver

        os.makedirs(self.settings.root, mode=0o700, exist_ok=True)
        return select_driver(self.settings, self.pm)

    @property
    def driver_name(self) -> str:
        return self._driver[0]

    @property
    def driver(self):
        return self._driver[1]

    @functools.cached_property
    def images(self):
        from .images.store import ImageStore

        store = ImageStore(self.settings.root, self.driver, self.driver_name,
                           in_use=self._image_in_use)
        store.recover()  # drop layers a killed pyrt left incomplete (cheap when none)
        return store

    @functools.cached_property
    def containers(self):
        from .containers.store import ContainerStore

        return ContainerStore(self.settings.root, self.settings.runroot)

    def storage_lock(self):
        return FileLock(os.path.join(self.settings.root, "storage.lock"))

    def _image_in_use(self, image_id: str) -> list[str]:
        return [c.short_id for c in self.containers.list() if c.image_id == image_id]

    # -- images --------------------------------------------------------------------
    def resolve_image(self, text: str, pull: str = "missing") -> Image:
        ref = ImageReference.parse(text)
        if ref.transport == "registry" and pull != "always":
            try:
                return self.images.get(text)
            except NotFoundError:
                if pull == "never":
                    raise NotFoundError(f"image {text} not found locally (--pull never)") from None
        image = self.pm.hook.pyrt_image_fetch(reference=ref, store=self.images,
                                              options=FetchOptions(pull=pull))
        if image is None:
            raise NotFoundError(
                f"image {text} is not in the local store, and no plugin can fetch "
                f"{ref.transport} references (install pyrt-image-registry to pull from registries)")
        return image

    # -- containers ----------------------------------------------------------------------
    #
    # Every change to a container happens under its lock (containers/<id>/lock, see
    # containers.store), and a record's status says which step it is at: creating ->
    # created -> starting -> running -> exited (-> starting ...) -> removing.  A free
    # lock on a record in a transitional state means its writer died: recovery
    # (pyrt_core.recovery) finishes or undoes the step.

    def create(self, config: ContainerConfig, name: str | None = None, pull: str = "missing",
               cid: str | None = None) -> Container:
        if name:  # docker's rule, checked before anything exists ("" means a generated name)
            from .containers.store import check_name

            name = check_name(name)
        else:
            name = None
        self._validate_resources(config)
        self._default_pids_limit(config)
        image = self.resolve_image(config.image, pull)
        from .images.configcheck import check_image

        check_image(image)  # one an earlier pyrt stored unchecked: refused before anything exists
        store = self.containers
        cid = cid or store.new_id()
        lk = store.begin_create(cid)
        try:
            container = Container(
                id=cid, name=name or "", image_id=image.id, image_name=config.image, created=now(),
                storage_driver=self.driver_name, config=config,
            )
            container.state.status = "creating"
            store.publish(container, lk)
            fault("create:published")
            layer_made = False
            try:
                container.name = store.reserve_name(name, cid)
                store.save(container, durable=False)
                parent = image.top_layer.split(":", 1)[-1] if image.top_layer else None
                with self.storage_lock():
                    self.driver.create_rw(cid, parent, dict(config.storage_opts) or None)
                layer_made = True
                fault("create:layer")
                container.state.status = "created"
                store.save(container)
            except BaseException:
                if layer_made:
                    with self.storage_lock():
                        self.driver.remove(cid)
                store.delete(container)
                raise
        finally:
            lk.release()
        self.pm.hook.pyrt_container_created(container=container)
        return container

    def _validate_resources(self, config: ContainerConfig) -> None:
        """Refuse limits the resource manager cannot honour before anything exists.  Device
        rules count: but for ``--privileged``, the bundle denies every device but the
        allowed ones (containers/spec), which only a resource manager enforces."""
        from .runtime.config import DeviceRule
        from .runtime.spec import resources_from_spec

        resources = resources_from_spec(config.resources)
        if not config.privileged:
            resources.devices.insert(0, DeviceRule(False))  # the bundle's "deny all" first
        self.pm.hook.pyrt_resources_validate(resources=resources)

    def _default_pids_limit(self, config: ContainerConfig) -> None:
        """The engine's default ``--pids-limit`` (``[containers] pids_limit``, podman's
        2048), for a container given none, where the resource plugin that takes it can
        apply it (the pids controller is there): a fork bomb then stops at the limit
        instead of taking every pid of the host.  Without such a plugin the container
        runs without a limit, as before (never refused for a default).  The default is
        the engine's: pyrt-runtime applies what a spec says and adds nothing."""
        limit = self.settings.pids_limit
        if not limit or limit <= 0 or "pids" in (config.resources or {}):
            return  # --pids-limit given (-1 and 0 too: unlimited), or no default wanted
        from .runtime.spec import resources_from_spec

        wanted = dict(config.resources or {})
        wanted["pids"] = {"limit": limit}
        try:
            manager = self.pm.hook.pyrt_resources_validate(resources=resources_from_spec(wanted))
        except (PyrtError, OSError):
            return  # no resource plugin, cgroups off, or no pids controller here
        if manager not in (None, "none"):
            config.resources = wanted

    def _mount_and_write_bundle(self, container: Container, image: Image, load: bool = True):
        from .containers import spec as specmod
        from .images.configcheck import check_image

        check_image(image)

        with self.storage_lock():
            rootfs = self.driver.get(container.layer_id)
        self.pm.hook.pyrt_storage_rootfs_mounted(container=container, rootfs=rootfs)
        bundle = self.containers.bundle_dir(container.id)
        os.makedirs(bundle, mode=0o700, exist_ok=True)  # root's only: config.json holds the env
        hostname = container.config.hostname or container.id[:12]
        specmod.write_bundle_files(bundle, hostname, container.config.network)
        spec = specmod.build_spec(container, image, rootfs, bundle)
        if "seccomp" in spec["linux"]:  # compiled filters are cached per runroot
            from .runtime.config import SECCOMP_CACHE_ANNOTATION

            spec["annotations"][SECCOMP_CACHE_ANNOTATION] = os.path.join(self.settings.runroot,
                                                                         "seccomp")
        _ensure_workdir(rootfs, spec["process"]["cwd"], spec["process"]["user"])
        from .containers.store import RECORD_MODE

        # it holds the -e values: root's only (and so is the bundle directory)
        atomic_write(os.path.join(bundle, "config.json"), json.dumps(spec, indent=1), RECORD_MODE,
                     durable=False)
        if not load:
            return None
        from .runtime.executor import load_bundle

        return load_bundle(bundle, container.id)

    def get(self, ref: str) -> Container:
        return self.containers.get(ref)

    def reload(self, cid: str) -> Container:
        c = self.containers.load(cid)
        if c is None:
            raise NotFoundError(f"no such container: {cid[:12]}")
        return c

    def lock(self, cid: str, blocking: bool = True):
        return self.containers.container_lock(cid, blocking)

    def recover(self, full: bool = False) -> list[str]:
        """Reconcile records with reality (see :mod:`pyrt_core.recovery`)."""
        from .recovery import reconcile

        return reconcile(self, full=full)

    def paths(self, cid: str):
        from .monitor.conmon import Paths

        return Paths(self.settings.root, self.settings.runroot, cid)

    # -- state checks -------------------------------------------------------------------
    @staticmethod
    def monitor_alive(c: Container) -> bool:
        from . import procutil

        s = c.state
        return procutil.alive(s.monitor_pid, s.monitor_start, s.boot_id)

    @staticmethod
    def process_alive(c: Container) -> bool:
        from . import procutil

        s = c.state
        return procutil.alive(s.pid, s.pid_start, s.boot_id)

    def is_running(self, c: Container) -> bool:
        return c.state.status in ("running", "starting") and (
            self.monitor_alive(c) or self.process_alive(c))

    # -- foreground run (the CLI is the monitor) ------------------------------------------
    def run(self, config: ContainerConfig, name: str | None = None, stdio=(0, 1, 2),
            pull: str = "missing", on_started=None, on_exited=None, on_console=None) -> int:
        """``pyrt run`` in the foreground: create, start, wait, clean up; return the exit code.

        This process is the container's monitor: it reaps the init and records
        the exit.  ``on_started(pid)`` runs once the process runs (the terminal
        proxy starts there)."""
        from . import procutil
        from .runtime.executor import Executor

        container = self.create(config, name, pull)
        cid = container.id
        code = 125
        run_no = 0
        try:
            with self.lock(cid):
                container = self.reload(cid)
                st = container.state
                st.run += 1
                run_no = st.run
                st.status, st.error, st.stop_requested = "starting", "", False
                me = procutil.identity(os.getpid())
                st.monitor_pid, st.monitor_start, st.boot_id = me["pid"], me["start"], me["boot"]
                st.pid, st.pid_start = 0, None
                container.monitor, container.runtime = "pyrt", "pyrt (in-process)"
                self.containers.save(container, durable=False)
                try:
                    image = self.images.get(container.image_id)
                    rc = self._mount_and_write_bundle(container, image)
                except BaseException as e:
                    self._cleanup_locked(container, exit_code=getattr(e, "exit_code", 125),
                                         error=str(e), remove=False)
                    raise

            def started(pid, record):
                ident = procutil.identity(pid)
                with self.lock(cid):
                    c = self.reload(cid)
                    if c.state.run != run_no:
                        return
                    c.state.status = "running"
                    c.state.pid, c.state.pid_start = pid, ident["start"]
                    c.state.started_at = now()
                    c.state.resources = dict(record)
                    c.cgroup_manager = record.get("manager", "none")
                    self.containers.save(c, durable=False)
                self.pm.hook.pyrt_container_started(container=c, pid=pid)
                if on_started is not None:
                    on_started(pid)

            oom = {"killed": False}

            def exited(exit_code, oom_killed):
                oom["killed"] = oom_killed
                if on_exited is not None:
                    on_exited(exit_code)

            def placed(record):
                with self.lock(cid):
                    c = self.reload(cid)
                    c.state.resources = dict(record)
                    self.containers.save(c, durable=False)

            error = ""
            if on_console is not None and rc.process.terminal:
                rc.on_console = on_console  # -t: the pty is opened inside (its own devpts)
            try:
                code = Executor(self.pm).run(rc, stdio, on_started=started, on_exited=exited,
                                             on_placed=placed)
            except PyrtError as e:
                code, error = e.exit_code, str(e)
                raise
            finally:
                try:
                    with self.lock(cid):
                        c = self.reload(cid)
                        if c.state.run == run_no and c.state.status in ("starting", "running"):
                            c.state.oom_killed = oom["killed"]
                            c.state.resources = {}  # the executor released them
                            self._cleanup_locked(c, exit_code=code, error=error, remove=False)
                except NotFoundError:
                    pass  # removed meanwhile (rm -f): nothing left to record
            return code
        finally:
            if config.auto_remove:
                try:
                    self.remove(cid, force=True)
                except NotFoundError:
                    pass

    # -- detached: conmon is the monitor ---------------------------------------------------
    def start(self, ref: str | Container, before_start=None, launched=None) -> Container:
        """Start a created or exited container under conmon; returns once it runs.
        Starting a running container does nothing (as docker).  ``before_start(c)``
        runs once conmon holds the created container, before its process runs
        (``start -a`` attaches there).  ``launched``: a monitor from :meth:`prelaunch`
        (used for the container's first run, else stopped)."""
        try:
            cid = ref.id if isinstance(ref, Container) else self.containers.get(ref).id
            with self.lock(cid):
                c = self.reload(cid)
                if c.state.status in ("running", "starting") and self.is_running(c):
                    return c
                if c.state.status in ("creating", "removing"):
                    from .errors import ConflictError

                    raise ConflictError(f"container {c.short_id} is {c.state.status}")
                if c.state.status in ("running", "starting"):
                    self._cleanup_locked(c, remove=False)  # a dead run recovery has not seen yet
                mine, launched = launched, None  # _start_locked owns it from here
                if mine is not None:
                    mine.release_dir_lock()  # the record exists: its own lock is what counts
                self._start_locked(c, before_start, mine)
                return c
        finally:
            if launched is not None:
                self.abandon(launched)

    def prelaunch(self, cid: str, **kw):
        """See :func:`pyrt_core.monitor.conmon.prelaunch` (``run -d`` calls that before it
        has an engine)."""
        from .monitor import conmon

        return conmon.prelaunch(self.settings, self.containers, cid, **kw)

    def abandon(self, launched) -> None:
        """Stop a prelaunched monitor no container uses (see monitor.conmon.abandon)."""
        from .monitor import conmon

        conmon.abandon(launched, self.containers)

    def _exit_command(self, c: Container) -> list[str]:
        from .monitor.conmon import exit_command

        return exit_command(self.settings, self.driver_name, c.id, c.state.run)

    def _start_locked(self, c: Container, before_start=None, launched=None) -> None:
        from . import procutil
        from .monitor import conmon
        from .runtime import cli as rtcli

        st = c.state
        st.run += 1
        st.status, st.error, st.stop_requested, st.oom_killed = "starting", "", False, False
        st.pid, st.pid_start, st.monitor_pid, st.monitor_start = 0, None, 0, None
        st.boot_id = procutil.boot_id()
        c.monitor = "conmon"
        paths = self.paths(c.id)
        try:
            c.runtime = conmon.find_runtime()
            conmon_path = conmon.find_conmon()
            self.containers.save(c, durable=False)
            image = self.images.get(c.image_id)
            # conmon and the runtime start now; the runtime waits for the bundle
            if launched is not None and (launched.run != st.run or launched.paths.id != c.id
                                         or launched.exit_command != self._exit_command(c)
                                         or launched.io != (c.config.interactive, c.config.tty,
                                                            c.config.log_size_max)):
                launched.abort()  # not for this run (never in practice)
                launched = None
            launched = launched or conmon.launch(
                paths, name=c.name, exit_command=self._exit_command(c),
                stdin=c.config.interactive, tty=c.config.tty, log_size_max=c.config.log_size_max,
                disabled_plugins=self.settings.disabled_plugins, runtime=c.runtime,
                conmon=conmon_path)
            try:
                self._mount_and_write_bundle(c, image, load=False)
                fault("start:mounted")
            except BaseException:
                launched.abort()
                raise
            rtcli.warm_up("start", self.pm)  # start's code, loaded while the runtime works
            pid, mon = launched.wait()
            ident = procutil.identity(pid)
            st.pid, st.pid_start = pid, ident["start"]
            if mon:
                st.monitor_pid, st.monitor_start = mon, procutil.start_time(mon)
            rstate = rtcli.RuntimeState(paths.runtime_root, c.id).load() or {}
            st.resources = rstate.get("resources") or {}
            c.cgroup_manager = st.resources.get("manager", "none")
            self.containers.save(c, durable=False)
            fault("start:created")
            if before_start is not None:
                before_start(c)
            try:
                rtcli.start(paths.runtime_root, c.id)
            except rtcli.RuntimeFailure as e:
                from .errors import ExecError

                raise ExecError(str(e), e.exit_code if e.exit_code in (126, 127) else 125) from None
            fault("start:started")
            st.status = "running"
            st.started_at = now()
            self.containers.save(c, durable=False)
        except BaseException as e:
            self._cleanup_locked(c, exit_code=getattr(e, "exit_code", 125), error=str(e),
                                 remove=False, wait_exit=0.5)
            raise
        self.pm.hook.pyrt_container_started(container=c, pid=st.pid)

    def _cleanup_locked(self, c: Container, exit_code: int | None = None, error: str = "",
                        remove: bool = True, wait_exit: float = 0.0) -> None:
        """The container's process is gone (or must go): kill what is left, release its
        cgroup, unmount its root, record the exit.  Idempotent; the caller holds the lock.

        ``exit_code`` None reads conmon's exit file (waiting up to ``wait_exit``
        seconds for it), else 137 when pyrt had to kill the process, else 255
        (unknown, as docker after a crash).  With ``remove`` a ``--rm``
        container is removed."""
        import signal
        import time

        from . import procutil
        from .monitor import conmon
        from .runtime import cli as rtcli

        st = c.state
        paths = self.paths(c.id)
        killed = False
        # 1. no process of this run may survive: the init (verified identity), then conmon
        if procutil.alive(st.pid, st.pid_start, st.boot_id) and not self.monitor_alive(c):
            killed = procutil.signal_verified(st.pid, st.pid_start, st.boot_id, signal.SIGKILL)
            procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
        mon = conmon.read_pid(paths.conmon_pidfile) if c.monitor == "conmon" else 0
        if mon and not (procutil.alive(mon) and c.id in procutil.cmdline(mon)):
            mon = 0
        if mon and procutil.alive(st.pid, st.pid_start, st.boot_id):
            # conmon runs but the container must go (failed start, rm -f): kill the init
            killed = procutil.signal_verified(st.pid, st.pid_start, st.boot_id, signal.SIGKILL)
            procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
        exited = None
        if c.monitor == "conmon":
            # conmon writes the exit file as soon as it reaped the init; it may then wait
            # for its exit command (which waits for our lock), so never wait for conmon
            deadline = time.monotonic() + (max(wait_exit, 2.0) if mon else wait_exit)
            while True:
                exited = conmon.read_exit_file(paths.exit_file)
                if exited is not None or time.monotonic() >= deadline:
                    break
                if mon and not procutil.alive(mon):
                    mon = 0
                    deadline = min(deadline, time.monotonic() + 0.05)
                time.sleep(0.003)
            if exited is None and mon:
                try:
                    os.kill(mon, signal.SIGKILL)  # a monitor that cannot report is no use
                except ProcessLookupError:
                    pass
        if exit_code is None:
            if exited is not None:
                exit_code = exited[0]
            else:
                exit_code = 137 if killed else 255
        # 2. resources: OOM first (the counters go with the cgroup), then the runtime's state
        record = st.resources or {}
        rdata = rtcli.RuntimeState(paths.runtime_root, c.id).load()
        if rdata and rdata.get("resources"):
            record = rdata["resources"]
        if record and record.get("manager", "none") != "none":
            try:
                if self.pm.hook.pyrt_resources_oom_killed(container_id=c.id, record=record):
                    st.oom_killed = True
            except Exception:  # noqa: BLE001 - a report, never a reason to leak
                pass
        errors = []
        try:
            rtcli.delete(paths.runtime_root, c.id, force=True, pm=self.pm)
        except Exception as e:  # noqa: BLE001
            errors.append(f"runtime state: {e}")
        if record and not rdata:
            try:
                self.pm.hook.pyrt_resources_release(container_id=c.id, record=record)
            except Exception as e:  # noqa: BLE001
                errors.append(f"cgroup: {e}")
        fault("cleanup:released")
        # 3. storage: unmount (a failure is recorded; get() at the next start copes)
        try:
            with self.storage_lock():
                self.driver.put(c.layer_id)
        except Exception as e:  # noqa: BLE001
            errors.append(f"unmounting the root filesystem: {e}")
        import shutil

        keep_exit = c.config.auto_remove  # `pyrt wait` may still want the code
        shutil.rmtree(paths.bundle, ignore_errors=True)
        for p in ([] if keep_exit else [paths.exit_file]) + [os.path.join(paths.socket_dir, c.id)]:
            try:
                os.unlink(p)
            except OSError:
                pass
        st.status = "exited"
        st.paused = False
        st.exit_code = exit_code
        st.finished_at = _rfc3339(exited[1]) if exited else now()
        st.pid, st.pid_start, st.monitor_pid, st.monitor_start = 0, None, 0, None
        st.resources = {}
        st.error = error or "; ".join(errors)
        self.containers.save(c)
        self.pm.hook.pyrt_container_exited(container=c, exit_code=exit_code)
        if remove and c.config.auto_remove:
            self._remove_locked(c)

    def cleanup(self, cid: str, run: int | None = None) -> Container | None:
        """``pyrt container cleanup``, conmon's exit command: record the exit and
        release everything; then honour ``--rm`` and the restart policy.

        conmon writes the exit file before it runs this.  No exit file means there is
        nothing to report: the runtime's create failed (the starter, or the next
        command's recovery if the starter died, cleans up) or the exit was already
        recorded.  Taking the lock then would only block the starter and hide a dead
        start from recovery (a record left "starting" while we wait)."""
        from .monitor import conmon

        if conmon.read_exit_file(self.paths(cid).exit_file) is None:
            return None
        try:
            with self.lock(cid):
                c = self.reload(cid)
                if run is not None and c.state.run != run:
                    return c  # a newer run already
                if c.state.status not in ("running", "starting"):
                    return c
                self._cleanup_locked(c, wait_exit=1.0)
                if self.containers.load(cid) is None:
                    return None
        except NotFoundError:
            return None
        self._maybe_restart(cid)
        return c

    def _restart_wanted(self, c: Container) -> bool:
        cfg, st = c.config, c.state
        if st.stop_requested or st.status != "exited" or cfg.auto_remove:
            return False
        policy = cfg.restart_policy
        if policy in ("always", "unless-stopped"):
            return True
        if policy == "on-failure":
            return st.exit_code != 0 and (not cfg.restart_max or st.restart_count < cfg.restart_max)
        return False

    def _maybe_restart(self, cid: str) -> None:
        import time

        c = self.containers.load(cid)
        if c is None or not self._restart_wanted(c):
            return
        # docker's back-off: 100 ms, doubling per consecutive restart, at most a minute
        delay = min(0.1 * (2 ** min(c.state.restart_count, 10)), 60.0)
        time.sleep(delay)
        try:
            with self.lock(cid):
                c = self.reload(cid)
                if not self._restart_wanted(c):
                    return
                c.state.restart_count += 1
                try:
                    self._start_locked(c)
                except PyrtError:
                    pass
        except NotFoundError:
            return

    def stop(self, ref: str | Container, timeout: int | None = None) -> Container:
        """The stop signal (``--stop-signal``, else the image's StopSignal, else SIGTERM),
        then SIGKILL after ``timeout`` seconds; returns once the container is cleaned up.
        Stopping a container that is not running does nothing (as docker)."""
        import signal as _signal

        from . import procutil

        cid = ref.id if isinstance(ref, Container) else self.containers.get(ref).id
        with self.lock(cid):
            c = self.reload(cid)
            if c.state.status not in ("running", "starting"):
                return c
            if not self.is_running(c):
                self._cleanup_locked(c)
                return c
            c.state.stop_requested = True
            self.containers.save(c, durable=False)
            self._thaw_if_paused(c)
        st = c.state
        sig = self._stop_signal(c)
        if timeout is None:
            timeout = c.config.stop_timeout if c.config.stop_timeout is not None else 10
        procutil.signal_verified(st.pid, st.pid_start, st.boot_id, sig)
        fault("stop:signalled")
        if not procutil.wait_gone(st.pid, st.pid_start, st.boot_id, max(timeout, 0)):
            procutil.signal_verified(st.pid, st.pid_start, st.boot_id, _signal.SIGKILL)
            procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
        return self._finish_exit(cid, st.run)

    def _stop_signal(self, c: Container) -> int:
        from .runtime.cli import RuntimeFailure, parse_signal
        from .errors import UsageError

        text = c.config.stop_signal
        if not text:
            try:
                text = self.images.get(c.image_id).config.stop_signal
            except (NotFoundError, UsageError):
                text = None
            if not isinstance(text, str):  # an image an earlier pyrt stored unchecked
                text = None
        try:
            return parse_signal(text or "SIGTERM")
        except RuntimeFailure as e:
            raise UsageError(str(e)) from None

    def _finish_exit(self, cid: str, run: int, timeout: float = 10.0) -> Container:
        """After the init died: the monitor records the exit; do it here if the
        monitor is slow or gone."""
        import time

        from .monitor import conmon

        deadline = time.monotonic() + timeout
        paths = self.paths(cid)
        while True:
            c = self.reload(cid)
            if c.state.run != run or c.state.status not in ("running", "starting"):
                return c
            mon_alive = self.monitor_alive(c)
            if (c.monitor == "conmon" and conmon.read_exit_file(paths.exit_file) is not None) \
                    or not mon_alive or time.monotonic() > deadline:
                with self.lock(cid):
                    c = self.reload(cid)
                    if c.state.run == run and c.state.status in ("running", "starting"):
                        if c.monitor == "conmon" or not mon_alive or time.monotonic() > deadline:
                            self._cleanup_locked(c, wait_exit=1.0)
                            return self.containers.load(cid) or c
            time.sleep(0.005)

    # -- resource control of a running container (pause, unpause, stats, update) --------
    def _running_for_resources(self, ref, what: str) -> Container:
        from .errors import ConflictError

        c = ref if isinstance(ref, Container) else self.containers.get(ref)
        if c.state.status not in ("running", "starting") or not self.is_running(c):
            raise ConflictError(f"container {c.name} is not running: cannot {what} it")
        return c

    def pause(self, ref: str | Container, paused: bool = True) -> Container:
        """Freeze (``paused=True``) or thaw every process of a running container."""
        from .errors import ConflictError

        what = "pause" if paused else "unpause"
        c = self._running_for_resources(ref, what)
        with self.lock(c.id):
            c = self.reload(c.id)
            if c.state.paused == paused:
                raise ConflictError(f"container {c.name} is {'already' if paused else 'not'} paused")
            self.pm.hook.pyrt_resources_freeze(container_id=c.id, record=c.state.resources,
                                               frozen=paused)
            c.state.paused = paused
            self.containers.save(c, durable=False)
        return c

    def stats(self, ref: str | Container) -> dict:
        c = self._running_for_resources(ref, "read the statistics of")
        return self.pm.hook.pyrt_resources_stats(container_id=c.id, record=c.state.resources) or {}

    def update(self, ref: str | Container, resources: dict) -> Container:
        """Change the limits of a running container (``resources``: OCI linux.resources);
        the new values are kept in its config for later starts."""
        from .runtime.spec import resources_from_spec

        c = self._running_for_resources(ref, "update")
        with self.lock(c.id):
            c = self.reload(c.id)
            merged = dict(c.config.resources)
            for key, value in resources.items():
                merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
            self.pm.hook.pyrt_resources_update(container_id=c.id, record=c.state.resources,
                                               resources=resources_from_spec(merged))
            c.config.resources = merged
            self.containers.save(c)
        return c

    def _thaw_if_paused(self, c: Container) -> None:
        """A frozen container cannot act on signals: thaw it before stop/kill (docker does)."""
        if c.state.paused:
            try:
                self.pm.hook.pyrt_resources_freeze(container_id=c.id, record=c.state.resources,
                                                   frozen=False)
            except Exception:
                pass
            c.state.paused = False
            self.containers.save(c, durable=False)

    def kill(self, ref: str | Container, sig: int) -> Container:
        from . import procutil
        from .errors import ConflictError

        c = ref if isinstance(ref, Container) else self.containers.get(ref)
        st = c.state
        if c.state.paused:
            with self.lock(c.id):
                self._thaw_if_paused(c)
        if c.state.status not in ("running", "starting") or not procutil.signal_verified(
                st.pid, st.pid_start, st.boot_id, sig):
            raise ConflictError(f"container {c.name} is not running")
        return c

    def wait(self, ref: str | Container, poll: float = 0.02) -> int:
        """Block until the container is not running; return its exit code."""
        import time

        from .monitor import conmon

        c = ref if isinstance(ref, Container) else self.containers.get(ref)
        cid = c.id
        exit_file = self.paths(cid).exit_file
        while True:
            cur = self.containers.load(cid)
            if cur is None:
                got = conmon.read_exit_file(exit_file)
                return got[0] if got else c.state.exit_code
            c = cur
            if c.state.status not in ("running", "starting", "creating"):
                return c.state.exit_code
            elif c.state.status != "creating" and not self.monitor_alive(c):
                lk = self.lock(cid, blocking=False)
                if lk is not None:
                    with lk:
                        c2 = self.reload(cid)
                        if c2.state.status in ("running", "starting") and not self.monitor_alive(c2):
                            self._cleanup_locked(c2)
            time.sleep(poll)
            poll = min(poll * 1.5, 0.1)

    def exec(self, ref: str | Container, args: list[str], *, env: list[str] | None = None,
             user: str | None = None, workdir: str | None = None, tty: bool = False,
             stdio=(0, 1, 2), detach: bool = False, on_started=None, on_console=None) -> int:
        """``pyrt exec``: a new process in the container's namespaces (setns) and
        cgroup, with the container's environment, capabilities and user unless
        overridden.  Returns its exit code (0 at once with ``detach``)."""
        from .containers.spec import resolve_user
        from .errors import ConflictError, ExecError
        from .runtime.spec import process_from_spec
        from .runtime.executor import forward_signals

        c = ref if isinstance(ref, Container) else self.containers.get(ref)
        if c.state.status not in ("running", "starting") or not self.process_alive(c):
            raise ConflictError(f"container {c.name} is not running: exec needs a running container")
        try:
            with open(os.path.join(self.containers.bundle_dir(c.id), "config.json")) as f:
                spec = json.load(f)
        except (OSError, ValueError):
            raise ConflictError(f"container {c.name} has no runtime configuration "
                                "(is it still starting?)") from None
        proc = dict(spec["process"])
        proc["args"] = list(args)
        proc["terminal"] = bool(tty)
        if env:
            merged = dict(e.partition("=")[::2] for e in proc.get("env") or [])
            for e in env:
                k, _, v = e.partition("=")
                merged[k] = v
            proc["env"] = [f"{k}={v}" for k, v in merged.items()]
        if tty and not any(e.startswith("TERM=") for e in proc.get("env") or []):
            proc["env"] = list(proc.get("env") or []) + ["TERM=xterm"]
        if user is not None:
            uid, gid, extra = resolve_user(spec["root"]["path"], user)
            proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra}
        if workdir:
            if not workdir.startswith("/"):
                raise ExecError(f"the working directory {workdir!r} is invalid, it needs to be an "
                                "absolute path", 125)
            proc["cwd"] = workdir
        pconf = process_from_spec(proc)
        if tty and on_console is not None:
            pconf.on_console = on_console  # the pty is opened inside (the container's devpts)
        from .runtime.spec_seccomp import seccomp_from_spec

        pconf.seccomp = seccomp_from_spec((spec.get("linux") or {}).get("seccomp"))  # as runc
        from .runtime.config import SECCOMP_CACHE_ANNOTATION

        pconf.seccomp_cache = (spec.get("annotations") or {}).get(SECCOMP_CACHE_ANNOTATION)
        namespaces = [ns["type"] for ns in (spec.get("linux") or {}).get("namespaces") or []
                      if not ns.get("path")]
        if c.state.resources.get("manager", "none") != "none" and "cgroup" not in namespaces:
            namespaces.append("cgroup")
        p = self.pm.hook.pyrt_isolation_join(pid=c.state.pid, namespaces=namespaces, process=pconf,
                                             stdio=tuple(stdio))
        if p is None:
            raise ConflictError("no isolation plugin can join a container (install pyrt-namespaces)")
        if on_started is not None:
            on_started(p.pid)
        if detach:
            return 0
        try:
            with forward_signals(p):
                return p.wait()
        except BaseException:
            p.destroy()
            raise

    def remove(self, ref: str | Container, force: bool = False) -> None:
        """Remove a container: its writable layer, bundle, log and record.  A running
        one needs ``force`` (it is killed first)."""
        from .errors import ConflictError

        cid = ref.id if isinstance(ref, Container) else self.containers.get(ref).id
        with self.lock(cid):
            c = self.reload(cid)
            if c.state.status in ("running", "starting") and self.is_running(c):
                if not force:
                    raise ConflictError(
                        f"cannot remove container {c.name}: container is running: stop the "
                        "container before removing or force remove (-f)")
                import signal

                from . import procutil

                c.state.stop_requested = True
                self.containers.save(c, durable=False)
                st = c.state
                procutil.signal_verified(st.pid, st.pid_start, st.boot_id, signal.SIGKILL)
                fault("rm:killed")
                procutil.wait_gone(st.pid, st.pid_start, st.boot_id, 10.0)
            if c.state.status in ("running", "starting"):
                self._cleanup_locked(c, remove=False, wait_exit=1.0)
            self._remove_locked(c)

    def _remove_locked(self, c: Container) -> None:
        c.state.status = "removing"
        self.containers.save(c, durable=False)  # lost in a crash: the record is removed again
        fault("rm:removing")
        with self.storage_lock():
            self.driver.put(c.layer_id)
            self.driver.remove(c.layer_id)
        fault("rm:layer")
        if not c.config.auto_remove:  # `pyrt wait` on a --rm container reads it (recovery sweeps it)
            try:
                os.unlink(self.paths(c.id).exit_file)
            except OSError:
                pass
        self.containers.delete(c)
        self.pm.hook.pyrt_container_removed(container=c)

    # kept for callers of the old API
    def _release_rootfs(self, container: Container) -> None:
        try:
            with self.storage_lock():
                self.driver.put(container.layer_id)
        except OSError as e:
            raise StorageError(f"cannot unmount the root filesystem of {container.short_id}: {e}") from None


def _rfc3339(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _ensure_workdir(rootfs: str, cwd: str, user: dict) -> None:
    """Create the working directory in the rootfs if missing, as docker does: resolved
    inside the rootfs (containers.inroot), owned by the container's user.  A path that
    cannot be made is left to the runtime, which reports the missing directory."""
    if cwd == "/":
        return
    from .containers.inroot import make_dirs

    try:
        make_dirs(rootfs, cwd, user.get("uid", 0), user.get("gid", 0))
    except OSError:
        pass
