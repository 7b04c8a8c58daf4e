"""The contract suite: worker-protocol and pool-behaviour tests, written once.

Every test here runs against each worker runtime (twin adapters with identical tools:
tests/adapters/contract.py and contract.mjs) over each transport (the local lane and gRPC's
Connect). What is Python-specific stays in tests/e2e. A runtime whose worker cannot start
here fails its tests: it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

import snakepit_trio as sp

RUNTIMES = ("python", "node")
TRANSPORTS = ("local", "grpc")
ADAPTERS = {
    "python": "tests.adapters.contract:Contract",
    "node": os.path.join(os.path.dirname(__file__), "..", "adapters", "contract.mjs"),
}

OpenContract = Callable[..., AbstractAsyncContextManager[sp.Pool]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    metafunc.fixturenames.append("runtime")
    metafunc.parametrize("runtime", RUNTIMES, indirect=True)
    if not getattr(metafunc.module, "TRANSPORT_AGNOSTIC", False):
        metafunc.fixturenames.append("transport")
        metafunc.parametrize("transport", TRANSPORTS, indirect=True)


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    value: str = request.param
    monkeypatch.setenv("SNAKEPIT_TRIO_TRANSPORT", value)  # PoolConfig's default
    return value


@pytest.fixture
def adapter(runtime: str) -> str:
    """The contract adapter of this runtime, as ``open_pool`` names it."""
    return os.path.normpath(ADAPTERS[runtime]) if runtime != "python" else ADAPTERS[runtime]


@pytest.fixture
def contract(runtime: str, adapter: str) -> OpenContract:
    """``open_pool`` for this runtime's contract adapter: ``contract(size=1, ...)``."""

    @asynccontextmanager
    async def open_contract(size: int = 1, **options: Any) -> AsyncIterator[sp.Pool]:
        async with sp.open_pool(adapter, runtime=runtime, size=size, **options) as pool:
            yield pool

    return open_contract
