"""The one way pyrt calls hooks: from recorded plans, with pluggy as the fallback.

Every caller -- the engine (``Engine.pm``), the OCI runtime (``runtime.common
.plugin_manager``), recovery -- gets its plugin manager from :func:`plugin_manager`.
Building pluggy's manager costs ~20 ms (pluggy imports ``inspect``) plus the import of
every installed plugin: several times the whole work of ``pyrt-runtime start`` or
``delete``, run four times per container, and a good part of ``pyrt rm``.  So the
last full plugin load (:func:`pyrt_core.plugins.make_plugin_manager`) records, per
hook, the implementations in the order pluggy calls them: module, function name and
the argument names each accepts (:func:`pyrt_core.entrypoints.hook_calls`).
:class:`LeanPluginManager` calls them from that record with pluggy's semantics
(``firstresult`` stops at the first result that is not None; other hooks return the
list of results that are not None), importing only the modules of the hooks it calls;
a hook nobody implements costs nothing (no plugin is loaded for an event no plugin
listens to).

pluggy stays the authority: with no record, a stale one (a plugin module
changed, a distribution was installed or removed), a disabled plugin, or a hook
whose implementations pluggy must call itself (wrappers, plugins that are not
modules), the full plugin manager is built and used instead; anything else asked of
the manager (``records`` for ``pyrt info``, ``get_plugins``...) builds it too.
tests/unit/test_hookcall.py calls the same plugins both ways and compares.

A plan can also travel: :func:`plan_of` gives the plan of one hook and
:func:`call_planned` calls it, which the runtime uses to call, in ``start``, the
implementation of ``pyrt_isolation_start`` that ``create`` found (kept in the
container's state, a file only root can write), without reading the record again.

The record is a cache root acts on, so it is only read when no other user can have
written it, and only when every module it names is the core's plugin or an
installed plugin's (:func:`pyrt_core.entrypoints.hook_calls`); otherwise pluggy
loads the plugins and records the plans again.  What it names in a module must be
marked as an implementation of the hook called (checked before the call): a
record naming anything else is discarded and the call fails.

Plugins may declare, as a module attribute ``WARM_UP`` (``{hook name: (module,
...)}``), the modules their implementations import on first call; :func:`warm_up`
imports them ahead of time for a caller that has time to spare (docs/architecture.md).
"""
from __future__ import annotations

import sys

_UNKNOWN = object()
_IMPL_MARK = "pyrt_impl"  # hookspecs.PROJECT + "_impl", without importing hookspecs


def _forget_record() -> None:
    from .entrypoints import discard_hook_calls

    discard_hook_calls()


class _Call:
    """One hook, called from its recorded plan; an implementation's module is imported
    when the call reaches it (a first result from an earlier one spares the import)."""

    __slots__ = ("name", "firstresult", "impls", "_functions")

    def __init__(self, name: str, plan: dict):
        self.name = name
        self.firstresult = bool(plan["firstresult"])
        self.impls = [(str(m), str(f), tuple(a)) for m, f, a in plan["impls"]]
        self._functions: list = [None] * len(self.impls)

    def _function(self, i: int):
        function = self._functions[i]
        if function is None:
            module, name, _ = self.impls[i]
            # the record names only plugin modules (entrypoints.hook_calls); what it names
            # in them must be an implementation of this very hook, marked as pluggy would
            # find it (the attribute's name, or the marker's specname)
            __import__(module)  # not importlib.import_module: importlib costs an import
            function = getattr(sys.modules[module], name, None)
            opts = getattr(function, _IMPL_MARK, None)
            if not isinstance(opts, dict) or (opts.get("specname") or name) != self.name:
                from .errors import PluginError

                _forget_record()
                raise PluginError(f"the recorded hook plan names {module}:{name}, which is not "
                                  f"an implementation of {self.name}; it was discarded, "
                                  "run the command again")
            self._functions[i] = function
        return function

    def __call__(self, **kwargs):
        results = []
        for i, (_, _, argnames) in enumerate(self.impls):
            try:
                args = [kwargs[a] for a in argnames]
            except KeyError as e:  # as pluggy: the caller must pass every argument
                raise TypeError(f"hook call {self.name} is missing argument {e}") from None
            result = self._function(i)(*args)
            if result is not None:
                if self.firstresult:
                    return result
                results.append(result)
        return None if self.firstresult else results


class _Hooks:
    """``pm.hook``: an attribute per hook."""

    def __init__(self, manager: "LeanPluginManager"):
        self._manager = manager

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        plan = self._manager.calls.get(name, _UNKNOWN)
        if plan is _UNKNOWN:  # recorded as implemented by nobody
            plan = {"firstresult": _firstresult(name), "impls": []}
        caller = _Call(name, plan) if plan is not None else getattr(self._manager.full().hook, name)
        setattr(self, name, caller)
        return caller


def _firstresult(name: str) -> bool:
    from . import hookspecs

    spec = getattr(hookspecs, name, None)
    opts = getattr(spec, f"{hookspecs.PROJECT}_spec", None)
    if opts is None:
        raise AttributeError(f"no hook named {name}")
    return bool(opts.get("firstresult"))


