"""Ray rows for bench_remote.py: workers placed by RayLauncher, and Ray's own actors.

- ``ray_pool``: a pool of 2 workers of ``stream_adapter:EchoStreams`` placed by
  ``RayLauncher`` on a local Ray (the calls go over the TCP lane with TLS, not through Ray);
- ``ray_actor_round``: the same workload on 2 plain Ray actors, as a Ray user would write it:
  ``ray.get(actor.ping.remote(x))`` one at a time, 64 refs in flight over both actors,
  ``echo`` of 10 MB of bytes, and a streaming generator (``num_returns="streaming"``) of
  20,000 chunks of 8 bytes.

Ray starts once for the whole run (``start_ray``), from the main thread: Ray ties its local
services to the thread that started them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import snakepit_trio as sp

HERE = Path(__file__).resolve().parent
ADAPTER = "stream_adapter:EchoStreams"
WORKERS = 2
PAYLOAD = 10 * 2**20
SEQ_CALLS = 2000
IN_FLIGHT_CALLS = 20000
CHUNKS = 20000


def available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def start_ray() -> None:
    """A local Ray for the run: 2 CPUs, no dashboard, a small object store."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 2**20,
            logging_level="ERROR",
            log_to_driver=False,
        )


def stop_ray() -> None:
    import ray

    ray.shutdown()


def _paths() -> str:
    return os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])


@asynccontextmanager
async def ray_pool(folder: Path) -> AsyncIterator[sp.Pool]:
    from snakepit_trio.contrib.ray import RayLauncher

    launcher = RayLauncher(num_cpus=0, runtime_env={"env_vars": {"PYTHONPATH": _paths()}})
    async with sp.open_pool(
        ADAPTER, size=WORKERS, launcher=launcher, pythonpath=[str(HERE), str(HERE.parent)]
    ) as pool:
        yield pool


def _quantiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def ray_actor_round(folder: Path) -> dict[str, float]:
    """The bench_remote workload on 2 Ray actors; the same keys as its pool rows."""
    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        def ping(self, x: Any) -> Any:
            return x

        def echo(self, value: Any) -> Any:
            return value

        def chunks(self, n: int):  # type: ignore[no-untyped-def]
            payload = b"x" * 8
            for _ in range(n):
                yield payload

    actors = [Echo.remote() for _ in range(WORKERS)]  # type: ignore[attr-defined]
    try:
        ray.get([a.ping.remote(0) for a in actors])
        one = actors[0]
        for i in range(200):
            ray.get(one.ping.remote(i))
        lat = []
        for i in range(SEQ_CALLS):
            t = time.perf_counter()
            ray.get(one.ping.remote(i))
            lat.append(time.perf_counter() - t)
        p50, p99 = _quantiles(lat)

        t = time.perf_counter()
        pending = [actors[i % WORKERS].ping.remote(i) for i in range(64)]
        sent = 64
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
            if sent < IN_FLIGHT_CALLS:
                pending.append(actors[sent % WORKERS].ping.remote(sent))
                sent += 1
        rate = IN_FLIGHT_CALLS / (time.perf_counter() - t)

        payload = os.urandom(PAYLOAD)
        for _ in range(2):
            ray.get(one.echo.remote(payload))
        t = time.perf_counter()
        for _ in range(5):
            back = ray.get(one.echo.remote(payload))
            assert len(back) == PAYLOAD
        seconds = (time.perf_counter() - t) / 5

        for ref in one.chunks.options(num_returns="streaming").remote(100):  # warm-up
            ray.get(ref)
        firsts = []
        for _ in range(20):
            t = time.perf_counter()
            for ref in one.chunks.options(num_returns="streaming").remote(1):
                ray.get(ref)
                firsts.append(time.perf_counter() - t)
        t = time.perf_counter()
        count = 0
        for ref in one.chunks.options(num_returns="streaming").remote(CHUNKS):
            ray.get(ref)
            count += 1
        chunks = count / (time.perf_counter() - t)
    finally:
        for actor in actors:
            ray.kill(actor)
    return {
        "seq p50 µs": p50,
        "seq p99 µs": p99,
        "64 in flight calls/s": rate,
        "bytes 10 MB echo GB/s": PAYLOAD / seconds / 1e9,
        "stream chunks/s": chunks,
        "stream first chunk ms": statistics.median(firsts) * 1e3,
    }
