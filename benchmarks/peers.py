"""Each peer runs the same workloads; every function returns a measurement.

Workloads: ``start(n)`` seconds until n workers have each run a call; ``seq()`` p50/p99 of
one call at a time (2 workers); ``thr(workers, in_flight)`` calls/s; ``payload(value)``
seconds per round trip of a large value. Sync peers run windowed submissions from a thread;
Trio peers run ``in_flight`` tasks calling back to back.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from bench_adapter import echo, nap_pid, ping
from raw_peer import RawTrio

import snakepit_trio as sp

SEQ_CALLS = 2000
NAP = 0.2  # start(): each worker runs one nap; the nap is subtracted
ADAPTER = "bench_adapter:Bench"


def calls_for(in_flight: int) -> int:
    return {4: 3000, 16: 8000}.get(in_flight, 20000)


def quantiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def _check_distinct(pids: list[int], n: int) -> None:
    if len(set(pids)) != n:
        raise RuntimeError(f"{n} naps ran in {len(set(pids))} processes, not {n}")


# --- Trio peers ------------------------------------------------------------------------------
async def _naps(nap: Callable[[], Awaitable[int]], n: int) -> list[int]:
    """Run ``n`` naps at once; their pids (one per worker, if n workers are up)."""
    pids: list[int] = []

    async def one() -> None:
        pids.append(await nap())

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    return pids


async def _seq_trio(call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    for i in range(200):
        await call(i)
    lat = []
    for i in range(SEQ_CALLS):
        t = time.perf_counter()
        await call(i)
        lat.append(time.perf_counter() - t)
    return quantiles(lat)


async def _thr_trio(call: Callable[[int], Awaitable[object]], in_flight: int) -> float:
    total = calls_for(in_flight)
    per_task = total // in_flight

    async def run(n: int) -> None:
        for i in range(n):
            await call(i)

    async with trio.open_nursery() as nursery:  # warm-up
        for _ in range(in_flight):
            nursery.start_soon(run, 5)
    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(in_flight):
            nursery.start_soon(run, per_task)
    return per_task * in_flight / (time.perf_counter() - t)


async def _payload_trio(call: Callable[[], Awaitable[object]], reps: int) -> float:
    for _ in range(2):
        await call()
    t = time.perf_counter()
    for _ in range(reps):
        await call()
    return (time.perf_counter() - t) / reps


class Snakepit:
    name = "snakepit_trio"

    def __init__(self, **options: Any) -> None:
        self.options = options

    def _pool(self, size: int) -> Any:
        return sp.open_pool(ADAPTER, size=size, **self.options)

    def start(self, n: int, start_method: str | None = None) -> float:
        async def main() -> float:
            t = time.perf_counter()
            options = {"start_method": start_method} if start_method else {}
            async with sp.open_pool(ADAPTER, size=n, **options, **self.options) as pool:
                pids = await _naps(lambda: pool.execute("nap_pid", {"seconds": NAP}), n)
                elapsed = time.perf_counter() - t - NAP
            _check_distinct(pids, n)
            return elapsed

        return trio.run(main)

    def extra(self) -> dict[str, Callable[[], float]]:
        """Start figures only snakepit_trio has: fresh interpreters, and forks from a
        template that is already running (every worker killed at once, then replaced)."""
        return {
            "start 8 workers, fresh interpreters ms": lambda: self.start(8, "spawn") * 1e3,
            "replace 8 killed workers ms": lambda: self.replace(8) * 1e3,
            "replace 8 killed workers, fresh interpreters ms": lambda: (
                self.replace(8, "spawn") * 1e3
            ),
        }

    def replace(self, n: int, start_method: str | None = None) -> float:
        async def main() -> float:
            options = {"start_method": start_method} if start_method else {}
            async with sp.open_pool(
                ADAPTER,
                size=n,
                crash_threshold=None,
                restart=sp.RestartPolicy(initial=0),
                **options,
                **self.options,
            ) as pool:
                old = {w.pid for w in pool.workers()}
                t = time.perf_counter()
                for pid in old:
                    os.kill(pid, signal.SIGKILL)
                # Polled at 1 ms: the pool has no event for "all replaced".
                while len({w.pid for w in pool.workers()} - old) < n:  # noqa: ASYNC110
                    await trio.sleep(0.001)
                pids = await _naps(lambda: pool.execute("nap_pid", {"seconds": NAP}), n)
                elapsed = time.perf_counter() - t - NAP
            _check_distinct(pids, n)
            return elapsed

        return trio.run(main)

    def seq(self) -> tuple[float, float]:
        async def main() -> tuple[float, float]:
            async with self._pool(2) as pool:
                return await _seq_trio(lambda i: pool.execute("ping", {"x": i}))

        return trio.run(main)

    def thr(self, workers: int, in_flight: int) -> float:
        async def main() -> float:
            async with self._pool(workers) as pool:
                return await _thr_trio(lambda i: pool.execute("ping", {"x": i}), in_flight)

        return trio.run(main)

    def payload(self, value: Any, reps: int) -> float:
        async def main() -> float:
            async with self._pool(1) as pool:
                return await _payload_trio(lambda: pool.execute("echo", {"value": value}), reps)

        return trio.run(main)


class TrioParallel:
    name = "trio-parallel"

    def start(self, n: int) -> float:
        import trio_parallel

        async def main() -> float:
            t = time.perf_counter()
            limiter = trio.CapacityLimiter(n)
            async with trio_parallel.open_worker_context() as ctx:
                pids = await _naps(lambda: ctx.run_sync(nap_pid, NAP, limiter=limiter), n)
                elapsed = time.perf_counter() - t - NAP
            _check_distinct(pids, n)
            return elapsed

        return trio.run(main)

    def _run(
        self, workers: int, body: Callable[[Any, trio.CapacityLimiter], Awaitable[Any]]
    ) -> Any:
        import trio_parallel

        async def main() -> Any:
            limiter = trio.CapacityLimiter(workers)
            async with trio_parallel.open_worker_context() as ctx:
                return await body(ctx, limiter)

        return trio.run(main)

    def seq(self) -> tuple[float, float]:
        return self._run(
            2, lambda ctx, lim: _seq_trio(lambda i: ctx.run_sync(ping, i, limiter=lim))
        )  # type: ignore[no-any-return]

    def thr(self, workers: int, in_flight: int) -> float:
        return self._run(  # type: ignore[no-any-return]
            workers,
            lambda ctx, lim: _thr_trio(lambda i: ctx.run_sync(ping, i, limiter=lim), in_flight),
        )

    def payload(self, value: Any, reps: int) -> float:
        return self._run(  # type: ignore[no-any-return]
            1,
            lambda ctx, lim: _payload_trio(lambda: ctx.run_sync(echo, value, limiter=lim), reps),
        )


class AnyioToProcess:
    name = "anyio.to_process"

    def _run(self, workers: int, body: Callable[[Any], Awaitable[Any]]) -> Any:
        import anyio

        async def main() -> Any:
            return await body(anyio.CapacityLimiter(workers))

        return anyio.run(main, backend="trio")

    def start(self, n: int) -> float:
        import anyio
        from anyio import to_process

        async def main() -> float:
            limiter = anyio.CapacityLimiter(n)
            t = time.perf_counter()
            pids = await _naps(lambda: to_process.run_sync(nap_pid, NAP, limiter=limiter), n)
            elapsed = time.perf_counter() - t - NAP
            _check_distinct(pids, n)
            return elapsed

        return anyio.run(main, backend="trio")  # type: ignore[no-any-return]

    def seq(self) -> tuple[float, float]:
        from anyio import to_process

        return self._run(  # type: ignore[no-any-return]
            2, lambda lim: _seq_trio(lambda i: to_process.run_sync(ping, i, limiter=lim))
        )

    def thr(self, workers: int, in_flight: int) -> float:
        from anyio import to_process

        return self._run(  # type: ignore[no-any-return]
            workers,
            lambda lim: _thr_trio(lambda i: to_process.run_sync(ping, i, limiter=lim), in_flight),
        )

    def payload(self, value: Any, reps: int) -> float:
        from anyio import to_process

        return self._run(  # type: ignore[no-any-return]
            1,
            lambda lim: _payload_trio(lambda: to_process.run_sync(echo, value, limiter=lim), reps),
        )


# --- executor peers --------------------------------------------------------------------------
def _windowed(
    submit: Callable[[int, Callable[[object], None]], None], total: int, window: int
) -> float:
    slots = threading.Semaphore(window)
    done = threading.Event()
    remaining = [total]
    lock = threading.Lock()

    def finished(_: object) -> None:
        slots.release()
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    t = time.perf_counter()
    for i in range(total):
        slots.acquire()
        submit(i, finished)
    done.wait()
    return total / (time.perf_counter() - t)


class Executor:
    """concurrent.futures-style pools: ProcessPoolExecutor (fork) and loky."""

    def __init__(self, name: str, make: Callable[[int], concurrent.futures.Executor]) -> None:
        self.name = name
        self.make = make

    def start(self, n: int) -> float:
        t = time.perf_counter()
        with self.make(n) as ex:
            pids = list(ex.map(nap_pid, [NAP] * n))
            elapsed = time.perf_counter() - t - NAP
        _check_distinct(pids, n)
        return elapsed

    def seq(self) -> tuple[float, float]:
        with self.make(2) as ex:
            for i in range(200):
                ex.submit(ping, i).result()
            lat = []
            for i in range(SEQ_CALLS):
                t = time.perf_counter()
                ex.submit(ping, i).result()
                lat.append(time.perf_counter() - t)
        return quantiles(lat)

    def thr(self, workers: int, in_flight: int) -> float:
        with self.make(workers) as ex:
            list(ex.map(ping, range(200)))
            return _windowed(
                lambda i, cb: ex.submit(ping, i).add_done_callback(cb),
                calls_for(in_flight),
                in_flight,
            )

    def payload(self, value: Any, reps: int) -> float:
        with self.make(1) as ex:
            for _ in range(2):
                ex.submit(echo, value).result()
            t = time.perf_counter()
            for _ in range(reps):
                ex.submit(echo, value).result()
            return (time.perf_counter() - t) / reps


def ppe(n: int) -> concurrent.futures.Executor:
    return concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"))


def loky_executor(n: int) -> concurrent.futures.Executor:
    from loky import ProcessPoolExecutor

    return ProcessPoolExecutor(n)  # type: ignore[no-any-return]


class MpPool:
    name = "multiprocessing.Pool (fork)"

    def _make(self, n: int) -> Any:
        return multiprocessing.get_context("fork").Pool(n)

    def start(self, n: int) -> float:
        t = time.perf_counter()
        with self._make(n) as pool:
            pids = pool.map(nap_pid, [NAP] * n, chunksize=1)
            elapsed = time.perf_counter() - t - NAP
        _check_distinct(pids, n)
        return elapsed

    def seq(self) -> tuple[float, float]:
        with self._make(2) as pool:
            for i in range(200):
                pool.apply(ping, (i,))
            lat = []
            for i in range(SEQ_CALLS):
                t = time.perf_counter()
                pool.apply(ping, (i,))
                lat.append(time.perf_counter() - t)
        return quantiles(lat)

    def thr(self, workers: int, in_flight: int) -> float:
        with self._make(workers) as pool:
            pool.map(ping, range(200))
            return _windowed(
                lambda i, cb: pool.apply_async(ping, (i,), callback=cb),
                calls_for(in_flight),
                in_flight,
            )

    def payload(self, value: Any, reps: int) -> float:
        with self._make(1) as pool:
            for _ in range(2):
                pool.apply(echo, (value,))
            t = time.perf_counter()
            for _ in range(reps):
                pool.apply(echo, (value,))
            return (time.perf_counter() - t) / reps


def all_peers() -> list[Any]:
    peers: list[Any] = [
        Snakepit(),
        Executor("ProcessPoolExecutor (fork)", ppe),
        MpPool(),
        TrioParallel(),
        AnyioToProcess(),
        RawTrio(),
    ]
    try:
        import loky  # noqa: F401

        peers.insert(3, Executor("loky", loky_executor))
    except ImportError:
        pass
    return peers
