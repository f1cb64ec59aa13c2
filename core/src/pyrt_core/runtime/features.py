"""``features``: what this runtime implements, in runc's JSON shape.

The core reports what it implements itself (the OCI versions, the hooks, the mount
options it parses) and the defaults of ``linux`` (nothing); the installed plugins
report the rest through ``pyrt_runtime_features`` (the namespace types, capabilities
and seccomp support of the isolation plugin, the cgroup versions of the resource
plugin), so a plugin that is disabled or missing is not reported.  AppArmor and
SELinux are not implemented.
"""
from __future__ import annotations

from .state import OCI_VERSION

HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop"]


def _linux_defaults() -> dict:
    return {"namespaces": [], "capabilities": [],
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False}}


def merge_linux(linux: dict, reports) -> dict:
    """``linux`` updated with the plugins' reports, the first plugin pluggy calls winning:
    a key whose value is a mapping is updated key by key, any other value replaced."""
    for report in reversed(list(reports)):
        for key, value in (report or {}).items():
            if isinstance(value, dict) and isinstance(linux.get(key), dict):
                linux[key] = {**linux[key], **value}
            else:
                linux[key] = value
    return linux


def features(disabled: str | None = None, pm=None) -> dict:
    from .. import __version__
    from .common import plugin_manager
    from .spec_mounts import known_options

    pm = pm or plugin_manager(disabled)
    linux = merge_linux(_linux_defaults(), pm.hook.pyrt_runtime_features())
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": HOOK_NAMES,
        "mountOptions": known_options(),
        "linux": linux,
        "annotations": {"org.pyrt.runtime.version": __version__},
    }