class LeanPluginManager:
    """pluggy's ``PluginManager`` as its callers use it: ``.hook.NAME(**kwargs)`` from the
    recorded plans; :meth:`full` builds the real one when a hook needs it, and anything
    else (``records``, ``get_plugins``, ...) is the real one's."""

    def __init__(self, calls: dict):
        self.calls = calls
        self.hook = _Hooks(self)
        self._full = None

    def full(self):
        if self._full is None:
            from .plugins import make_plugin_manager

            self._full = make_plugin_manager()
        return self._full

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("calls", "hook", "_full"):
            raise AttributeError(name)
        return getattr(self.full(), name)


class ObservedPluginManager:
    """A plugin manager (lean or pluggy's) whose calls of a few hooks go through an
    observer: ``observers[name](call, hooks, kwargs)`` calls the hook (``call(**kwargs)``)
    and may look around it (the engine journals the hooks that are events of their own:
    a network created, a container attached, an image pulled; engine.hook_events).
    Everything else is the wrapped manager's; the functions below look through it."""

    def __init__(self, inner, observers: dict):
        self.inner = inner
        self.hook = _ObservedHooks(inner.hook, observers)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("inner", "hook"):
            raise AttributeError(name)
        return getattr(self.inner, name)


class _ObservedHooks:
    def __init__(self, hooks, observers: dict):
        self._hooks = hooks
        self._observers = observers

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        caller = getattr(self._hooks, name)
        observer = self._observers.get(name)
        if observer is not None:
            hooks, plain = self._hooks, caller

            def caller(**kwargs):
                return observer(plain, hooks, kwargs)
        setattr(self, name, caller)
        return caller


def _inner(pm):
    return pm.inner if isinstance(pm, ObservedPluginManager) else pm


def plugin_manager(blocked=()):
    """A plugin manager for the runtime: the lean one when the record allows, else pluggy's."""
    blocked = [b for b in blocked if b]
    if not blocked:
        from .entrypoints import hook_calls

        calls = hook_calls()
        if calls is not None:
            return LeanPluginManager(calls)
    from .plugins import make_plugin_manager

    return make_plugin_manager(blocked=blocked)


def plan_of(pm, name: str) -> dict | None:
    """The call plan of hook ``name`` in ``pm`` (lean or pluggy's), to call it later with
    :func:`call_planned`; None when only pluggy can call it (or ``pm`` is neither)."""
    pm = _inner(pm)
    if isinstance(pm, LeanPluginManager):
        plan = pm.calls.get(name, _UNKNOWN)
        return {"firstresult": _firstresult(name), "impls": []} if plan is _UNKNOWN else plan
    caller = getattr(getattr(pm, "hook", None), name, None)
    if caller is None or not hasattr(caller, "get_hookimpls"):
        return None
    from .plugins import call_plan

    return call_plan(caller)


def call_planned(name: str, plan: dict, **kwargs):
    """Call hook ``name`` from a plan :func:`plan_of` gave, with pluggy's semantics; what
    it names must be marked as an implementation of ``name`` (else PluginError)."""
    return _Call(name, plan)(**kwargs)


def implemented(pm, name: str) -> bool:
    """Whether calling hook ``name`` in ``pm`` may reach an implementation (False only when
    it surely reaches none: then a caller may skip preparing its arguments)."""
    pm = _inner(pm)
    if isinstance(pm, LeanPluginManager):
        plan = pm.calls.get(name, _UNKNOWN)
        if plan is _UNKNOWN:
            return False  # recorded as implemented by nobody
        return not isinstance(plan, dict) or bool(plan["impls"])  # None: pluggy calls it
    caller = getattr(getattr(pm, "hook", None), name, None)
    get = getattr(caller, "get_hookimpls", None)
    return bool(get()) if get is not None else True


def _impl_modules(pm, name: str) -> list:
    """The plugin modules (imported or not) implementing ``name`` in ``pm``, without
    building pluggy's manager: module names for the lean one, modules for pluggy's."""
    pm = _inner(pm)
    if isinstance(pm, LeanPluginManager):
        plan = pm.calls.get(name)
        return [impl[0] for impl in plan["impls"]] if isinstance(plan, dict) else []
    caller = getattr(getattr(pm, "hook", None), name, None)
    get = getattr(caller, "get_hookimpls", None)
    return [impl.plugin for impl in get()] if get is not None else []


def warm_up(pm, hooks) -> None:
    """Import, ahead of time, what the implementations of ``hooks`` will import on their
    first call: the modules each implementing plugin module declares in ``WARM_UP``
    (``{hook name: (module, ...)}``).  Failures are ignored: the real call reports."""
    for name in hooks:
        for module in _impl_modules(pm, name):
            try:
                if isinstance(module, str):
                    __import__(module)
                    module = sys.modules[module]
                for wanted in (getattr(module, "WARM_UP", None) or {}).get(name, ()):
                    __import__(wanted)
            except Exception:  # noqa: BLE001 - only a warm-up
                pass

