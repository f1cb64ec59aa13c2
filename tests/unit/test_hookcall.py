"""The lean hook caller (pyrt_core.hookcall) against pluggy: same markers, same order,
same results; pluggy whenever the record does not allow it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pluggy
import pytest

from pyrt_core import entrypoints, hookcall, hookspecs
from pyrt_core.errors import PluginError
from pyrt_core.plugins import PluginManager, call_plan, make_plugin_manager


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    entrypoints.forget()
    yield
    entrypoints.forget()


@pytest.mark.parametrize("options", [{}, {"tryfirst": True}, {"trylast": True},
                                     {"specname": "pyrt_info"}, {"wrapper": True},
                                     {"hookwrapper": True}, {"optionalhook": True}])
def test_hookimpl_marks_what_pluggys_marker_marks(options):
    def ours():
        pass

    def theirs():
        pass

    hookspecs.hookimpl(**options)(ours)
    pluggy.HookimplMarker(hookspecs.PROJECT)(**options)(theirs)
    assert ours.pyrt_impl == theirs.pyrt_impl
    if not options:
        hookspecs.hookimpl(ours)  # bare decorator
        assert ours.pyrt_impl == theirs.pyrt_impl


@pytest.mark.parametrize("options", [{}, {"firstresult": True}, {"historic": True},
                                     {"warn_on_impl": UserWarning("old")}])
def test_hookspec_marks_what_pluggys_marker_marks(options):
    def ours():
        pass

    def theirs():
        pass

    hookspecs.hookspec(**options)(ours)
    pluggy.HookspecMarker(hookspecs.PROJECT)(**options)(theirs)
    assert ours.pyrt_spec == theirs.pyrt_spec


def test_markers_refuse_unknown_options():
    with pytest.raises(TypeError, match="unknown hookimpl option"):
        hookspecs.hookimpl(tryfist=True)
    with pytest.raises(ValueError, match="historic firstresult"):
        hookspecs.hookspec(historic=True, firstresult=True)


def _module(name: str, **functions) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in functions.items():
        setattr(mod, k, v)
    sys.modules[name] = mod
    return mod


@pytest.fixture
def plugins():
    """Four module plugins with tryfirst/trylast and a 'not mine' None; the calls land in ``log``."""
    log: list[str] = []

    def info(tag, **kw):
        @hookspecs.hookimpl(**kw)
        def pyrt_info():
            log.append(tag)
            return {tag: {}}
        return pyrt_info

    def validate(tag, result, **kw):
        @hookspecs.hookimpl(**kw)
        def pyrt_resources_validate(resources):
            log.append(tag)
            return result
        return pyrt_resources_validate

    mods = [
        _module("hc_a", pyrt_info=info("a", trylast=True),
                pyrt_resources_validate=validate("a", "from a")),
        _module("hc_b", pyrt_info=info("b", tryfirst=True),
                pyrt_resources_validate=validate("b", None, tryfirst=True)),
        _module("hc_c", pyrt_info=info("c")),
        _module("hc_d", pyrt_resources_validate=validate("d", "from d", trylast=True)),
    ]
    pm = PluginManager()
    for m in mods:
        pm.register(m, name=m.__name__)
    yield pm, log
    for m in mods:
        del sys.modules[m.__name__]


def test_lean_calls_match_pluggy(plugins):
    pm, log = plugins
    calls = {name: call_plan(getattr(pm.hook, name)) for name in ("pyrt_info", "pyrt_resources_validate")}
    lean = hookcall.LeanPluginManager(calls)
    for name, kwargs in (("pyrt_info", {}), ("pyrt_resources_validate", {"resources": None})):
        log.clear()
        expected = getattr(pm.hook, name)(**kwargs)
        order = list(log)
        log.clear()
        assert getattr(lean.hook, name)(**kwargs) == expected
        assert log == order
    assert lean._full is None
    # a hook nobody implements: None for firstresult ones, [] for the others
    assert lean.hook.pyrt_resources_oom_killed(container_id="x", record={}) is None
    assert lean.hook.pyrt_container_removed(container=None) == []
    with pytest.raises(TypeError, match="missing argument"):
        lean.hook.pyrt_resources_validate()
    with pytest.raises(AttributeError):
        lean.hook.pyrt_no_such_hook  # noqa: B018


def test_wrappers_and_object_plugins_are_left_to_pluggy(plugins, monkeypatch):
    pm, _ = plugins

    @hookspecs.hookimpl(wrapper=True)
    def pyrt_info():
        return (yield)

    pm.register(_module("hc_wrap", pyrt_info=pyrt_info), name="hc_wrap")

    class Plugin:
        @hookspecs.hookimpl
        def pyrt_resources_validate(self, resources):
            return None

    pm.register(Plugin(), name="hc_obj")
    try:
        assert call_plan(pm.hook.pyrt_info) is None
        assert call_plan(pm.hook.pyrt_resources_validate) is None
        lean = hookcall.LeanPluginManager({"pyrt_info": None})
        monkeypatch.setattr(lean, "full", lambda: pm)
        assert lean.hook.pyrt_info() == pm.hook.pyrt_info()
    finally:
        del sys.modules["hc_wrap"]


def test_record_round_trip_and_staleness(tmp_path):
    assert entrypoints.hook_calls() is None
    assert isinstance(hookcall.plugin_manager(), pluggy.PluginManager)  # nothing recorded
    plugin = tmp_path / "plugin.py"
    plugin.write_text("")
    calls = {"pyrt_info": {"firstresult": False, "impls": [["pyrt_core.builtin", "pyrt_info", []]]}}
    entrypoints.record_hooks(calls, [str(plugin)])
    assert entrypoints.hook_calls() == calls
    assert isinstance(hookcall.plugin_manager(), hookcall.LeanPluginManager)
    # a disabled plugin: pluggy's manager, which knows how to block it
    assert isinstance(hookcall.plugin_manager(["pyrt-cgroups"]), pluggy.PluginManager)
    os.utime(plugin, ns=(1, 1))
    assert entrypoints.hook_calls() is None


def test_full_load_records_what_the_lean_caller_needs():
    pm = make_plugin_manager()
    calls = entrypoints.hook_calls()
    assert calls is not None
    lean = hookcall.LeanPluginManager(calls)
    assert lean.hook.pyrt_info() == pm.hook.pyrt_info()
    impls = {tuple(i[:2]) for i in calls["pyrt_resources_apply"]["impls"]}
    assert ("pyrt_core.builtin", "pyrt_resources_apply") in impls


def test_runtime_plugin_manager_skips_pluggy_once_recorded(tmp_path):
    code = ("import sys; from pyrt_core.runtime.common import plugin_manager; "
            "pm = plugin_manager(); pm.hook.pyrt_info(); "
            "print(type(pm).__name__, 'pluggy' in sys.modules)")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache2"))
    env.pop("PYRT_DISABLE_PLUGINS", None)
    out = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split() for _ in range(2)]
    assert out[0] == ["PluginManager", "True"]  # first: pluggy, which records the plans
    assert out[1] == ["LeanPluginManager", "False"]


def test_the_lean_manager_is_pluggys_for_everything_but_hook_calls(monkeypatch):
    lean = hookcall.LeanPluginManager({})
    monkeypatch.setattr(lean, "full", lambda: types.SimpleNamespace(records=["r"]))
    assert lean.records == ["r"]  # pyrt info's plugin list: the full manager's
    with pytest.raises(AttributeError):
        lean.__wrapped__  # noqa: B018 - dunders are not delegated


def test_a_plan_travels_and_calls_what_pluggy_calls(plugins):
    # what create keeps in the state for start (pyrt_core.runtime.lifecycle)
    pm, log = plugins
    lean = hookcall.LeanPluginManager({"pyrt_info": call_plan(pm.hook.pyrt_info)})
    for manager in (pm, lean):
        plan = json.loads(json.dumps(hookcall.plan_of(manager, "pyrt_info")))
        log.clear()
        assert hookcall.call_planned("pyrt_info", plan) == pm.hook.pyrt_info()
        assert log[: len(log) // 2] == log[len(log) // 2:]  # same order both times
    # implemented by nobody: an empty plan, which calls nothing
    assert hookcall.plan_of(lean, "pyrt_isolation_start") == {"firstresult": True, "impls": []}
    assert hookcall.call_planned("pyrt_isolation_start", hookcall.plan_of(
        lean, "pyrt_isolation_start"), container_id="c", fifo="f", status_fifo="s") is None
    assert hookcall.plan_of(types.SimpleNamespace(hook=object()), "pyrt_info") is None
    # a plan naming what is not an implementation of the hook is refused
    with pytest.raises(PluginError, match="not an implementation of pyrt_isolation_start"):
        hookcall.call_planned("pyrt_isolation_start", {"firstresult": True, "impls": [
            ["pyrt_core.builtin", "pyrt_info", []]]})


def test_warm_up_imports_what_the_implementations_declare(plugins):
    pm, _ = plugins
    for name in ("hc_warm_x", "hc_warm_y"):
        sys.modules.pop(name, None)
    sys.modules["hc_c"].WARM_UP = {"pyrt_info": ("hc_no_such_module", "json"),
                                   "pyrt_resources_validate": ("hc_never",)}
    sys.modules["hc_a"].WARM_UP = {"pyrt_info": ("hc_also_missing",)}
    hookcall.warm_up(pm, ["pyrt_info"])  # a missing module is only a missed warm-up
    assert "json" in sys.modules
    lean = hookcall.LeanPluginManager({"pyrt_info": call_plan(pm.hook.pyrt_info),
                                       "pyrt_container_removed": None})
    hookcall.warm_up(lean, ["pyrt_info", "pyrt_container_removed", "pyrt_resources_apply"])
    assert lean._full is None  # never builds pluggy's manager for a warm-up


# -- a record root may act on ------------------------------------------------------------

def _record(calls) -> None:
    entrypoints.record_hooks(calls, [])
    entrypoints.forget()  # as a later process


def test_record_naming_a_module_no_plugin_owns_is_not_used(monkeypatch):
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    _record({"pyrt_resources_release": {"firstresult": True,
                                        "impls": [["os", "system", ["container_id"]]]}})
    assert entrypoints.hook_calls() is None
    pm = hookcall.plugin_manager()
    assert isinstance(pm, pluggy.PluginManager)  # which records the plans again
    pm.hook.pyrt_resources_release(container_id="x", record={"manager": "none"})
    assert called == []
    entrypoints.forget()
    assert "os" not in {i[0] for plan in entrypoints.hook_calls().values() if plan
                        for i in plan["impls"]}


def test_record_naming_what_is_not_the_hooks_implementation_fails_and_is_discarded():
    # pyrt_core.builtin is a plugin module, but this function is no pyrt_info
    _record({"pyrt_info": {"firstresult": False,
                           "impls": [["pyrt_core.builtin", "check_device_rules", []]]}})
    pm = hookcall.plugin_manager()
    assert isinstance(pm, hookcall.LeanPluginManager)
    with pytest.raises(PluginError, match="not an implementation of pyrt_info"):
        pm.hook.pyrt_info()
    entrypoints.forget()
    assert entrypoints.hook_calls() is None  # discarded: the next load records it again


def test_record_in_a_directory_others_can_write_is_not_read(tmp_path):
    calls = {"pyrt_info": {"firstresult": False, "impls": [["pyrt_core.builtin", "pyrt_info", []]]}}
    _record(calls)
    assert entrypoints.hook_calls() == calls
    os.chmod(tmp_path / "cache" / "pyrt", 0o777)
    entrypoints.forget()
    assert entrypoints.hook_calls() is None
    assert entrypoints.cache_dir() is None and "writable" in entrypoints.why_no_cache()


def test_index_entry_no_distribution_declares_is_not_used():
    from pyrt_core.jsonlean import loads

    # planted in pyrt-core's own entries (installed in every environment, core-alone too)
    entrypoints.entry_points("pyrt.plugins")  # writes the index
    path = entrypoints._path(entrypoints._INDEX)
    with open(path, "rb") as f:
        doc = loads(f.read())
    dist = next(d for d in doc["dists"] if d[0] == "pyrt-core")
    dist[3].append(["pyrt.plugins", "evil", "os:system"])
    with open(path, "w") as f:
        json.dump(doc, f)
    entrypoints.forget()
    assert "evil" not in {ep.name for ep in entrypoints.entry_points("pyrt.plugins")}
    # rebuilt from the installed distributions
    assert "vfs" in {ep.name for ep in entrypoints.entry_points("pyrt.storage.drivers")}
    assert not entrypoints.is_plugin_module("os")
    with open(path, "rb") as f:
        assert b"os:system" not in f.read()


def test_implemented_says_whether_a_call_can_reach_a_plugin():
    """An event nobody implements lets its caller skip building the argument (the engine
    builds the attrs Container of a lean record only for an implemented event)."""
    from pyrt_core.hookcall import LeanPluginManager, implemented

    pm = LeanPluginManager({"pyrt_container_exited": {"firstresult": False, "impls": []},
                            "pyrt_container_removed": {"firstresult": False,
                                                       "impls": [["m", "f", ["container"]]]},
                            "pyrt_container_started": None})  # None: pluggy must call it
    assert not implemented(pm, "pyrt_container_exited")
    assert not implemented(pm, "pyrt_info")  # recorded as implemented by nobody
    assert implemented(pm, "pyrt_container_removed")
    assert implemented(pm, "pyrt_container_started")
