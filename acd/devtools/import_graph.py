"""The import graph of the `acd` package: cycles and forbidden edges.

`python -m acd.devtools.import_graph` prints every import cycle (none expected) and every import of a
module only the composition root may import; exit status 1 when it found any. Imports under
`if TYPE_CHECKING:` count too: a cycle for the type checker is a cycle for the reader.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

__all__ = ["ROOT_ONLY", "find_cycles", "forbidden_imports", "import_graph", "main"]

PACKAGE = Path(__file__).resolve().parents[1]

# module -> the only modules allowed to import it (the composition root and the command line).
ROOT_ONLY = {
    "acd.calls.sip_server": {"acd.app"},
}
# The API and metrics see the shell only through the live view.
VIEW_ONLY = {"acd.api.rest", "acd.api.events", "acd.api.metrics_page", "acd.metrics", "acd.api.desk_endpoints",
             "acd.api.web_pages"}
VIEW_MODULE = "acd.calls.view"


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the acd modules it imports (a `from pkg import name` of a submodule counts as that module)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        base_parts = name.split(".") if is_package else name.split(".")[:-1]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base_parts[:len(base_parts) - node.level + 1]
                    target = ".".join(parts + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    edges.add(candidate if candidate in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    """Edges that break the layering: a root-only module imported elsewhere, or the API/metrics
    importing a shell module other than the view."""
    problems = []
    for module, imports in sorted(graph.items()):
        for target in sorted(imports):
            allowed = ROOT_ONLY.get(target)
            if allowed is not None and module not in allowed:
                problems.append(f"{module} imports {target} (only {', '.join(sorted(allowed))} may)")
            if module in VIEW_ONLY and target.startswith("acd.calls") and target != VIEW_MODULE:
                problems.append(f"{module} imports {target} (the API and metrics read only {VIEW_MODULE})")
    return problems


def main() -> int:
    """Print cycles and forbidden imports; 0 when there are none."""
    graph = import_graph()
    cycles = find_cycles(graph)
    problems = forbidden_imports(graph)
    for cycle in cycles:
        print("cycle: " + " -> ".join(cycle))
    for problem in problems:
        print("forbidden: " + problem)
    edges = sum(len(targets) for targets in graph.values())
    print(f"{len(graph)} modules, {edges} imports: {len(cycles)} cycle(s), {len(problems)} forbidden import(s)")
    return 1 if cycles or problems else 0


if __name__ == "__main__":
    sys.exit(main())
