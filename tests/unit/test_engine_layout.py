"""The engine's operations sit in their own modules below the Engine façade: they use the
engine's public face only (recovery no longer calls its privates) and never import the
façade, so the package has no import cycle."""
import ast
import os

import pyrt_core.engine

ENGINE_DIR = os.path.dirname(pyrt_core.engine.__file__)
OPERATIONS = sorted(n for n in os.listdir(ENGINE_DIR) if n.endswith(".py") and n != "__init__.py")


def _tree(name):
    with open(os.path.join(ENGINE_DIR, name)) as f:
        return ast.parse(f.read())


def test_operations_use_only_the_engines_public_face():
    private = []
    for name in OPERATIONS:
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "engine" and node.attr.startswith("_"):
                private.append(f"{name}:{node.lineno} engine.{node.attr}")
    assert not private


def test_operations_never_import_the_facade():
    back = []
    for name in OPERATIONS:
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.ImportFrom) and (
                    (node.level == 1 and node.module is None)  # from . import x
                    or (node.level == 2 and node.module == "engine")  # from ..engine import x
                    or node.module == "pyrt_core.engine"):
                back.append(f"{name}:{node.lineno}")
    assert not back
    assert {"create.py", "run.py", "start.py", "stop.py", "exec.py", "resources.py",
            "remove.py", "recover.py"} <= set(OPERATIONS)
