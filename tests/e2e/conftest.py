"""Every end-to-end test runs over both transports (the local lane and gRPC's Connect).

Both carry the same frames, so one suite is the contract for both. Modules whose subject is
one transport or none (process hygiene, the gRPC endpoint itself) set
``TRANSPORT_AGNOSTIC = True`` and run once, over the default.
"""

from __future__ import annotations

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "TRANSPORT_AGNOSTIC", False):
        return
    metafunc.fixturenames.append("transport")
    metafunc.parametrize("transport", ["local", "grpc"], indirect=True)


@pytest.fixture
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    value: str = request.param
    monkeypatch.setenv("SNAKEPIT_TRIO_TRANSPORT", value)  # PoolConfig's default
    return value
