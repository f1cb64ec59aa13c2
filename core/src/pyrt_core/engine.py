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


class Engine:
    def __init__(self, settings, pm=None):
        self.settings = settings
        self._pm = pm

    # -- lazily built parts ------------------------------------------------------------
    @functools.cached_property
    def pm(self):
        if self._pm is not None:
            return self._pm
        from .plugins import make_plugin_manager

        return make_plugin_manager(blocked=self.settings.disabled_plugins)

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

    # -- containers --------------------------------------------------------------------
    def create(self, config: ContainerConfig, name: str | None = None, pull: str = "missing") -> Container:
        self._validate_resources(config)
        image = self.resolve_image(config.image, pull)
        store = self.containers
        cid = store.new_id()
        cname = store.reserve_name(name, cid)
        container = Container(
            id=cid, name=cname, image_id=image.id, image_name=config.image, created=now(),
            storage_driver=self.driver_name, config=config,
        )
        layer_made = False
        try:
            parent = image.top_layer.split(":", 1)[-1] if image.top_layer else None
            with self.storage_lock():
                self.driver.create_rw(cid, parent, dict(config.storage_opts) or None)
            layer_made = True
            store.save(container)
        except BaseException:
            if layer_made:
                with self.storage_lock():
                    self.driver.remove(cid)
            store.delete(container)
            raise
        self.pm.hook.pyrt_container_created(container=container)
        return container

    def _validate_resources(self, config: ContainerConfig) -> None:
        """Refuse limits the resource manager cannot honour before anything exists."""
        if not (config.resources or config.devices or config.cgroup_parent):
            return
        from .runtime.config import resources_from_spec

        self.pm.hook.pyrt_resources_validate(resources=resources_from_spec(config.resources))

    def _mount_and_write_bundle(self, container: Container, image: Image):
        from .containers import spec as specmod
        from .runtime.executor import load_bundle

        with self.storage_lock():
            rootfs = self.driver.get(container.layer_id)
        self.pm.hook.pyrt_storage_rootfs_mounted(container=container, rootfs=rootfs)
        bundle = self.containers.bundle_dir(container.id)
        os.makedirs(bundle, mode=0o711, exist_ok=True)  # a user namespace must reach the bind sources
        hostname = container.config.hostname or container.id[:12]
        specmod.write_bundle_files(bundle, hostname, container.config.network)
        spec = specmod.build_spec(container, image, rootfs, bundle)
        _ensure_workdir(rootfs, spec["process"]["cwd"], spec["process"]["user"])
        atomic_write(os.path.join(bundle, "config.json"), json.dumps(spec, indent=1), durable=False)
        return load_bundle(bundle, container.id)

    def run(self, config: ContainerConfig, name: str | None = None, stdio=(0, 1, 2),
            pull: str = "missing") -> int:
        """``pyrt run`` in the foreground: create, start, wait, clean up; return the exit code."""
        from .runtime.executor import Executor

        container = self.create(config, name, pull)
        code = 125
        try:
            def started(pid, record):
                container.state.status = "running"
                container.state.pid = pid
                container.state.started_at = now()
                container.state.resources = dict(record)
                container.cgroup_manager = record.get("manager", "none")
                self.containers.save(container, durable=False)
                self.pm.hook.pyrt_container_started(container=container, pid=pid)

            def exited(exit_code, oom):
                container.state.oom_killed = oom

            try:
                image = self.images.get(container.image_id)
                rc = self._mount_and_write_bundle(container, image)
                code = Executor(self.pm).run(rc, stdio, on_started=started, on_exited=exited)
            except PyrtError as e:
                code = e.exit_code
                raise
            finally:
                container.state.status = "exited"
                container.state.pid = 0
                container.state.exit_code = code
                container.state.finished_at = now()
                self._release_rootfs(container)
                if not config.auto_remove:
                    self.containers.save(container)
            self.pm.hook.pyrt_container_exited(container=container, exit_code=code)
            return code
        finally:
            if config.auto_remove:
                self.remove(container)

    def _release_rootfs(self, container: Container) -> None:
        try:
            with self.storage_lock():
                self.driver.put(container.layer_id)
        except OSError as e:
            raise StorageError(f"cannot unmount the root filesystem of {container.short_id}: {e}") from None

    def remove(self, container: Container) -> None:
        """Remove a stopped container: its writable layer, bundle and record."""
        if container.state.status == "running" and container.state.pid and _alive(container.state.pid):
            from .errors import ConflictError

            raise ConflictError(
                f"container {container.short_id} is running: stop it first")
        with self.storage_lock():
            self.driver.put(container.layer_id)
            self.driver.remove(container.layer_id)
        self.containers.delete(container)
        self.pm.hook.pyrt_container_removed(container=container)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _ensure_workdir(rootfs: str, cwd: str, user: dict) -> None:
    """Create the working directory in the rootfs if missing, as docker does, never
    following a symlink out of the rootfs."""
    if cwd == "/":
        return
    real_root = os.path.realpath(rootfs)
    target = os.path.realpath(os.path.join(rootfs, cwd.lstrip("/")))
    if target != real_root and not target.startswith(real_root + os.sep):
        return  # leave it to the runtime, which reports the missing directory
    if not os.path.isdir(target):
        try:
            os.makedirs(target, mode=0o755)
            os.chown(target, user.get("uid", 0), user.get("gid", 0))
        except OSError:
            pass
