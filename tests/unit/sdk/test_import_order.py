"""Imports among the SDK's modules go one way: no module imports, even for typing only, a
module that imports it back (directly or through others)."""

from __future__ import annotations

import ast
from pathlib import Path

import otel_impact

PACKAGE = Path(otel_impact.__file__).parent


def sdk_imports() -> dict[str, set[str]]:
    """For each module of the SDK core, the SDK core modules it imports (at any level of the file)."""
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module is None:
                    found.update(alias.name for alias in node.names)
                elif node.level == 1 and node.module is not None:
                    found.add(node.module.split(".")[0])
                elif node.level == 0 and node.module and node.module.startswith("otel_impact."):
                    found.add(node.module.split(".")[1])
        graph[name] = found & modules
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_sdk_modules_import_one_way() -> None:
    graph = sdk_imports()
    assert {"_state", "_task", "_task_handle", "_baggage"} <= graph.keys()
    cycle = find_cycle(graph)
    assert cycle is None, "import circle among the SDK's modules: " + " -> ".join(cycle or [])


def test_the_wire_module_imports_nothing_of_the_sdk() -> None:
    assert sdk_imports()["_attributes"] == set()
