"""No two modules of funsearch/ import each other, directly or round a longer loop.

A loop of imports means neither module can be read, tested or moved without
the other. Every import counts: at the top, inside a function (a lazy import
still ties the two) and under `if TYPE_CHECKING:`. `from funsearch.x import y`
is an import of the module funsearch.x.y when there is one, else of funsearch.x
(its package `__init__` when x is a package).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The funsearch modules a file imports, wherever the import statement is."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(
        ".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                found.add(name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = sorted((ROOT / "funsearch").rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports(path, modules) - {module_name(path)} for path in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One loop of imports, as the modules along it (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return path[path.index(imported):] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_modules_import_each_other():
    cycle = find_cycle(import_graph())
    assert cycle is None, "modules that import each other: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_lazy_type_checking_and_package_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    package = ROOT / "funsearch" / "samplers" / "__init__.py"
    assert "funsearch.config" in imports(package, {"funsearch.config", "funsearch.samplers"})
