"""The import graph of `app` keeps its layers (issue 45): the registry imports neither the
runtime nor the HTTP api nor the worker, the queue neither the api nor the worker, no two
packages import each other (directly or round a loop), and no module passes 400 lines.
Every import counts, a function's own included; only `if TYPE_CHECKING:` ones do not run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.helpers import ROOT

APP = ROOT / "app"
MAX_LINES = 400
FORBIDDEN = {
    "app.registry": ("app.runtime", "app.api", "app.worker"),
    "app.queue": ("app.api", "app.worker"),
    # a kind knows no web framework, queue, database or runtime (app/kinds/__init__.py)
    "app.kinds": ("app.api", "app.worker", "app.queue", "app.registry", "app.runtime"),
    "app.services": ("app.api", "app.worker"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def package_of(module: str) -> str:
    """`app.registry.aliases` -> `app.registry`; a top-level module (`app.errors`) is its own."""
    return ".".join(module.split(".")[:2])


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (i for n in node.orelse for i in runtime_imports(n))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from runtime_imports(node)


def targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The app modules an import statement loads (`from app.x import y`: app.x.y when y is a
    module, else app.x)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "app")
        return
    base = node.module or ""
    if node.level:
        is_package = modules()[module].name == "__init__.py"
        anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join([*anchor, *([base] if base else [])])
    if base.split(".")[0] != "app":
        return
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base


@cache
def graph() -> dict[str, set[str]]:
    """module -> the app modules it imports."""
    out: dict[str, set[str]] = {}
    for module, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        out[module] = {t for node in runtime_imports(tree) for t in targets(module, node)}
        out[module].discard(module)
    return out


def package_graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, imported in graph().items():
        edges = out.setdefault(package_of(module), set())
        edges.update(package_of(t) for t in imported if package_of(t) != package_of(module))
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_graph_sees_function_level_imports() -> None:
    """A guard on the test itself: app.cli imports the worker pool inside a function."""
    assert "app.worker.pool" in graph()["app.cli"]
    assert graph()["app.worker.moves"] >= {"app.registry.aliases"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_lower_package_does_not_import_a_higher_one(package: str) -> None:
    crossing = sorted(
        f"{module} imports {target}"
        for module, imported in graph().items()
        if package_of(module) == package
        for target in imported
        if package_of(target) in FORBIDDEN[package]
    )
    assert crossing == []


def test_registry_and_runtime_are_not_in_one_import_cycle() -> None:
    tangled = [c for c in cycles(package_graph()) if {"app.registry", "app.runtime"} <= set(c)]
    assert tangled == []


def test_no_two_packages_import_each_other() -> None:
    assert cycles(package_graph()) == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        module: n
        for module, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
