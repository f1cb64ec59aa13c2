"""Every hook spec is documented: what it receives, who calls it, how results combine."""
import inspect

import pluggy

from pyrt_core import hookspecs


def _specs():
    return [(n, f) for n, f in vars(hookspecs).items() if n.startswith("pyrt_") and callable(f)]


def test_there_are_hooks_for_each_capability():
    names = {n for n, _ in _specs()}
    for prefix in ("pyrt_isolation_", "pyrt_resources_", "pyrt_storage_", "pyrt_image_fetch",
                   "pyrt_container_"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_every_hook_is_documented():
    for name, fn in _specs():
        doc = inspect.getdoc(fn) or ""
        params = list(inspect.signature(fn).parameters)
        assert len(doc) > 80, f"{name} lacks documentation"
        assert "Receives" in doc, f"{name}: say what it receives"
        assert "Called by" in doc or "Called once" in doc, f"{name}: say who calls it"
        assert any(w in doc for w in ("first", "ignored", "merged", "every", "return")), \
            f"{name}: say how results combine"
        for p in params:
            assert p in doc, f"{name}: parameter {p!r} is not described"


def test_firstresult_hooks_say_so():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, fn in _specs():
        opts = getattr(fn, hookspecs.PROJECT + "_spec")
        doc = inspect.getdoc(fn)
        if opts.get("firstresult"):
            assert "first" in doc.lower(), f"{name} is firstresult but its doc does not say so"
