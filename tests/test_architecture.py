"""The package's shape, checked with `ast`: no import cycle (module-level or inside a
function), no import of the package's own modules inside a function, no class over 300
lines outside the simulator, and a public API whose __all__ holds what it says."""

from __future__ import annotations

import ast
import graphlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import looks
import looks.api

PACKAGE = Path(looks.__file__).parent
NAME = "looks"
MAX_CLASS_LINES = 300


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([NAME, *parts])] = path
    return found


MODULES = _modules()


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path) -> Iterator[tuple[str, ast.stmt, bool]]:
    """(imported module of the package, statement, inside a function?) for every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            functions.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        inside = id(node) in functions
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, node, inside
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target not in MODULES:
                continue
            for alias in node.names:
                # `from pkg import mod` imports the submodule, not the package's __init__.
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node, inside


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _, _ in _imports(module, path) if target != module}
        for module, path in MODULES.items()
    }


def test_the_walker_sees_the_packages_imports() -> None:
    graph = _graph()
    assert f"{NAME}.api" in graph[NAME]  # the package exports the Python API
    assert f"{NAME}.commands.apply" in graph[f"{NAME}.cli"]
    assert f"{NAME}.errors" in graph[f"{NAME}.commands.rehome"]


def test_no_import_cycle() -> None:
    sorter = graphlib.TopologicalSorter(_graph())
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


def test_no_function_level_import_of_the_package() -> None:
    """An import inside a function hides a dependency (and often a cycle): none at all."""
    hidden = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: imports {target}"
        for module, path in MODULES.items()
        for target, node, inside in _imports(module, path)
        if inside
    ]
    assert hidden == []


def _classes() -> Iterator[tuple[str, int]]:
    for module, path in MODULES.items():
        if module == f"{NAME}.sim" or module.startswith(f"{NAME}.sim."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                yield f"{module}.{node.name}", node.end_lineno - node.lineno + 1


def test_the_class_walker_measures_classes() -> None:
    sizes = dict(_classes())
    assert sizes[f"{NAME}.plans.Plan"] > 10
    assert not any(name.startswith(f"{NAME}.sim.") for name in sizes)


def test_no_class_over_300_lines_outside_the_simulator() -> None:
    big = {name: lines for name, lines in _classes() if lines > MAX_CLASS_LINES}
    assert big == {}


@pytest.mark.parametrize("namespace", [looks, looks.api], ids=lambda m: m.__name__)
def test_all_names_exist_once(namespace: object) -> None:
    names = namespace.__all__  # type: ignore[attr-defined]
    missing = [n for n in names if not hasattr(namespace, n)]
    assert missing == []
    assert len(set(names)) == len(names)


def test_the_package_exports_the_python_api() -> None:
    for name in (
        "plan",
        "apply",
        "apply_async",
        "status",
        "validate",
        "catalog",
        "refresh",
        "prune",
        "consent",
        "import_groups",
    ):
        assert name in looks.__all__
        assert getattr(looks, name) is getattr(looks.api, name)
    public = {n for n in vars(looks) if not n.startswith("_") and n not in _SUBMODULES}
    assert public <= set(looks.__all__)


_SUBMODULES = {m.rpartition(".")[2] for m in MODULES if m.count(".") == 1}


def test_the_readmes_layout_names_every_module_and_doc() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    words = set(re.findall(r"[\w.-]+/?", layout))
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    packages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    docs = {p.name for p in (PACKAGE.parent / "docs").glob("*.md")}
    assert (modules | packages | docs) - words == set()


def _type_checking_branch(path: Path) -> ast.If:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (branch,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
        and node.orelse
    ]
    return branch


def test_the_deferred_modules_are_those_imported_for_the_type_checker() -> None:
    """cli imports its commands' modules for the type checker and this walker, and at run
    time defers each to its first use (engine/deferred.py, docs/performance.md): the same
    modules, name by name."""
    module = f"{NAME}.cli"
    branch = _type_checking_branch(MODULES[module])
    imported: dict[str, str] = {}
    for node in branch.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        base = f"{NAME}.{node.module}" if node.module else NAME
        for alias in node.names:
            imported[alias.asname or alias.name] = f"{base}.{alias.name}"
    deferred: dict[str, str] = {}
    for node in branch.orelse:
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        (target,) = node.targets
        (argument,) = node.value.args
        assert isinstance(target, ast.Name) and isinstance(argument, ast.Constant)
        assert isinstance(node.value.func, ast.Name) and node.value.func.id == "Deferred"
        deferred[target.id] = f"{NAME}.{argument.value}"
    assert deferred == imported
    assert set(imported.values()) <= set(MODULES)
    assert set(imported.values()) <= _graph()[module]


def test_the_cli_defers_the_commands_and_the_simulator() -> None:
    branch = _type_checking_branch(MODULES[f"{NAME}.cli"])
    names = {alias.name for node in branch.body for alias in getattr(node, "names", [])}
    assert {"sim", "apply"} <= names
    assert {f"{NAME}.sim", f"{NAME}.commands.apply"} <= _graph()[f"{NAME}.cli"]
