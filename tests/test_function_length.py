"""No function in the shipped packages (brightpearl/, returns/, connector/; migrations aside)
is longer than ~60 lines (docs/architecture.md): a longer one is split where it is written, or
listed in ALLOWED with the reason beside it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("brightpearl", "returns", "connector")
MAX_LINES = 60
# "path:function" → why it may be longer. Keep it empty or short.
ALLOWED: dict[str, str] = {}


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method, nested ones included, longer than `limit`
    lines from its `def` (decorators aside) to its last line."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_count_sees_a_long_method_and_spares_a_short_one():
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES - 1))
    source = (
        f"class A:\n    def long(self):\n{body}\n        return x0\n\n"
        "    def short(self):\n        pass\n"
    )
    assert long_functions(source) == [("long", MAX_LINES + 1)]
    assert long_functions(source, limit=MAX_LINES + 1) == []


def test_no_function_in_the_shipped_packages_is_over_60_lines():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            for name, lines in long_functions(path.read_text()):
                if f"{relative}:{name}" not in ALLOWED:
                    found.append(f"{relative}:{name} ({lines} lines)")
    assert not found, "split these (or list them in ALLOWED with a reason): " + ", ".join(found)
