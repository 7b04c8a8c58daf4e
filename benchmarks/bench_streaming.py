"""Streaming benchmark: chunk throughput, first-chunk latency and memory under a slow consumer.

In one run, medians of ``--repeats``:
- snakepit_trio ``pool.stream`` (sync and async generators): chunks/s for 20,000 small chunks,
  and first-chunk latency (stream opened -> first chunk in hand);
- the same worker's plain grpclib ``ExecuteStream`` RPC from an asyncio client (one gRPC
  message per chunk: the "raw grpclib server-streaming" reference);
- a slow consumer reading 100,000 chunks of 10 KB: RSS growth of host and worker.

    python benchmarks/bench_streaming.py [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time

import psutil
import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import snakepit_trio as sp

ADAPTER = "stream_adapter:StreamBench"
CHUNKS = 20_000


async def _sp_stream(tool: str, window: int) -> tuple[float, float]:
    async with sp.open_pool(ADAPTER, size=1) as pool:
        return await stream_figures(pool, tool, window)


async def stream_figures(pool: sp.Pool, tool: str, window: int) -> tuple[float, float]:
    """Chunks/s of one long stream, and the median first-chunk latency (ms), on ``pool``."""
    async with pool.stream(tool, {"n": 100}) as s:  # warm-up
        async for _ in s:
            pass
    firsts = []
    for _ in range(50):
        t = time.perf_counter()
        async with pool.stream(tool, {"n": 1}) as s:
            async for _ in s:
                firsts.append(time.perf_counter() - t)
    t = time.perf_counter()
    count = 0
    async with pool.stream(tool, {"n": CHUNKS}, window=window) as s:
        async for _ in s:
            count += 1
    rate = count / (time.perf_counter() - t)
    return rate, statistics.median(firsts) * 1e3


def _grpclib_stream() -> tuple[float, float]:
    """Our worker's ExecuteStream over grpclib from a plain asyncio client."""
    import msgpack
    from grpclib.client import Channel

    from snakepit_trio._proto.snakepit import v1 as pb

    async def measure(socket: str) -> tuple[float, float]:
        channel = Channel(path=socket)
        stub = pb.WorkerStub(channel)
        try:
            firsts = []
            for _ in range(50):
                t = time.perf_counter()
                async for _ in stub.execute_stream(
                    pb.ExecuteRequest(tool="chunks", args=msgpack.packb({"n": 1}))
                ):
                    firsts.append(time.perf_counter() - t)
            t = time.perf_counter()
            count = 0
            async for _ in stub.execute_stream(
                pb.ExecuteRequest(tool="chunks", args=msgpack.packb({"n": CHUNKS}))
            ):
                count += 1
            return count / (time.perf_counter() - t), statistics.median(firsts) * 1e3
        finally:
            channel.close()

    async def run_with_pool() -> tuple[float, float]:
        # Borrow a worker process started by the pool, and talk to its socket directly.
        async with sp.open_pool(ADAPTER, size=1, transport="grpc") as pool:
            [worker] = pool._engine.workers.values()  # benchmark-only peek at the socket path
            socket = worker.channel._path  # type: ignore[union-attr]
            result: list[tuple[float, float]] = []
            thread = threading.Thread(target=lambda: result.append(asyncio.run(measure(socket))))
            await trio.to_thread.run_sync(lambda: (thread.start(), thread.join()))
            return result[0]

    return trio.run(run_with_pool)


def _ray_stream() -> tuple[float, float] | None:
    """Ray streaming generators from an actor, if Ray is installed (else None)."""
    try:
        import ray
    except ImportError:
        return None

    @ray.remote
    class Gen:
        def chunks(self, n: int):  # type: ignore[no-untyped-def]
            payload = b"x" * 8
            for _ in range(n):
                yield payload

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        actor = Gen.remote()  # type: ignore[attr-defined]
        for ref in actor.chunks.options(num_returns="streaming").remote(100):  # warm-up
            ray.get(ref)
        firsts = []
        for _ in range(50):
            t = time.perf_counter()
            for ref in actor.chunks.options(num_returns="streaming").remote(1):
                ray.get(ref)
                firsts.append(time.perf_counter() - t)
        t = time.perf_counter()
        count = 0
        for ref in actor.chunks.options(num_returns="streaming").remote(CHUNKS):
            ray.get(ref)
            count += 1
        return count / (time.perf_counter() - t), statistics.median(firsts) * 1e3
    finally:
        ray.shutdown()


async def _slow_consumer() -> dict[str, float]:
    me = psutil.Process()
    async with sp.open_pool(ADAPTER, size=1) as pool:
        worker = psutil.Process(pool.workers()[0].pid)
        async with pool.stream("chunks", {"n": 1000, "size": 10_240}) as s:  # warm-up
            async for _ in s:
                pass
        host0, worker0 = me.memory_info().rss, worker.memory_info().rss
        host_peak, worker_peak = host0, worker0
        count = 0
        t = time.perf_counter()
        async with pool.stream("chunks", {"n": 100_000, "size": 10_240}, window=16) as s:
            async for _ in s:
                count += 1
                if count % 200 == 0:
                    await trio.sleep(0.001)  # the slow consumer
                    host_peak = max(host_peak, me.memory_info().rss)
                    worker_peak = max(worker_peak, worker.memory_info().rss)
        elapsed = time.perf_counter() - t
    return {
        "chunks": count,
        "seconds": elapsed,
        "host_rss_growth_mb": (host_peak - host0) / 2**20,
        "worker_rss_growth_mb": (worker_peak - worker0) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--no-ray", action="store_true", help="skip Ray even if installed")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {}
    for rep in range(args.repeats):
        rows.setdefault("snakepit_trio stream (sync generator)", []).append(
            trio.run(_sp_stream, "chunks", 64)
        )
        rows.setdefault("snakepit_trio stream (async generator)", []).append(
            trio.run(_sp_stream, "achunks", 64)
        )
        rows.setdefault("grpclib ExecuteStream, asyncio client", []).append(_grpclib_stream())
        ray_result = _ray_stream() if not args.no_ray else None
        if ray_result is not None:
            rows.setdefault("Ray actor streaming generator", []).append(ray_result)
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)
    slow = trio.run(_slow_consumer)
    med = {
        name: (statistics.median(r for r, _ in v), statistics.median(f for _, f in v))
        for name, v in rows.items()
    }
    print(f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, medians of {args.repeats}")
    if not any(name.startswith("Ray") for name in med):
        print("(Ray not installed or skipped: no Ray row)")
    print(f"\n| stream of {CHUNKS:,} 8-byte chunks | chunks/s | first chunk ms |")
    print("|---|---:|---:|")
    for name, (rate, first) in med.items():
        print(f"| {name} | {rate:,.0f} | {first:.2f} |")
    print(
        f"\nslow consumer, {slow['chunks']:,.0f} chunks of 10 KB in {slow['seconds']:.1f}s: "
        f"host RSS +{slow['host_rss_growth_mb']:.1f} MB, "
        f"worker RSS +{slow['worker_rss_growth_mb']:.1f} MB"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"streams": med, "raw": rows, "slow_consumer": slow}, f, indent=2)


if __name__ == "__main__":
    main()
