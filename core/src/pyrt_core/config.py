"""Engine settings and where they come from.

Precedence, highest first (documented in docs/configuration.md):

1. command-line flags (``--root``, ``--runroot``, ``--storage-driver``,
   ``--storage-opt``, ``--config``);
2. environment: ``PYRT_ROOT``, ``PYRT_RUNROOT``, ``PYRT_STORAGE_DRIVER``,
   ``PYRT_STORAGE_OPTS`` (comma-separated), ``PYRT_DISABLE_PLUGINS``
   (comma-separated plugin names), ``PYRT_CONFIG`` (config file path);
3. the TOML config file: ``--config PATH``, else ``$PYRT_CONFIG``, else
   ``/etc/pyrt/pyrt.toml`` if it exists;
4. built-in defaults.  With no driver named anywhere, the driver that
   already holds data in the store is used, else the first that works on
   this host (see :mod:`pyrt_core.storage.select`).

Config file format::

    [storage]
    driver = "overlay"
    root = "/var/lib/pyrt"
    runroot = "/run/pyrt"
    options = ["overlay.mountopt=nodev"]

    [plugins]
    disabled = ["someplugin"]

    [containers]
    pids_limit = 2048  # the default --pids-limit (podman's); 0 or -1: no default limit

    [runtimes]  # OCI runtimes for --runtime NAME (podman's [engine.runtimes])
    runc = "/usr/sbin/runc"  # runc and crun are also found on PATH without an entry
    kata = ["/usr/local/bin/kata-runtime", "/usr/bin/kata-runtime"]  # the first present

Other tables belong to plugins, which declare them (``pyrt.config`` entry points, see
:mod:`pyrt_core.hookspecs`): the entry's name is the table, its value maps the table's
keys to the environment variables that carry them to the plugin, for example
pyrt-cgroups' ``[cgroups] manager = "auto"`` -> ``PYRT_CGROUP_MANAGER`` (the
environment wins over the file).  The core names no plugin's table; a table no
installed plugin declares is ignored, as are keys its plugin does not declare (a plugin
may read its table itself: pyrt-image-registry's ``[registries]``).
"""
from __future__ import annotations

import os

from .errors import UsageError

DEFAULT_ROOT = "/var/lib/pyrt"
DEFAULT_RUNROOT = "/run/pyrt"
#: the config file's tables the core reads itself; the others are the plugins' (above)
CORE_SECTIONS = ("storage", "plugins", "containers", "runtimes")
#: the entry-point group of the plugins' configuration sections
CONFIG_GROUP = "pyrt.config"
#: the pids limit of a container run without --pids-limit, where a resource plugin with
#: the pids controller is installed (podman's default; docker has none): a fork bomb in
#: one container cannot take every pid of the host
DEFAULT_PIDS_LIMIT = 2048
SYSTEM_CONFIG = "/etc/pyrt/pyrt.toml"


class Settings:
    """The resolved settings.  A plain class, not attrs: ``pyrt run -d`` resolves them
    and starts the container's monitor before it loads the models and the engine (~25 ms
    of start-up the monitor's runtime then overlaps, see docs/lifecycle.md)."""

    __slots__ = ("root", "runroot", "storage_driver", "storage_driver_source", "storage_options",
                 "disabled_plugins", "plugin_env", "config_file", "pids_limit", "runtimes")

    def __init__(self, root: str = DEFAULT_ROOT, runroot: str = DEFAULT_RUNROOT,
                 storage_driver: str | None = None, storage_driver_source: str = "default",
                 storage_options: list[str] | None = None, disabled_plugins: list[str] | None = None,
                 plugin_env: dict[str, str] | None = None, config_file: str | None = None,
                 pids_limit: int = DEFAULT_PIDS_LIMIT, runtimes: dict | None = None):
        self.root = root
        self.runroot = runroot
        self.storage_driver = storage_driver
        self.storage_driver_source = storage_driver_source  # flag | environment | config file | default
        self.storage_options = list(storage_options or [])
        self.disabled_plugins = list(disabled_plugins or [])
        # the plugins' settings from their config file tables, as the environment variables
        # that carry them (the environment's own value winning): see export_plugin_env
        self.plugin_env = dict(plugin_env or {})
        self.config_file = config_file
        self.pids_limit = pids_limit  # [containers] pids_limit; <= 0: no default limit
        # [runtimes]: name -> path or candidate paths (monitor.ociruntime.resolve)
        self.runtimes = dict(runtimes or {})

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def __eq__(self, other) -> bool:
        return isinstance(other, Settings) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def export_plugin_env(self) -> None:
        """Put :attr:`plugin_env` in this process's environment, where the plugins read
        it, and from where it reaches the processes pyrt starts (conmon, pyrt-runtime)."""
        os.environ.update(self.plugin_env)

    def driver_options(self, driver: str) -> dict[str, str]:
        """Options for one driver: ``overlay.k=v`` (or ``k=v``, for the chosen driver)."""
        out = {}
        for opt in self.storage_options:
            key, sep, value = opt.partition("=")
            if not sep:
                raise UsageError(f"invalid storage option {opt!r}: expected KEY=VALUE")
            prefix, dot, name = key.partition(".")
            if dot and prefix == driver:
                out[name] = value
            elif dot and prefix in ("dm",) and driver == "devicemapper":
                out[name] = value
            elif not dot:
                out[key] = value
        return out


