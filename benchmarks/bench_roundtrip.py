"""Round-trip benchmark: snakepit_trio against its peers, in one run.

Measures, for a trivial call ``ping(x) -> x``:
- sequential latency p50/p99 (pool of 2, one call at a time);
- throughput with 64 calls in flight, pools of 2 and 4 workers.
Peers: ProcessPoolExecutor (fork), multiprocessing.Pool (fork), trio-parallel.
Each figure is the median over ``--repeats`` runs, peers interleaved run by run.

    python benchmarks/bench_roundtrip.py [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_adapter import ping

import snakepit_trio as sp

SEQ_CALLS = 2000
THR_CALLS = 20000
IN_FLIGHT = 64


def _quantiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


# --- snakepit_trio ---------------------------------------------------------------------------
async def _sp_seq() -> tuple[float, float]:
    async with sp.open_pool("bench_adapter:Bench", size=2) as pool:
        for i in range(200):
            await pool.execute("ping", {"x": i})
        lat = []
        for i in range(SEQ_CALLS):
            t = time.perf_counter()
            await pool.execute("ping", {"x": i})
            lat.append(time.perf_counter() - t)
    return _quantiles(lat)


async def _trio_in_flight(call: Callable[[int], Awaitable[object]], warmup: int) -> float:
    """Calls/s with IN_FLIGHT Trio tasks each calling ``call`` back to back."""
    per_task = THR_CALLS // IN_FLIGHT

    async def run(n: int) -> None:
        for i in range(n):
            await call(i)

    async with trio.open_nursery() as nursery:  # warm-up
        for _ in range(IN_FLIGHT):
            nursery.start_soon(run, warmup)
    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(IN_FLIGHT):
            nursery.start_soon(run, per_task)
    return per_task * IN_FLIGHT / (time.perf_counter() - t)


async def _sp_thr(workers: int) -> float:
    async with sp.open_pool("bench_adapter:Bench", size=workers) as pool:
        return await _trio_in_flight(lambda i: pool.execute("ping", {"x": i}), warmup=20)


# --- trio-parallel -----------------------------------------------------------------------------
async def _tp_seq() -> tuple[float, float]:
    import trio_parallel

    limiter = trio.CapacityLimiter(2)
    async with trio_parallel.open_worker_context() as ctx:
        for i in range(200):
            await ctx.run_sync(ping, i, limiter=limiter)
        lat = []
        for i in range(SEQ_CALLS):
            t = time.perf_counter()
            await ctx.run_sync(ping, i, limiter=limiter)
            lat.append(time.perf_counter() - t)
    return _quantiles(lat)


async def _tp_thr(workers: int) -> float:
    import trio_parallel

    limiter = trio.CapacityLimiter(workers)
    async with trio_parallel.open_worker_context() as ctx:
        return await _trio_in_flight(lambda i: ctx.run_sync(ping, i, limiter=limiter), warmup=5)


# --- concurrent.futures / multiprocessing --------------------------------------------------------
def _windowed(submit: Callable[[int, Callable[[object], None]], None]) -> float:
    window = threading.Semaphore(IN_FLIGHT)
    done = threading.Event()
    remaining = [THR_CALLS]
    lock = threading.Lock()

    def finished(_: object) -> None:
        window.release()
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    t = time.perf_counter()
    for i in range(THR_CALLS):
        window.acquire()
        submit(i, finished)
    done.wait()
    return THR_CALLS / (time.perf_counter() - t)


def _ppe_seq() -> tuple[float, float]:
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        for i in range(200):
            ex.submit(ping, i).result()
        lat = []
        for i in range(SEQ_CALLS):
            t = time.perf_counter()
            ex.submit(ping, i).result()
            lat.append(time.perf_counter() - t)
    return _quantiles(lat)


def _ppe_thr(workers: int) -> float:
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        list(ex.map(ping, range(200)))
        return _windowed(lambda i, cb: ex.submit(ping, i).add_done_callback(cb))


def _mp_seq() -> tuple[float, float]:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for i in range(200):
            pool.apply(ping, (i,))
        lat = []
        for i in range(SEQ_CALLS):
            t = time.perf_counter()
            pool.apply(ping, (i,))
            lat.append(time.perf_counter() - t)
    return _quantiles(lat)


def _mp_thr(workers: int) -> float:
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(ping, range(200))
        return _windowed(lambda i, cb: pool.apply_async(ping, (i,), callback=cb))


PEERS: dict[str, dict[str, Callable[..., object]]] = {
    "snakepit_trio": {"seq": lambda: trio.run(_sp_seq), "thr": lambda w: trio.run(_sp_thr, w)},
    "ProcessPoolExecutor (fork)": {"seq": _ppe_seq, "thr": _ppe_thr},
    "multiprocessing.Pool (fork)": {"seq": _mp_seq, "thr": _mp_thr},
    "trio-parallel": {"seq": lambda: trio.run(_tp_seq), "thr": lambda w: trio.run(_tp_thr, w)},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--only", nargs="*", help="peers to run (default: all)")
    args = parser.parse_args()
    peers = {k: v for k, v in PEERS.items() if not args.only or k in args.only}
    raw: dict[str, dict[str, list[float]]] = {p: {} for p in peers}
    for rep in range(args.repeats):
        for name, fns in peers.items():
            p50, p99 = fns["seq"]()  # type: ignore[misc]
            raw[name].setdefault("p50_us", []).append(p50)
            raw[name].setdefault("p99_us", []).append(p99)
            for w in (2, 4):
                raw[name].setdefault(f"thr{w}", []).append(fns["thr"](w))  # type: ignore[arg-type]
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)
    med = {p: {k: statistics.median(v) for k, v in d.items()} for p, d in raw.items()}
    base = med.get("multiprocessing.Pool (fork)")
    print(f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, medians of {args.repeats}")
    print(f"calls in flight for throughput: {IN_FLIGHT}; sequential pool size: 2\n")
    print("| peer | seq p50 µs | seq p99 µs | 64 in flight, 2 workers /s | 4 workers /s |")
    print("|---|---:|---:|---:|---:|")
    for name, m in med.items():
        cells = f"{m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['thr2']:,.0f} | {m['thr4']:,.0f}"
        print(f"| {name} | {cells} |")
    sp_m = med.get("snakepit_trio")
    if sp_m and base:
        r2, r4 = sp_m["thr2"] / base["thr2"], sp_m["thr4"] / base["thr4"]
        print(f"\nsnakepit_trio / multiprocessing.Pool throughput: {r2:.2f}x (2), {r4:.2f}x (4)")
        for name, m in med.items():
            if name != "snakepit_trio":
                print(f"snakepit_trio p50 / {name} p50: {sp_m['p50_us'] / m['p50_us']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": med, "raw": raw}, f, indent=2)


if __name__ == "__main__":
    main()
