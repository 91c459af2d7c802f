"""The import graph of the package: no circles, and data flows one way through the processor's stages.

Read from the source with `ast`, so a new circle or a stage importing one it must not fails here
with the path that breaks the rule. Every import counts: inside functions (they run too) and under
``if TYPE_CHECKING:`` (a circle of types is still two modules that each need the other).
"""

from __future__ import annotations

import ast
from pathlib import Path

from support.paths import ROOT

SOURCES = {"otel_impact": ROOT / "otel_impact", "otel_impact.instrumentation": ROOT / "instrumentation"}
SOURCES |= {"otel_impact.processors": ROOT / "processors", "otel_impact.proto": ROOT / "proto"}

P = "otel_impact.processors."
FOUNDATIONS = {
    "answers",
    "clock",
    "durations",
    "batch",
    "impact_queries",
    "accounting",
    "security",
    "retry",
    "config",
    "periodic",
    "child_processes",
    "traffic",
    "proportions",
}
ASSEMBLY = {"service", "components", "cli", "serve_config", "intake_processes"}
STAGES = {"intake", "pipeline", "export", "sli", "analysis", "slo", "gate", "postmortem", "shared", "api"}
ALLOWED: dict[str, set[str]] = {
    "foundation": set(),
    "export": set(),
    "pipeline": {"export"},
    "intake": {"pipeline", "export"},
    "sli": set(),
    "analysis": {"sli"},
    "slo": set(),
    "gate": {"slo"},
    "postmortem": {"slo", "gate"},
    "shared": {"sli", "slo"},
    "api": STAGES,
    "assembly": STAGES | ASSEMBLY,
}
"""Which stages each part of the processor may import, besides the foundations and itself."""


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if package == "otel_impact" and parts and parts[0] in ("instrumentation", "processors", "proto"):
                continue
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = base
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            module = node.module or ""
            source = f"{package}.{module}".strip(".") if node.level else module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
    return {t for t in targets if t in known and t != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def part(module: str) -> str | None:
    """The processor part a module belongs to: a stage, "foundation" or "assembly"; None outside."""
    if not module.startswith(P):
        return None
    first = module[len(P) :].split(".", maxsplit=1)[0]
    if first in FOUNDATIONS:
        return "foundation"
    if first in ASSEMBLY:
        return "assembly"
    return first


def stage_of(module: str) -> str | None:
    first = module[len(P) :].split(".", maxsplit=1)[0] if module.startswith(P) else None
    return first if first in STAGES or first in ASSEMBLY else None


def test_every_processor_module_belongs_to_a_known_part() -> None:
    unknown = [m for m in graph() if m.startswith(P) and part(m) not in ALLOWED]
    assert unknown == [], f"modules outside the documented stages (processors/__init__.py): {unknown}"


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_the_sdk_never_imports_the_processor() -> None:
    offenders = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        if not source.startswith(P)
        for target in targets
        if target.startswith(P) or target == P.rstrip(".")
    ]
    assert offenders == []


def test_data_flows_one_way_through_the_stages() -> None:
    offenders = []
    for source, targets in graph().items():
        source_part = part(source)
        if source_part is None:
            continue
        own = stage_of(source)
        for target in targets:
            target_stage = stage_of(target)
            if part(target) in (None, "foundation") or target_stage == own:
                continue
            if target_stage not in ALLOWED[source_part]:
                offenders.append(f"{source} imports {target}")
    assert offenders == []


def test_the_checks_catch_a_circle_and_a_wrong_way_import() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert part(P + "sli.engine") == "sli" and "api" not in ALLOWED["sli"]


def test_the_sli_store_and_state_know_no_engine() -> None:
    edges = graph()
    for module in ("sli.store", "sli.state"):
        assert not edges[P + module] & {P + "sli.engine", P + "sli.analyzer"}, f"{module} must not call back"


def test_the_wire_module_imports_nothing_of_the_package() -> None:
    assert graph()["otel_impact._attributes"] == set(), "both sides import the wire module; it imports neither"
