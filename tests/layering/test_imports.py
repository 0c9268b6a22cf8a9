"""The layers import downward only, and no module imports itself back through others.

Every import statement counts, including those inside functions: a function-local import hides
a cycle from Python, not from this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("nst_engine", "tasks", "flows", "deployments", "nst_cli")
# package -> what it may not import (ours above it, and libraries that do not belong in it)
FORBIDDEN = {
    "nst_engine": {"tasks", "flows", "deployments", "nst_cli", "prefect", "boto3", "botocore", "yaml"},
    "tasks": {"flows", "deployments", "nst_cli"},
    "flows": {"deployments", "nst_cli"},
    "deployments": {"nst_cli"},
    "nst_cli": set(),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports (absolute names; `from pkg import sub` counts as pkg.sub)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined in `base` itself
                found.add(base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {m for m in _imports(name, path, known) if m in known and m != name} for name, path in modules.items()}


def test_the_walk_sees_every_layer_and_the_imports_inside_functions() -> None:
    graph = _graph()
    assert {name.split(".")[0] for name in graph} == set(PACKAGES)
    # run_manifest's Dask runner is imported where `--task-runner dask` is chosen: seen here too.
    assert "flows.dask_runner" in graph["nst_cli.manifest_commands"]


def test_no_layer_imports_a_layer_above_it_or_a_library_it_must_not_use() -> None:
    modules = _modules()
    known = set(modules)
    wrong = []
    for name, path in sorted(modules.items()):
        top = name.split(".")[0]
        for imported in sorted(_imports(name, path, known)):
            if imported.split(".")[0] in FORBIDDEN[top]:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_there_are_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
