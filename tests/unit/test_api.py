"""pyrt_core.api, the plugins' one door into the core: every name resolves, importing it
costs nothing, a name costs only the module it lives in (the runtime's hot path imports
plugin modules that use it), its type-checker imports say the same as its table, and the
plugins' sources go through it (import-linter checks the same in CI; this catches it in
the unit tier, function-local imports included)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pyrt_core import api

ROOT = Path(__file__).resolve().parents[2]
API_SOURCE = ROOT / "core/src/pyrt_core/api.py"
#: what a plugin's source may import of pyrt-core (docs/writing-plugins.md)
ALLOWED = ("pyrt_core.api", "pyrt_core.errors", "pyrt_core.hookspecs", "pyrt_core.testing")


def _new_modules(code: str) -> set[str]:
    """Modules ``code`` imports in a fresh interpreter, beyond the interpreter's own."""
    script = ("import sys; before = set(sys.modules)\n" + code +
              "\nprint(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd="/")
    return set(out.stdout.split())


def _home_module(name: str) -> str:
    return api._HOMES[name].partition(":")[0]


def test_every_name_resolves():
    assert api.__all__ == sorted(api._HOMES)
    for name in api.__all__:
        module, _, attr = api._HOMES[name].partition(":")
        value = getattr(api, name)
        home = sys.modules[module]
        if api._HOMES[name].endswith(":"):
            assert value is home
        else:
            assert value is getattr(home, attr or name), name
    assert set(dir(api)) >= set(api.__all__)
    with pytest.raises(AttributeError):
        api.Engine  # noqa: B018 - the core's internals are not part of the API


def test_importing_the_api_imports_nothing_else():
    assert _new_modules("import pyrt_core.api") <= {"pyrt_core", "pyrt_core.api", "__future__"}


@pytest.mark.parametrize("home", sorted({_home_module(n) for n in api._HOMES}))
def test_a_name_costs_only_its_module(home):
    names = sorted(n for n in api._HOMES if _home_module(n) == home)
    direct = _new_modules(f"import {home}")
    through_api = _new_modules(f"from pyrt_core.api import {', '.join(names)}")
    assert through_api - direct <= {"pyrt_core.api"}, (
        f"from pyrt_core.api import {names} imported more than {home} does")


def _type_checking_imports() -> dict[str, str]:
    """api name -> home, as the ``if TYPE_CHECKING:`` block of api.py imports it."""
    tree = ast.parse(API_SOURCE.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and getattr(n.test, "id", None) == "TYPE_CHECKING")
    out = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            as_name = alias.asname or alias.name
            module = f"pyrt_core.{node.module}"
            if (ROOT / "core/src" / Path(*module.split("."), alias.name)).with_suffix(
                    ".py").exists():
                out[as_name] = f"{module}.{alias.name}:"  # a module itself
            elif alias.asname:
                out[as_name] = f"{module}:{alias.name}"
            else:
                out[as_name] = module
    return out


def test_the_type_checker_sees_the_same_names():
    assert _type_checking_imports() == api._HOMES


def _pyrt_core_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every pyrt_core import in ``path``, function-local ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "pyrt_core":  # from pyrt_core import fsutil
                found += [(node.lineno, f"pyrt_core.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, m) for line, m in found if m == "pyrt_core" or m.startswith("pyrt_core.")]


def test_plugins_import_only_the_public_api():
    sources = [*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("examples/*/src/**/*.py")]
    assert len(sources) > 20
    bad = [f"{path.relative_to(ROOT)}:{line}: {module}"
           for path in sources for line, module in _pyrt_core_imports(path)
           if not any(module == a or module.startswith(a + ".") for a in ALLOWED)]
    assert not bad, "import these through pyrt_core.api:\n" + "\n".join(bad)
