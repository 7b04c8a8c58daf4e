"""The contract suite: worker-protocol and pool-behaviour tests, written once.

Every test here runs against each worker runtime (twin adapters with identical tools:
tests/adapters/contract.py and contract.mjs) over each transport (the local lane, gRPC's
Connect, and "tcp": workers the fixture starts itself with ``--listen tcp://127.0.0.1:0`` and
TLS, reached through ``open_pool(endpoints=...)``). What is Python-specific stays in
tests/e2e. With ``SNAKEPIT_TRIO_CONTRACT_RAY=1`` (``nox -s ray``) Python workers also run
over "ray": placed by ``RayLauncher`` on the two-node Ray cluster of tests/ray_support.py,
reached over TCP with a pinned certificate. A runtime whose worker cannot start here fails
its tests: it is never skipped. Tests that need the pool to own its workers' processes (to
kill, replace or recycle them by pid) are marked ``owns_processes(why)``: skipped over
"tcp" and "ray", saying why.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

import snakepit_trio as sp
from tests.tcp_workers import TOKEN, tcp_worker, tls_files

RUNTIMES = ("python", "node")
TRANSPORTS = {"python": ("local", "grpc", "tcp"), "node": ("local", "grpc", "tcp")}
if os.environ.get("SNAKEPIT_TRIO_CONTRACT_RAY") == "1":
    TRANSPORTS["python"] += ("ray",)
REMOTE = ("tcp", "ray")  # workers the pool reaches over TCP, not processes it signals
ADAPTERS = {
    "python": "tests.adapters.contract:Contract",
    "node": os.path.join(os.path.dirname(__file__), "..", "adapters", "contract.mjs"),
}

ROOT = str(pathlib.Path(__file__).resolve().parents[2])  # where tests.adapters imports from
OpenContract = Callable[..., AbstractAsyncContextManager[sp.Pool]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    metafunc.fixturenames.append("runtime")
    if getattr(metafunc.module, "TRANSPORT_AGNOSTIC", False):
        metafunc.parametrize("runtime", RUNTIMES, indirect=True)
        return
    metafunc.fixturenames.append("transport")
    owns = metafunc.definition.get_closest_marker("owns_processes")
    skip_tcp = (
        [pytest.mark.skip(reason=f"remote workers are not the pool's processes: {owns.args[0]}")]
        if owns is not None
        else []
    )
    pairs = [
        pytest.param(r, t, marks=skip_tcp if t in REMOTE else [])
        for r in RUNTIMES
        for t in TRANSPORTS[r]
    ]
    metafunc.parametrize(("runtime", "transport"), pairs, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "owns_processes(why): the test needs the pool to own its workers' processes; "
        "skipped over tcp (endpoints), saying why",
    )


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    value: str = getattr(request, "param", "")  # "": a TRANSPORT_AGNOSTIC module's test
    if value in ("local", "grpc"):  # "tcp" and "ray" are options, not transport= values
        monkeypatch.setenv("SNAKEPIT_TRIO_TRANSPORT", value)  # PoolConfig's default
    return value


@pytest.fixture
def adapter(runtime: str) -> str:
    """The contract adapter of this runtime, as ``open_pool`` names it."""
    return os.path.normpath(ADAPTERS[runtime]) if runtime != "python" else ADAPTERS[runtime]


@pytest.fixture
def contract(
    runtime: str,
    adapter: str,
    transport: str,
    tmp_path: pathlib.Path,
    request: pytest.FixtureRequest,
) -> OpenContract:
    """``open_pool`` for this runtime's contract adapter: ``contract(size=1, ...)``."""
    tcp = transport == "tcp"
    if transport == "ray":
        request.getfixturevalue("ray_session")  # tests/conftest.py: two Ray nodes

    @asynccontextmanager
    async def open_contract(size: int = 1, **options: Any) -> AsyncIterator[sp.Pool]:
        if transport == "ray":
            from tests.ray_support import ray_launcher

            async with sp.open_pool(
                adapter, size=size, launcher=ray_launcher(), pythonpath=[ROOT], **options
            ) as pool:
                yield pool
            return
        if not tcp:
            async with sp.open_pool(adapter, runtime=runtime, size=size, **options) as pool:
                yield pool
            return
        async with AsyncExitStack() as stack:
            pool = await stack.enter_async_context(
                _endpoints_pool(tmp_path, runtime, adapter, size, options)
            )
            yield pool

    return open_contract


@asynccontextmanager
async def _endpoints_pool(
    folder: pathlib.Path, runtime: str, adapter: str, size: int, options: dict[str, Any]
) -> AsyncIterator[sp.Pool]:
    """``size`` workers of ``runtime`` started here on 127.0.0.1 with TLS, and a pool of them."""
    tls = tls_files(folder)
    extra = []  # what the pool would have told workers it started itself
    if "worker_capacity" in options:
        extra += ["--capacity", str(options["worker_capacity"])]
    if "max_payload_bytes" in options:
        extra += ["--max-payload", str(options["max_payload_bytes"])]
    async with AsyncExitStack() as stack:
        workers = [
            await stack.enter_async_context(
                tcp_worker(folder, adapter, tls=tls, extra=extra, runtime=runtime)
            )
            for _ in range(size)
        ]
        async with sp.open_pool(
            adapter,
            runtime=runtime,
            endpoints=[w.endpoint for w in workers],
            token=TOKEN,
            tls=sp.TLSConfig(ca=str(tls.ca)),
            **options,
        ) as pool:
            yield pool
