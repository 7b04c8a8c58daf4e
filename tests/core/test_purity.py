"""Core layer: _core imports nothing async, and the worker runtime imports no trio."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("trio", "asyncio", "grpclib", "anyio")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return {m.split(".")[0] for m in out.split()}


def test_core_imports_nothing_async() -> None:
    modules = _modules_after(
        "import snakepit_trio._core._dispatcher, snakepit_trio._core._worker_state, "
        "snakepit_trio._core._backoff, snakepit_trio._core._sessions, "
        "snakepit_trio._core._variables, snakepit_trio._core._types"
    )
    assert not modules & set(FORBIDDEN), modules & set(FORBIDDEN)


def test_worker_package_does_not_import_trio() -> None:
    modules = _modules_after(
        "import snakepit_trio.worker, snakepit_trio.worker._server, "
        "snakepit_trio.worker._service, snakepit_trio.worker._runtime"
    )
    assert "trio" not in modules
