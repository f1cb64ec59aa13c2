"""``features``: what this runtime implements, in runc's JSON shape.

Reported from what is installed: the namespace types and capabilities the
namespaces plugin knows, cgroup v1/v2 when the cgroups plugin is installed
(no systemd driver), seccomp only when pyrt's seccomp support
(:mod:`pyrt_core.runtime.seccomp_config`) is present; AppArmor and SELinux
are not implemented.
"""
from __future__ import annotations

import importlib.util

from .state import OCI_VERSION

HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop"]


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def features() -> dict:
    from .spec_mounts import known_options

    mount_options = known_options()
    linux: dict = {}
    if _has("pyrt_namespaces"):
        from pyrt_namespaces import caps, nstypes

        linux["namespaces"] = sorted(nstypes.NAMESPACES)
        linux["capabilities"] = list(caps.CAP_NAMES)
    else:
        linux["namespaces"] = []
        linux["capabilities"] = []
    cgroups = _has("pyrt_cgroups")
    linux["cgroup"] = {"v1": cgroups, "v2": cgroups, "systemd": False, "systemdUser": False}
    if _has("pyrt_core.runtime.seccomp_config") and _seccomp_available():
        from . import seccomp_config as sc

        linux["seccomp"] = {
            "enabled": True,
            "actions": sorted(getattr(sc, "ACTIONS", {})),
            "operators": sorted(getattr(sc, "OPERATORS", {})),
            "archs": sorted(getattr(sc, "ARCHITECTURES", {})),
        }
        flags = getattr(sc, "FLAGS", None)
        if flags:
            linux["seccomp"]["knownFlags"] = sorted(flags)
            linux["seccomp"]["supportedFlags"] = sorted(flags)
    else:
        linux["seccomp"] = {"enabled": False}
    linux["apparmor"] = {"enabled": False}
    linux["selinux"] = {"enabled": False}
    from .. import __version__

    hooks = HOOK_NAMES if _has("pyrt_core.runtime.hooks") else []
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": hooks,
        "mountOptions": mount_options,
        "linux": linux,
        "annotations": {"org.pyrt.runtime.version": __version__},
    }


def _seccomp_available() -> bool:
    """The filters are built by the namespaces plugin with libseccomp: enabled only when
    both are there."""
    try:
        from pyrt_namespaces.seccomp import available
    except ImportError:
        return False
    return available()
