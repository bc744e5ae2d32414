"""The test suite's own structure (issue #13): shared helpers are plain modules, a fixture has
one definition, and there is one `ConnectionFactory` — so changing a helper changes it for
every package, and pytest never silently picks one of two fixtures by directory."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _modules():
    for path in sorted(TESTS.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def _is_fixture(node: ast.AST) -> bool:
    for decorator in getattr(node, "decorator_list", ()):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target) in {"pytest.fixture", "fixture"}:
            return True
    return False


def test_no_module_imports_from_a_conftest():
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("conftest"):
                offenders.append(f"{path.relative_to(TESTS)}: from {node.module}")
            elif isinstance(node, ast.Import) and any(
                a.name.endswith("conftest") for a in node.names
            ):
                offenders.append(f"{path.relative_to(TESTS)}: import conftest")
    assert not offenders, "move shared helpers to tests/support/: " + ", ".join(offenders)


def test_each_module_level_fixture_is_defined_once():
    """Module-level fixtures (class-level overrides of a shared test base are by design)."""
    where = defaultdict(list)
    for path, tree in _modules():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and _is_fixture(node):
                where[node.name].append(str(path.relative_to(TESTS)))
    twice = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not twice, f"fixtures defined more than once: {twice}"


def test_one_connection_factory():
    defined = [
        str(path.relative_to(TESTS))
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "ConnectionFactory"
    ]
    assert defined == ["support/factories.py"]
