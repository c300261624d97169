"""The code's shape, held: no import circle, short functions, small files (README "Layout").

Measured from the source by ``ast`` (imports as the interpreter runs them, ``TYPE_CHECKING``
blocks included, since a circle there is a circle of concepts all the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "retarget", "robots")
#: About 80 lines a function and 500 a file (the issue that split the code); these bounds
#: leave a little room and fail on the next 300-line function.
MAX_FUNCTION_LINES = 90
MAX_FILE_LINES = 500


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imports(tree: ast.Module) -> set[str]:
    """Modules imported at module level, inside ``if`` blocks too (``TYPE_CHECKING``)."""
    found: set[str] = set()
    nodes: list[ast.stmt] = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If):
            nodes.extend(node.body + node.orelse)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                cycles.append(stack[stack.index(other) :] + [other])
            elif not state.get(other):
                visit(other, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [])
    return cycles


def _related(a: str, b: str) -> bool:
    # A package's __init__ re-exports its own modules: that edge is the package, not a circle.
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_module_imports_itself_through_others() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _imports(ast.parse(path.read_text())) if m in modules}
        - {name}
        - {m for m in modules if _related(name, m)}
        for name, path in modules.items()
    }
    assert _cycles(graph) == []
    # The checker finds a circle where there is one.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_functions_and_files_stay_short() -> None:
    long_functions, long_files = [], []
    for path in _modules().values():
        source = path.read_text()
        relative = path.relative_to(ROOT).as_posix()
        if len(source.splitlines()) > MAX_FILE_LINES:
            long_files.append(relative)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{relative}:{node.lineno} {node.name} ({lines})")
    assert long_functions == [] and long_files == []
