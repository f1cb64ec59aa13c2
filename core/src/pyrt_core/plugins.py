"""The plugin manager: pluggy, fed from the ``pyrt.plugins`` entry points.

Plugins are loaded in entry-point order after the core's built-in plugin.
A plugin can be blocked by name (``PYRT_DISABLE_PLUGINS=a,b`` or
``[plugins] disabled`` in the config file); a plugin that fails to import is
recorded with the reason and skipped, not fatal, so ``pyrt info`` can show
it.  Hook implementations with misspelt names are caught by
``check_pending``.
"""
from __future__ import annotations

import attrs
import pluggy

from . import hookspecs
from .entrypoints import PLUGIN_GROUP
from .errors import PluginError


@attrs.define
class PluginRecord:
    name: str
    distribution: str | None
    version: str | None
    status: str  # loaded | blocked | failed
    reason: str = ""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus a record of what was loaded, blocked or failed."""

    def __init__(self):
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []

    def load_entry_points(self, blocked=(), group: str = PLUGIN_GROUP) -> None:
        from .entrypoints import entry_points

        blocked = set(blocked)
        for ep in entry_points(group):
            dname, dver = ep.distribution, ep.version
            if ep.name in blocked:
                self.set_blocked(ep.name)
                self.records.append(PluginRecord(ep.name, dname, dver, "blocked", "disabled by configuration"))
                continue
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except Exception as e:  # a broken plugin must not take the engine down
                reason = f"{type(e).__name__}: {e}".splitlines()[0]
                self.records.append(PluginRecord(ep.name, dname, dver, "failed", reason))
                continue
            self.records.append(PluginRecord(ep.name, dname, dver, "loaded"))
        try:
            self.check_pending()
        except pluggy.PluginValidationError as e:
            raise PluginError(f"a plugin implements an unknown hook: {e}") from None


def make_plugin_manager(blocked=(), load_entry_points: bool = True) -> PluginManager:
    """Create the manager with the built-in plugin and, normally, installed plugins."""
    from . import builtin

    pm = PluginManager()
    pm.register(builtin, name="core")
    from . import __version__

    pm.records.append(PluginRecord("core", "pyrt-core", __version__, "loaded"))
    if load_entry_points:
        pm.load_entry_points(blocked)
        if not blocked and all(r.status == "loaded" for r in pm.records):
            _record_hooks(pm)
    return pm


def _record_hooks(pm: PluginManager) -> None:
    """Record, per implemented hook, the implementations in pluggy's call order
    (pyrt_core.hookcall calls them from this record without pluggy)."""
    import sys

    from .entrypoints import record_hooks

    calls = {name: call_plan(caller) for name, caller in vars(pm.hook).items()
             if not name.startswith("_") and caller.get_hookimpls()}
    files = [hookspecs.__file__]  # a spec's options (firstresult) are in the record too
    for plugin in pm.get_plugins():
        mod = plugin if hasattr(plugin, "__file__") else sys.modules.get(type(plugin).__module__)
        path = getattr(mod, "__file__", None)
        if not path:
            return  # cannot tell when it changes: record nothing
        files.append(path)
    record_hooks(calls, files)


def call_plan(caller) -> dict | None:
    """``{"firstresult": bool, "impls": [[module, function name, [argnames]], ...]}`` in
    the order pluggy calls them (the reverse of ``get_hookimpls``), or None when pluggy
    itself must call this hook: an implementation is a wrapper, or is not a module-level
    function of a module plugin."""
    import types

    spec = caller.spec
    if spec is None or spec.opts.get("historic"):
        return None
    impls = []
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper or not isinstance(impl.plugin, types.ModuleType):
            return None
        attr = next((k for k, v in vars(impl.plugin).items() if v is impl.function), None)
        if attr is None:
            return None
        impls.append([impl.plugin.__name__, attr, list(impl.argnames)])
    return {"firstresult": bool(spec.opts.get("firstresult")), "impls": impls}
