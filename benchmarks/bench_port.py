"""Porting a ProcessPoolExecutor script: the README's two scripts ("From ProcessPoolExecutor"),
timed on the same work.

    python benchmarks/bench_port.py [--repeats 3] [--workers 2]

Two workloads, the functions of ``examples/scoring.py``: 100,000 trivial items (``double``)
and 200 items of about 5 ms of CPU each (``score``). Each runs as the README's scripts run
it: ``ProcessPoolExecutor(workers)`` and ``ex.map(fn, items)``, and ``open_pool(tools=
["scoring:fn"], size=workers)`` and ``pool.map("fn", ({"x": x} for x in items))``; each
with its default chunksize (one item per task, one item per call) and with ``chunksize =
items // (25 * workers)`` (2,000 and 4 with 2 workers: 25 chunks per worker). The figures
are seconds for the whole block (start the workers, map, collect every result, stop them)
and for the map alone, medians of ``--repeats`` with the peers interleaved run by run.
ProcessPoolExecutor starts its processes at the first submit, so its map includes that.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import trio

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import scoring

import snakepit_trio as sp

WORKLOADS = {  # name -> (function, items)
    "trivial": ("double", 100_000),
    "cpu": ("score", 200),
}
CHUNKS_PER_WORKER = 25

Timing = tuple[float, float]  # (whole block, map alone), seconds


def executor(function: str, items: int, workers: int, chunksize: int | None) -> tuple[Timing, Any]:
    fn = getattr(scoring, function)
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(workers) as ex:
        mapping = time.perf_counter()
        results = list(ex.map(fn, range(items), chunksize=chunksize or 1))  # 1: its default
        mapped = time.perf_counter()
    return (time.perf_counter() - start, mapped - mapping), results


def snakepit(function: str, items: int, workers: int, chunksize: int | None) -> tuple[Timing, Any]:
    async def main() -> tuple[Timing, Any]:
        start = time.perf_counter()
        async with sp.open_pool(tools=[f"scoring:{function}"], size=workers) as pool:
            mapping = time.perf_counter()
            args = ({"x": x} for x in range(items))
            size: int | str = chunksize or "auto"  # "auto": its default
            async with pool.map(function, args, chunksize=size) as results:
                got = [r async for r in results]
            mapped = time.perf_counter()
        return (time.perf_counter() - start, mapped - mapping), got

    return trio.run(main)


def peers(workers: int) -> dict[str, Callable[[], tuple[Timing, Any]]]:
    out: dict[str, Callable[[], tuple[Timing, Any]]] = {}
    for workload, (function, items) in WORKLOADS.items():
        chunk = max(1, items // (CHUNKS_PER_WORKER * workers))
        for name, run in (
            ("ProcessPoolExecutor.map", executor),
            ("snakepit_trio pool.map", snakepit),
        ):
            for chunksize in (None, chunk):  # each one's default, then chunksize=
                label = f"{workload}|{name}" + (f", chunksize={chunk:,}" if chunksize else "")
                out[label] = lambda run=run, f=function, n=items, c=chunksize: run(f, n, workers, c)
    return out


def render(medians: dict[str, Timing], workers: int, repeats: int, cpu_ms: float) -> str:
    titles = {
        "trivial": f"{WORKLOADS['trivial'][1]:,} trivial items",
        "cpu": f"{WORKLOADS['cpu'][1]:,} items of {cpu_ms:.1f} ms CPU",
    }
    lines = [
        f"| {workers} workers, median of {repeats}, seconds | whole script | map alone |",
        "|---|---:|---:|",
    ]
    for label, (block, mapping) in medians.items():
        workload, name = label.split("|")
        lines.append(f"| {titles[workload]}: {name} | {block:.2f} | {mapping:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    expected = {f: [getattr(scoring, f)(x) for x in range(n)] for f, n in WORKLOADS.values()}
    start = time.process_time()
    for x in range(20):
        scoring.score(x)
    cpu_ms = (time.process_time() - start) * 1000 / 20  # one score's CPU, here and now
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    raw: dict[str, list[Timing]] = {}
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}", file=sys.stderr)
        for label, run in peers(args.workers).items():
            timing, results = run()
            assert results == expected[WORKLOADS[label.split("|")[0]][0]], label
            raw.setdefault(label, []).append(timing)
            print(f"  {label}: {timing[0]:.2f}s (map {timing[1]:.2f}s)", file=sys.stderr)
    medians = {
        label: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
        for label, runs in raw.items()
    }
    print(f"load average at end: {os.getloadavg()}", file=sys.stderr)
    print(render(medians, args.workers, args.repeats, cpu_ms))


if __name__ == "__main__":
    main()
