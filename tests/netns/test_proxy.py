"""Latency and a silent link, through a Trio TCP proxy between the pool and a worker.

No namespace is needed (everything is on 127.0.0.1), so these run for every user; the proxy
(``tests/netns/proxy.py``) stands in for the delay and loss a netem qdisc would add.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

import snakepit_trio as sp
from tests.helpers import wait_for
from tests.netns.proxy import Proxy
from tests.tcp_workers import TOKEN, TLSFiles, tcp_worker, tls_files

MARKED = "tests.adapters.orphans:Marked"
HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT = 0.25, 2.0
SLACK = 15.0  # on top of heartbeat_timeout: a loaded 2-core machine


@asynccontextmanager
async def _proxied_pool(proxy: Proxy, tls: TLSFiles) -> AsyncIterator[sp.Pool]:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(proxy.run)
        async with sp.open_pool(
            MARKED,
            endpoints=[f"tcp://127.0.0.1:{port}"],
            token=TOKEN,
            tls=sp.TLSConfig(ca=str(tls.ca)),
            restart=sp.RestartPolicy(initial=0.1, factor=1.5, max_delay=0.5),
            crash_threshold=None,
            heartbeat_interval=HEARTBEAT_INTERVAL,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        ) as pool:
            yield pool
        nursery.cancel_scope.cancel()


async def test_calls_complete_correctly_over_a_slow_link(tmp_path: pathlib.Path) -> None:
    tls = tls_files(tmp_path)
    with trio.fail_after(90):
        async with tcp_worker(tmp_path, MARKED, tls=tls, extra=["--capacity", "2"]) as worker:
            proxy = Proxy(("127.0.0.1", worker.port), delay=0.05)
            async with _proxied_pool(proxy, tls) as pool:
                began = trio.current_time()
                assert await pool.execute("add", {"a": 1, "b": 2}) == 3
                assert trio.current_time() - began >= 2 * proxy.delay  # there and back
                async with pool.stream("count", {"n": 20}) as chunks:
                    assert [c async for c in chunks] == list(range(20))
                big = bytes(range(256)) * 4000  # ~1 MB: many chunks in flight at once
                assert await pool.execute("echo", {"value": big}) == big
                with trio.move_on_after(0.5) as scope:
                    await pool.execute("asleep", {"seconds": 30})
                assert scope.cancelled_caught
                results: list[int] = []

                async def add(i: int) -> None:
                    results.append(await pool.execute("add", {"a": i, "b": i}))

                async with trio.open_nursery() as nursery:
                    for i in range(20):
                        nursery.start_soon(add, i)
                assert sorted(results) == [2 * i for i in range(20)]
                # Heartbeats crossed the slow link without a false alarm.
                assert [w.pid for w in pool.workers()] == [worker.process.pid]
            assert proxy.chunks > 0


async def test_a_stalled_link_is_a_disconnection_and_the_worker_drops_it(
    tmp_path: pathlib.Path,
) -> None:
    """The proxy keeps the connection open but delivers nothing: the host's heartbeats time
    out (WorkerCrashed "disconnected"), the slot reconnects over a fresh connection, and the
    worker drops the silent one after its orphan timeout, cancelling the call it held."""
    tls = tls_files(tmp_path)
    marker = tmp_path / "marker"
    # Well above heartbeat_timeout: the host must notice the silence before the worker
    # drops the connection (which the host would see as a plain disconnection).
    extra = ["--orphan-timeout", "5"]
    with trio.fail_after(90):
        async with tcp_worker(tmp_path, MARKED, tls=tls, extra=extra) as worker:
            proxy = Proxy(("127.0.0.1", worker.port))
            async with _proxied_pool(proxy, tls) as pool:
                failures: list[BaseException] = []

                async def held_call() -> None:
                    try:
                        await pool.execute("marked", {"marker": str(marker)})
                    except sp.WorkerCrashed as exc:
                        failures.append(exc)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(held_call)
                    await wait_for(marker.exists, timeout=30)
                    proxy.stall()
                    stalled = trio.current_time()
                took = trio.current_time() - stalled
                (crash,) = failures
                assert isinstance(crash, sp.WorkerCrashed)
                assert crash.cause == "disconnected", crash
                assert "went silent for" in str(crash)
                assert f"heartbeat_timeout={HEARTBEAT_TIMEOUT:g}s" in str(crash)
                assert took < HEARTBEAT_TIMEOUT + SLACK
                # Capacity 1: this call runs once the worker has let the stalled one go.
                with trio.fail_after(30):
                    assert await pool.execute("pid") == worker.process.pid
                assert marker.read_text() == "cancelled"
                assert "dropping a connection" in worker.log()
                assert worker.process.returncode is None  # the new connection keeps it
