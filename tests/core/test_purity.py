"""Purity: _core is sans-I/O, _shared loads no event loop library, the worker loads no trio.

Each module is imported alone in a fresh interpreter, and what that loaded is checked, so an
import through a third-party package counts too. ``os`` and ``time`` are loaded by every
interpreter at startup and ``threading`` by attrs, so for those a fresh import proves nothing:
the source of the core is checked for them instead (and the import-linter contracts in
pyproject.toml check every room's direct imports).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import snakepit_trio

# The fresh interpreter imports the package from where this one found it (`-c` puts the
# working directory first on sys.path).
CHECKOUT = pathlib.Path(snakepit_trio.__file__).parent.parent

CORE_FORBIDDEN = {
    "trio", "asyncio", "grpclib", "betterproto2", "anyio",
    "os", "subprocess", "socket", "threading", "psutil", "time",
}  # fmt: skip
UNPROVABLE_AT_RUNTIME = {"os", "time", "threading"}
SHARED_FORBIDDEN = {"trio", "asyncio", "grpclib", "betterproto2"}


def _modules(package: str) -> list[str]:
    path = importlib.import_module(package).__path__
    names = [package] + [
        info.name
        for info in pkgutil.walk_packages(path, prefix=f"{package}.")
        if not info.name.endswith(".__main__")  # running it is not importing it
    ]
    assert len(names) > 2, names  # the package was found
    return names


def _top_level_modules_after(module: str) -> set[str]:
    code = f"import sys; import {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=CHECKOUT,
    ).stdout
    return {m.split(".")[0] for m in out.split()}


@pytest.mark.parametrize("module", _modules("snakepit_trio._core"))
def test_core_module_loads_nothing_async_and_no_os_module(module: str) -> None:
    bad = _top_level_modules_after(module) & (CORE_FORBIDDEN - UNPROVABLE_AT_RUNTIME)
    assert not bad, f"importing {module} loads {sorted(bad)}"


@pytest.mark.parametrize("module", _modules("snakepit_trio._core"))
def test_core_source_imports_no_os_clock_or_thread_module(module: str) -> None:
    source = importlib.import_module(module).__file__
    assert source is not None
    tree = ast.parse(pathlib.Path(source).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):  # module level, TYPE_CHECKING and inside functions
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    bad = imported & CORE_FORBIDDEN
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", _modules("snakepit_trio._shared"))
def test_shared_module_loads_no_event_loop_library(module: str) -> None:
    bad = _top_level_modules_after(module) & SHARED_FORBIDDEN
    assert not bad, f"importing {module} loads {sorted(bad)}"


@pytest.mark.parametrize("module", _modules("snakepit_trio.worker"))
def test_worker_module_does_not_load_trio(module: str) -> None:
    loads_trio = "trio" in _top_level_modules_after(module)
    assert not loads_trio, f"importing {module} loads trio"
