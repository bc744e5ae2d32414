"""Dependencies point one way (docs/architecture.md): brightpearl/ and returns/platforms/ know
no Django, returns/ never imports connector/, and connector's services never import its tasks
(they return what should happen next; the caller enqueues) — nor hide an import inside a
function to dodge a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules(package: str, *, skip: tuple[str, ...] = ()) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / package).rglob("*.py"))
        if not any(part in skip for part in path.relative_to(ROOT).parts)
    ]


def imported_names(path: Path) -> list[tuple[str, bool]]:
    """(absolute module name, imported inside a function?) for every import in the file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")
                if child.level:
                    base = base[: len(base) - child.level + 1]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                found.append((name, inside))
                found.extend((f"{name}.{alias.name}", inside) for alias in child.names)
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return found


@pytest.mark.parametrize("path", modules("connector/services"), ids=lambda p: p.name)
def test_services_never_import_tasks_nor_import_inside_functions(path):
    names = imported_names(path)
    assert not [n for n, _ in names if n == "connector.tasks" or n.startswith("connector.tasks.")]
    assert not [n for n, inside in names if inside and n.startswith("connector")], (
        "an import inside a function (dodging a cycle?)"
    )


# apps.py imports its signal handlers and checks in `ready()`, as Django asks.
OUTSIDE_SERVICES = [
    path for path in modules("connector", skip=("services", "migrations")) if path.name != "apps.py"
]


@pytest.mark.parametrize(
    "path", OUTSIDE_SERVICES, ids=lambda p: str(p.relative_to(ROOT / "connector"))
)
def test_the_rest_of_connector_imports_its_own_modules_at_the_top(path):
    names = imported_names(path)
    assert not [n for n, inside in names if inside and n.startswith("connector")], (
        "an import inside a function (dodging a cycle?)"
    )


@pytest.mark.parametrize("path", modules("returns"), ids=lambda p: str(p.relative_to(ROOT)))
def test_returns_never_imports_connector(path):
    assert not [n for n, _ in imported_names(path) if n.split(".")[0] == "connector"]


@pytest.mark.parametrize(
    "path",
    modules("brightpearl") + modules("returns/platforms"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_clients_and_adapters_know_no_django(path):
    assert not [n for n, _ in imported_names(path) if n.split(".")[0] in ("django", "celery")]
