"""The layers import downward only, each library stays in the layers that own it, and no module
imports itself back through others.

Every import counts: statements inside functions (a function-local import hides a cycle from
Python, not from this test) and dynamic ones (`importlib.import_module`, `__import__`). The
packages are the ones pyproject.toml ships, so a new top-level package must be given a layer here.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Bottom to top: a module may import its own layer and the layers below it.
LAYERS = ("nst_engine", "tasks", "flows", "deployments", "nst_cli")
# library -> the modules (a package or one module, by dotted prefix) that may import it
LIBRARY_HOMES = {
    "prefect": ("flows", "deployments", "nst_cli", "tasks.prefect_tasks"),  # the task wrappers
    "prefect_dask": ("flows.dask_runner",),
    "distributed": ("flows.dask_runner",),
    "dask": ("flows.dask_runner",),
    "boto3": ("tasks.stores.s3",),
    "botocore": ("tasks.stores.s3",),
    "yaml": ("tasks.manifest_yaml",),
    # The engine and the engine's task bodies; the Dask runner counts the GPUs to start one
    # worker per GPU before any engine code runs.
    "torch": ("nst_engine", "tasks.engine_work", "flows.dask_runner"),
    "torchvision": ("nst_engine",),
}
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def packages() -> list[str]:
    """The top-level packages pyproject.toml ships (setuptools' `include` patterns)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    found = [p.parent.name for p in ROOT.glob("*/__init__.py")]
    return sorted(name for name in found if any(fnmatch.fnmatch(name, pattern) for pattern in patterns))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in packages() for path in (ROOT / package).rglob("*.py")}


def _within(module: str, homes: tuple[str, ...]) -> bool:
    return any(module == home or module.startswith(home + ".") for home in homes)


def _dynamic_targets(tree: ast.AST, known: set[str]) -> set[str]:
    """What `importlib.import_module(...)` / `__import__(...)` calls load: a literal name, an
    f-string's literal start ("nst_engine.{x}" -> nst_engine), or, for a name built at run time,
    every dotted string in the module that names one of our modules or a library ("module:attr"
    tables such as tasks.stores.BACKENDS)."""
    found: set[str] = set()
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and (getattr(node.func, "attr", None) in DYNAMIC_IMPORTS or getattr(node.func, "id", None) in DYNAMIC_IMPORTS)]
    computed = False
    for call in calls:
        target = call.args[0] if call.args else None
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            found.add(target.value)
        elif isinstance(target, ast.JoinedStr) and target.values and isinstance(target.values[0], ast.Constant):
            found.add(str(target.values[0].value).rstrip("."))
        else:
            computed = True
    if computed:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value.partition(":")[0]
                if name in known or name.split(".")[0] in LIBRARY_HOMES:
                    found.add(name)
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports (absolute names; `from pkg import sub` counts as pkg.sub)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
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
    return found | _dynamic_targets(tree, known)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {m for m in _imports(name, path, known) if m in known and m != name} for name, path in modules.items()}


def layering_problems() -> list[str]:
    """Every import against the layering: a layer above, or a library outside its homes."""
    modules = _modules()
    known = set(modules)
    wrong = []
    for name, path in sorted(modules.items()):
        layer = LAYERS.index(name.split(".")[0])
        for imported in sorted(_imports(name, path, known)):
            top = imported.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > layer:
                wrong.append(f"{name} imports {imported}, a layer above it")
            elif top in LIBRARY_HOMES and not _within(name, LIBRARY_HOMES[top]):
                wrong.append(f"{name} imports {imported}, which only {', '.join(LIBRARY_HOMES[top])} may use")
    return wrong


def test_every_shipped_package_has_a_layer() -> None:
    shipped = packages()
    assert shipped and set(shipped) <= set(LAYERS), f"give these packages a layer: {set(shipped) - set(LAYERS)}"
    assert set(LAYERS) <= set(shipped)


def test_the_walk_sees_every_layer_and_the_imports_inside_functions() -> None:
    graph = _graph()
    assert {name.split(".")[0] for name in graph} == set(LAYERS)
    # run_manifest's Dask runner is imported where `--task-runner dask` is chosen: seen here too.
    assert "flows.dask_runner" in graph["nst_cli.manifest_commands"]
    # dynamic imports: the storage table's backends, the engine's lazily loaded names
    assert "tasks.stores.s3" in graph["tasks.stores"]
    assert "nst_engine" in _imports("nst_engine", ROOT / "nst_engine" / "__init__.py", set(_modules()))


def test_no_layer_imports_a_layer_above_it_or_a_library_it_must_not_use() -> None:
    wrong = layering_problems()
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
