"""Calling hooks without pluggy, for the OCI runtime's hot path.

An engine runs ``pyrt-runtime`` four times per container; building pluggy's
plugin manager costs each call ~20 ms (pluggy imports ``inspect``) plus the
import of every installed plugin, several times ``create``'s own work.  The
last full plugin load (:func:`pyrt_core.plugins.make_plugin_manager`, any
``pyrt`` command) records, per hook, the implementations in the order pluggy
calls them: module, function name and the argument names each accepts
(:func:`pyrt_core.entrypoints.hook_calls`).  :class:`LeanPluginManager` calls
them from that record with pluggy's semantics (``firstresult`` stops at the
first result that is not None; other hooks return the list of results that
are not None), importing only the modules of the hooks it calls.

pluggy stays the authority: with no record, a stale one (a plugin module
changed, a distribution was installed or removed), a disabled plugin, or a hook
whose implementations pluggy must call itself (wrappers, plugins that are not
modules), the full plugin manager is built and used instead.

The record is a cache root acts on, so it is only read when no other user can have
written it, and only when every module it names is the core's plugin or an
installed plugin's (:func:`pyrt_core.entrypoints.hook_calls`); otherwise pluggy
loads the plugins and records the plans again.  What it names in a module must be
marked as an implementation of the hook called (checked before the call): a
record naming anything else is discarded and the call fails.
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
    """The part of pluggy's ``PluginManager`` the runtime uses (``.hook.NAME(**kwargs)``),
    from the recorded plans; :meth:`full` builds the real one when a hook needs it."""

    def __init__(self, calls: dict):
        self.calls = calls
        self.hook = _Hooks(self)
        self._full = None

    def full(self):
        if self._full is None:
            from .plugins import make_plugin_manager

            self._full = make_plugin_manager()
        return self._full


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
