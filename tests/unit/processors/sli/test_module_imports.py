"""The SLI package's modules import one way: no circle, and the store never imports the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import otel_impact.processors.sli as sli

PACKAGE = "otel_impact.processors.sli"


def imports() -> dict[str, set[str]]:
    """Module -> the sibling modules it imports (relative or absolute, typing-only included)."""
    modules = {path.stem: path for path in Path(sli.__file__).parent.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    found.update([node.module.split(".")[0]] if node.module else (a.name for a in node.names))
                elif node.level == 0 and node.module and node.module.startswith(f"{PACKAGE}."):
                    found.add(node.module.split(".")[3])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[3] for a in node.names if a.name.startswith(f"{PACKAGE}."))
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def test_no_import_circles() -> None:
    graph = imports()
    graph.pop("__init__")  # re-exports only; nothing imports it
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(f"import circle: {' -> '.join((*path[path.index(module) :], module))}")
        if module in done:
            return
        for imported in sorted(graph[module] - {"__init__"}):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_store_and_the_state_do_not_know_the_engine() -> None:
    graph = imports()
    assert "engine" not in graph["store"] and "analyzer" not in graph["store"]
    assert not {"engine", "analyzer", "store"} & graph["state"]
    assert "tasks" not in graph["aggregates"]
