"""Every installed plugin's hook implementations agree with the annotated hook specs.

pluggy checks only that an implementation's parameter names are among its spec's; the
annotations (pyrt_core.hookspecs, checked by mypy in ``tox -e typecheck``) are what a
plugin author reads, so an implementation must repeat its spec's annotation for each
parameter it takes and for the return value.  A plugin whose hook drifts from its spec
(a renamed parameter, a changed type on either side) fails here, in the unit tier, and
an implementation module that mypy would not see fails the last test.
"""
from __future__ import annotations

import ast
import inspect
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from pyrt_core import builtin, hookspecs

ROOT = Path(__file__).resolve().parents[2]


def _specs() -> dict:
    return {name: f for name, f in vars(hookspecs).items()
            if callable(f) and hasattr(f, "pyrt_spec")}


def _plugin_modules() -> list:
    """(name, module) of the core's built-in plugin and every installed plugin."""
    mods = [("core", builtin)]
    for ep in entry_points(group="pyrt.plugins"):
        mods.append((ep.name, ep.load()))
    return mods


def _impls() -> list:
    out = []
    for plugin, mod in _plugin_modules():
        for name, f in vars(mod).items():
            opts = getattr(f, "pyrt_impl", None)
            if callable(f) and opts is not None:
                out.append(pytest.param(plugin, opts.get("specname") or name, f,
                                        id=f"{plugin}.{name}"))
    return out


class _Unqualify(ast.NodeTransformer):
    """``pyrt_core.api.Resources`` and ``api.Resources`` are ``Resources``."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return ast.Name(id=node.attr, ctx=ast.Load())


def normalise(annotation) -> str | None:
    """An annotation as comparable text: spacing, quoting and module prefixes dropped
    (with ``from __future__ import annotations`` every annotation is a string)."""
    if annotation is inspect.Parameter.empty:
        return None
    if not isinstance(annotation, str):  # a module without the __future__ import
        annotation = inspect.formatannotation(annotation)
    tree = ast.parse(annotation.strip().strip("'\""), mode="eval")
    return ast.unparse(_Unqualify().visit(tree))


def test_the_specs_are_annotated():
    for name, spec in _specs().items():
        sig = inspect.signature(spec)
        assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
        for p in sig.parameters.values():
            assert p.annotation is not inspect.Parameter.empty, f"{name}({p.name}): no type"


def test_every_installed_plugin_is_loaded():
    # the check below must not pass by seeing nothing
    names = {n for n, _ in _plugin_modules()}
    assert "core" in names
    assert len(_impls()) >= 9  # the core's own none manager and fetch


@pytest.mark.parametrize("plugin, hook, impl", _impls())
def test_implementation_matches_its_spec(plugin, hook, impl):
    specs = _specs()
    assert hook in specs, f"{plugin} implements {hook}, which no hook spec names"
    spec_sig = inspect.signature(specs[hook])
    impl_sig = inspect.signature(impl)
    extra = set(impl_sig.parameters) - set(spec_sig.parameters)
    assert not extra, f"{plugin}.{hook} takes {sorted(extra)}, which the spec does not pass"
    for name, p in impl_sig.parameters.items():
        want = normalise(spec_sig.parameters[name].annotation)
        got = normalise(p.annotation)
        assert got == want, f"{plugin}.{hook}({name}): annotated {got!r}, the spec says {want!r}"
    want = normalise(spec_sig.return_annotation)
    got = normalise(impl_sig.return_annotation)
    assert got == want, f"{plugin}.{hook} returns {got!r}, the spec says {want!r}"


def test_normalise_ignores_form_not_meaning():
    assert normalise("dict[str,object] | None") == normalise("dict[str, object]|None")
    assert normalise("pyrt_core.api.Resources") == normalise("Resources")
    assert normalise("'Resources'") == "Resources"
    assert normalise("int | None") != normalise("int")
    assert normalise(inspect.Parameter.empty) is None


def _modules_with_hookimpls() -> set[str]:
    """The tree's source files that mark a function with ``@hookimpl``."""
    found = set()
    for path in [*ROOT.glob("core/src/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                    getattr(d.func if isinstance(d, ast.Call) else d, "id", None) == "hookimpl"
                    for d in node.decorator_list):
                found.add(str(path.relative_to(ROOT)))
                break
    return found


def test_mypy_checks_every_module_with_hook_implementations():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    files = set(config["files"])
    assert "core/src/pyrt_core/hookspecs.py" in files and "core/src/pyrt_core/api.py" in files
    missing = _modules_with_hookimpls() - files
    assert not missing, f"add to [tool.mypy] files in pyproject.toml: {sorted(missing)}"