def _read_toml(path: str) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from None


def _split(v: str | None) -> list[str]:
    return [x.strip() for x in (v or "").split(",") if x.strip()]


def _plugin_sections(data: dict, path: str) -> dict[str, str]:
    """The environment variables the plugins' tables of the config file set: each
    installed plugin's ``pyrt.config`` entry point names its table and maps its keys to
    variables.  The entry-point index is read only when the file has such tables."""
    if all(name in CORE_SECTIONS for name in data):
        return {}
    from .entrypoints import entry_points

    out: dict[str, str] = {}
    for ep in entry_points(CONFIG_GROUP):
        table = data.get(ep.name)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise UsageError(f"config file {path}: [{ep.name}] must be a table")
        try:
            keys = ep.load()
        except Exception:  # noqa: BLE001 - a broken plugin: pyrt info reports it
            continue
        for key, var in dict(keys).items():
            if key not in table:
                continue
            value = table[key]
            if not isinstance(value, str):
                raise UsageError(f"config file {path}: {ep.name}.{key} must be a string")
            out[var] = value
    return out


def load_settings(
    *,
    root: str | None = None,
    runroot: str | None = None,
    storage_driver: str | None = None,
    storage_opts: list[str] | None = None,
    config: str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Merge flags, environment, config file and defaults into Settings."""
    env = os.environ if env is None else env
    s = Settings()
    path = config or env.get("PYRT_CONFIG") or (SYSTEM_CONFIG if os.path.exists(SYSTEM_CONFIG) else None)
    if path:
        data = _read_toml(path)
        s.config_file = path
        storage = data.get("storage", {})
        if not isinstance(storage, dict):
            raise UsageError(f"config file {path}: [storage] must be a table")
        s.root = storage.get("root", s.root)
        s.runroot = storage.get("runroot", s.runroot)
        if storage.get("driver"):
            s.storage_driver, s.storage_driver_source = storage["driver"], f"config file {path}"
        opts = storage.get("options", [])
        if not isinstance(opts, list):
            raise UsageError(f"config file {path}: storage.options must be a list of strings")
        s.storage_options = [str(o) for o in opts]
        s.disabled_plugins = list(data.get("plugins", {}).get("disabled", []))
        s.plugin_env = _plugin_sections(data, path)
        containers = data.get("containers", {})
        if not isinstance(containers, dict):
            raise UsageError(f"config file {path}: [containers] must be a table")
        if "pids_limit" in containers:
            limit = containers["pids_limit"]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < -1:
                raise UsageError(f"config file {path}: containers.pids_limit must be an integer "
                                 "(-1 or 0: no default limit)")
            s.pids_limit = limit
        runtimes = data.get("runtimes", {})
        if not isinstance(runtimes, dict) or not all(
                isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v))
                for v in runtimes.values()):
            raise UsageError(f"config file {path}: [runtimes] maps names to a path or a list of paths")
        for rname, v in runtimes.items():
            if not all(os.path.isabs(x) for x in ([v] if isinstance(v, str) else v)):
                raise UsageError(f"config file {path}: runtimes.{rname} must be absolute paths")
        s.runtimes = dict(runtimes)
    if env.get("PYRT_ROOT"):
        s.root = env["PYRT_ROOT"]
    if env.get("PYRT_RUNROOT"):
        s.runroot = env["PYRT_RUNROOT"]
    if env.get("PYRT_STORAGE_DRIVER"):
        s.storage_driver, s.storage_driver_source = env["PYRT_STORAGE_DRIVER"], "environment PYRT_STORAGE_DRIVER"
    if env.get("PYRT_STORAGE_OPTS"):
        s.storage_options = _split(env["PYRT_STORAGE_OPTS"])
    for var in s.plugin_env:
        if env.get(var):
            s.plugin_env[var] = env[var]
    if env.get("PYRT_DISABLE_PLUGINS"):
        s.disabled_plugins = _split(env["PYRT_DISABLE_PLUGINS"])
    if root:
        s.root = root
    if runroot:
        s.runroot = runroot
    if storage_driver:
        s.storage_driver, s.storage_driver_source = storage_driver, "flag --storage-driver"
    if storage_opts:
        s.storage_options = list(storage_opts)
    for name, val in (("root", s.root), ("runroot", s.runroot)):
        if not os.path.isabs(val):
            raise UsageError(f"--{name} must be an absolute path, got {val!r}")
    s.root = os.path.normpath(s.root)
    s.runroot = os.path.normpath(s.runroot)
    return s
