"""Mapping a trivial function over many items: snakepit_trio's pool.map against
multiprocessing.Pool.map / imap and ProcessPoolExecutor.map, in one run.

    python benchmarks/bench_map.py [--items 100000] [--workers 2] [--repeats 3]

Each peer starts its pool, warms it up, then maps ``ping(x) -> x`` over ``--items`` integers
and collects every result; the figure is items per second (median of ``--repeats``, peers
interleaved run by run). Peers use their default chunking: ``Pool.map`` cuts the input into
about 4 chunks per worker, ``Pool.imap`` and ``ProcessPoolExecutor.map`` send one item per
task. snakepit_trio runs three times: with no ``chunksize`` (the default, ``"auto"``: chunks
sized as the map goes, from one item up to 1024), ``chunksize=256`` (items travel 256 to a
call) and one call per item (``chunksize=1``: each item a call of its own, with its own
timeout, retries and cancellation; 64 calls in flight, as a trivial call needs many in
flight to keep the workers busy); the first two with the default ``max_concurrency``, twice
the pool's slots. ``suite.py`` runs this too, so ``nox -s bench`` prints it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_adapter import ping

import snakepit_trio as sp

ADAPTER = "bench_adapter:Bench"
CHUNK = 256
WARM = 2000

CALLS_IN_FLIGHT = 64
SP_DEFAULT = "snakepit_trio pool.map (default chunking)"
SP_CALLS = f"snakepit_trio pool.map, chunksize=1, max_concurrency={CALLS_IN_FLIGHT}"
SP_CHUNKS = f"snakepit_trio pool.map, chunksize={CHUNK}"
MP_MAP = "multiprocessing.Pool.map (fork)"
MP_IMAP = "multiprocessing.Pool.imap (fork)"
PPE_MAP = "ProcessPoolExecutor.map (fork)"


def snakepit(
    items: int, workers: int, chunksize: int | None = None, in_flight: int | None = None
) -> float:
    """``chunksize`` None: not passed (the default chunking)."""
    options: dict[str, Any] = {"max_concurrency": in_flight}
    if chunksize is not None:
        options["chunksize"] = chunksize

    async def main() -> float:
        async with sp.open_pool(ADAPTER, size=workers) as pool:
            warm = ({"x": i} for i in range(WARM))
            async with pool.map("ping", warm, **options) as results:
                async for _ in results:
                    pass
            t = time.perf_counter()
            n = 0
            args = ({"x": i} for i in range(items))
            async with pool.map("ping", args, **options) as results:
                async for _ in results:
                    n += 1
            elapsed = time.perf_counter() - t
        assert n == items
        return items / elapsed

    return trio.run(main)


def mp_pool(items: int, workers: int, how: str) -> float:
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(ping, range(WARM))
        t = time.perf_counter()
        if how == "map":
            n = len(pool.map(ping, range(items)))
        else:
            n = sum(1 for _ in pool.imap(ping, range(items)))
        elapsed = time.perf_counter() - t
    assert n == items
    return items / elapsed


def ppe(items: int, workers: int) -> float:
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as ex:
        list(ex.map(ping, range(WARM)))
        t = time.perf_counter()
        n = sum(1 for _ in ex.map(ping, range(items)))
        elapsed = time.perf_counter() - t
    assert n == items
    return items / elapsed


def peers(items: int, workers: int) -> dict[str, Callable[[], float]]:
    return {
        SP_DEFAULT: lambda: snakepit(items, workers),
        SP_CHUNKS: lambda: snakepit(items, workers, CHUNK),
        SP_CALLS: lambda: snakepit(items, workers, 1, CALLS_IN_FLIGHT),
        MP_MAP: lambda: mp_pool(items, workers, "map"),
        MP_IMAP: lambda: mp_pool(items, workers, "imap"),
        PPE_MAP: lambda: ppe(items, workers),
    }


def one_round(items: int, workers: int) -> dict[str, float]:
    """Every peer once: items per second."""
    out = {}
    for name, run in peers(items, workers).items():
        t = time.perf_counter()
        out[name] = run()
        print(f"  {name}: {out[name]:,.0f}/s ({time.perf_counter() - t:.0f}s)", file=sys.stderr)
    return out


def render(medians: dict[str, float], items: int, workers: int, repeats: int) -> str:
    def ratio(a: str, b: str) -> str:
        return f"{medians[a] / medians[b]:.2f}x" if medians.get(a) and medians.get(b) else "n/a"

    lines = [
        f"| map {items:,} trivial calls, {workers} workers (median of {repeats}) | items/s |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {rate:,.0f} |" for name, rate in medians.items()]
    target = {SP_DEFAULT: " (target ≥ 3x)"}
    lines += [""]
    lines += [
        f"- {name}: {ratio(name, MP_IMAP)} Pool.imap{target.get(name, '')}, "
        f"{ratio(name, PPE_MAP)} ProcessPoolExecutor.map, {ratio(name, MP_MAP)} Pool.map"
        for name in (SP_DEFAULT, SP_CHUNKS)
    ]
    lines += [f"- {SP_CALLS}: {ratio(SP_CALLS, MP_IMAP)} Pool.imap"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    raw: dict[str, list[float]] = {}
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}", file=sys.stderr)
        for name, rate in one_round(args.items, args.workers).items():
            raw.setdefault(name, []).append(rate)
    medians = {name: statistics.median(rates) for name, rates in raw.items()}
    print(render(medians, args.items, args.workers, args.repeats))


if __name__ == "__main__":
    main()
