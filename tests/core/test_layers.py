"""No import cycle between the package's modules, type-only imports included.

Every ``import`` statement counts wherever it is: at module level, under ``if TYPE_CHECKING:``
and inside functions. A cycle through a type-only import still means two modules that cannot
be understood (or moved) apart; the lower one states what it needs as a small Protocol instead
(``_supervision._worker.PoolHooks``, ``_engine._recycling.RecyclingHost``).

Importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``; those implicit edges
are not counted (the package's root only re-exports, lazily). The generated ``_proto`` is left
out. The import-linter contracts in pyproject.toml check the rooms and layers.
"""

from __future__ import annotations

import ast
import itertools
import pathlib
from collections.abc import Iterator

import snakepit_trio

PACKAGE = "snakepit_trio"
ROOT = pathlib.Path(snakepit_trio.__file__).parent
EXCLUDED = ("_proto",)

Edges = dict[str, dict[str, int]]  # importer -> imported -> first line number


def _module_files(root: pathlib.Path, package: str) -> dict[str, pathlib.Path]:
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] in EXCLUDED:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join((package, *parts))] = path
    return files


def _imported_names(module: str, path: pathlib.Path) -> Iterator[tuple[str, int]]:
    """Every module name an import statement anywhere in ``path`` may refer to."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                if not is_package:
                    parts = parts[:-1]
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from pkg import submodule`
                yield f"{target}.{alias.name}", node.lineno


def import_edges(root: pathlib.Path = ROOT, package: str = PACKAGE) -> Edges:
    files = _module_files(root, package)
    edges: Edges = {}
    for module, path in files.items():
        out = edges.setdefault(module, {})
        for name, line in _imported_names(module, path):
            target = name  # the deepest module of the package that the name denotes
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target not in (module, package):
                out.setdefault(target, line)
    return edges


def cycles(edges: Edges) -> list[list[str]]:
    """Cycles as paths a -> ... -> a: in each strongly connected component (Tarjan), a
    shortest one through each of its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                seen: set[frozenset[str]] = set()
                for member in sorted(component):  # a shortest cycle through each member
                    cycle = _path_back(member, component, edges)
                    if frozenset(cycle) not in seen:
                        seen.add(frozenset(cycle))
                        found.append(cycle)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _path_back(start: str, component: set[str], edges: Edges) -> list[str]:
    """A shortest path start -> ... -> start inside ``component`` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in component or w in previous:
                    continue
                previous[w] = v
                if w == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def _describe(cycle: list[str], edges: Edges) -> str:
    return "\n".join(f"  {a} -> {b}  (line {edges[a][b]})" for a, b in itertools.pairwise(cycle))


def test_no_import_cycles() -> None:
    edges = import_edges()
    assert len(edges) > 50, sorted(edges)  # the walk found the package
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n\n".join(_describe(c, edges) for c in found)


def test_the_walk_sees_type_only_and_function_level_imports(tmp_path: pathlib.Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import thing\n"
    )
    (pkg / "c.py").write_text("def f():\n    from pkg import d\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    (pkg / "e.py").write_text("from . import a\nfrom .sub.b import x\n")  # no cycle
    edges = import_edges(pkg, "pkg")
    assert edges["pkg.e"] == {"pkg.a": 1, "pkg.sub.b": 2}
    assert sorted(cycles(edges)) == [["pkg.a", "pkg.sub.b", "pkg.a"], ["pkg.c", "pkg.d", "pkg.c"]]
