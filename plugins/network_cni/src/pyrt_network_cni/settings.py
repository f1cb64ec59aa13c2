"""pyrt-network-cni's settings: which backend serves the host, where the CNI plugins and
configurations are.  Read from the environment (the core carries the config file's
``[network]`` and ``[cni]`` tables there, :data:`SECTION`)::

    [network]
    backend = "cni"                       # PYRT_NETWORK_BACKEND
    [cni]
    plugin_dirs = "/usr/lib/cni:/opt/cni/bin"   # PYRT_CNI_PATH
    config_dirs = "/etc/cni/net.d"              # PYRT_CNI_CONFIG_DIRS (read only)

Nothing to import here: the plugin module asks :func:`chosen` on every hook call.
"""
import os

BACKEND = "cni"
ENV_BACKEND = "PYRT_NETWORK_BACKEND"
ENV_PATH = "PYRT_CNI_PATH"
ENV_CONFIG_DIRS = "PYRT_CNI_CONFIG_DIRS"

DEFAULT_PATH = "/usr/lib/cni:/opt/cni/bin"
DEFAULT_CONFIG_DIRS = "/etc/cni/net.d"

#: [cni] key -> environment variable
SECTION = {"plugin_dirs": ENV_PATH, "config_dirs": ENV_CONFIG_DIRS}
#: [network] key -> environment variable (pyrt-network declares the same)
NETWORK_SECTION = {"backend": ENV_BACKEND}


def chosen() -> bool:
    """True when this backend serves the host: named by PYRT_NETWORK_BACKEND, or, with
    none named, when pyrt-network (the bridge backend, the default when both are
    installed) is not installed."""
    name = os.environ.get(ENV_BACKEND)
    if name:
        return name == BACKEND
    import importlib.util

    return importlib.util.find_spec("pyrt_network") is None


def plugin_dirs() -> list[str]:
    return [d for d in os.environ.get(ENV_PATH, DEFAULT_PATH).split(":") if d]


def config_dirs() -> list[str]:
    return [d for d in os.environ.get(ENV_CONFIG_DIRS, DEFAULT_CONFIG_DIRS).split(":") if d]
