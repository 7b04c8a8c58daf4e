"""Python and Node.js workers side by side: the same workloads on the same pool, one run.

For each runtime, medians of ``--repeats``:
- sequential trivial call ``ping(x) -> x``: p50/p99 µs (2 workers);
- throughput: calls/s with 64 calls in flight on 2 workers;
- streaming: chunks/s for 20,000 chunks of 8 bytes, and first-chunk latency (ms);
- start: ms until 4 fresh workers have each run a call.
Both runtimes run twin adapters (bench_adapter.py / stream_adapter.py and
bench_adapter.mjs), over the default transport (the local lane).

    python benchmarks/bench_runtimes.py [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_streaming
from peers import NAP, _naps, _seq_trio, _thr_trio

import snakepit_trio as sp

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIMES = {
    "python": ("bench_adapter:Bench", "stream_adapter:StreamBench"),
    "node": (os.path.join(HERE, "bench_adapter.mjs"), os.path.join(HERE, "bench_adapter.mjs")),
}


def _open(runtime: str, size: int, *, streams: bool = False) -> Any:
    adapter = RUNTIMES[runtime][1 if streams else 0]
    # Fresh interpreters for both: Node workers cannot fork from a template.
    return sp.open_pool(adapter, runtime=runtime, size=size, start_method="spawn")


async def _seq(runtime: str) -> tuple[float, float]:
    async with _open(runtime, 2) as pool:
        return await _seq_trio(lambda i: pool.execute("ping", {"x": i}))


async def _thr(runtime: str) -> float:
    async with _open(runtime, 2) as pool:
        return await _thr_trio(lambda i: pool.execute("ping", {"x": i}), 64)


async def _stream(runtime: str) -> tuple[float, float]:
    async with _open(runtime, 1, streams=True) as pool:
        return await bench_streaming.stream_figures(pool, "achunks", 64)


async def _start(runtime: str) -> float:
    t = time.perf_counter()
    async with _open(runtime, 4) as pool:
        await _naps(lambda: pool.execute("nap_pid", {"seconds": NAP}), 4)
        return (time.perf_counter() - t - NAP) * 1e3


def one_round(runtime: str) -> dict[str, float]:
    p50, p99 = trio.run(_seq, runtime)
    rate, first = trio.run(_stream, runtime)
    return {
        "seq p50 µs": p50,
        "seq p99 µs": p99,
        "64 in flight, 2 workers calls/s": trio.run(_thr, runtime),
        "stream chunks/s": rate,
        "stream first chunk ms": first,
        "start 4 workers ms": trio.run(_start, runtime),
    }


def measure(repeats: int) -> dict[str, dict[str, float]]:
    """Medians per runtime; the runtimes alternate within each repeat."""
    raw: dict[str, dict[str, list[float]]] = {r: {} for r in RUNTIMES}
    for _ in range(repeats):
        for runtime in RUNTIMES:
            for key, value in one_round(runtime).items():
                raw[runtime].setdefault(key, []).append(value)
    return {r: {k: statistics.median(v) for k, v in d.items()} for r, d in raw.items()}


def render(medians: dict[str, dict[str, float]], repeats: int) -> str:
    keys = list(medians["python"])
    lines = [
        f"| worker runtime (median of {repeats}) | " + " | ".join(RUNTIMES) + " | node / python |",
        "|---|" + "---:|" * (len(RUNTIMES) + 1),
    ]
    for key in keys:
        py, node = medians["python"][key], medians["node"][key]
        lines.append(f"| {key} | {py:,.1f} | {node:,.1f} | {node / py:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the medians here")
    args = parser.parse_args()
    medians = measure(args.repeats)
    print(render(medians, args.repeats))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": medians, "repeats": args.repeats}, f, indent=2)


if __name__ == "__main__":
    main()
