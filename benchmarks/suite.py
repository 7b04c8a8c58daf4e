"""The benchmark suite: snakepit_trio and its peers on the same workloads, in one run.

    python benchmarks/suite.py [--repeats 3] [--out benchmarks/results] [--only NAME ...]

Workloads (each figure is the median of ``--repeats``; peers interleave run by run):
- start: seconds until 4 and 8 workers have each run a call;
- sequential trivial call ``ping(x) -> x``: p50/p99 µs (2 workers);
- throughput: calls/s with 4, 16 and 64 calls in flight, on 2 and 4 workers;
- round trip of 10 MB of bytes and of an 8 MB float64 ndarray (ms);
- streaming (snakepit_trio with windows of 64 and 1024 chunks; Ray if installed; a raw Trio
  socket as the reference): chunks/s and first-chunk ms;
- memory: host RSS and per-worker USS with 10,000 calls in flight (snakepit_trio);
- map: 100,000 trivial calls with pool.map against multiprocessing.Pool.map / imap and
  ProcessPoolExecutor.map (``bench_map.py``, which also runs alone).
- worker runtimes (``bench_runtimes.py``): Python and Node.js workers side by side,
  sequential latency, 64 in flight, stream chunks/s, start.
- workers over TCP (``bench_remote.py``): the local lane, TCP plain and TCP with TLS side by
  side, sequential latency, 64 in flight, 10 MB echo GB/s, stream chunks/s.
- telemetry (``bench_telemetry.py``): 64 in flight on 2 workers with nothing attached, one
  handler, OpenTelemetry tracing, and the package before telemetry (``--telemetry-baseline``).
Writes ``suite.json`` and ``suite.md`` to ``--out`` and prints the markdown with the ratios
the targets are stated in.

The package's bytecode is compiled first, as an installed package's is: the peers come from
wheels, compiled when they were installed, and on a machine that sets
PYTHONDONTWRITEBYTECODE an editable install would otherwise compile the worker runtime again
in every process that starts (about 60 ms of each template's start on the 2-core VM).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import trio
import trio.testing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_map
import bench_remote
import bench_runtimes
import bench_streaming
import bench_telemetry
import peers
import raw_peer

import snakepit_trio as sp

MP = "multiprocessing.Pool (fork)"
PPE = "ProcessPoolExecutor (fork)"
TP = "trio-parallel"
SP = "snakepit_trio"
RAW = raw_peer.RawTrio.name
RAW_STREAM = "raw unix socket, Trio client (reference)"
AIO = "anyio.to_process"
MIB10 = 10 * 2**20
MAP_ITEMS, MAP_WORKERS = 100_000, 2


def _payloads() -> dict[str, Any]:
    out: dict[str, Any] = {"bytes 10 MB": os.urandom(10 * 2**20)}
    try:
        import numpy as np

        out["ndarray 8 MB"] = np.random.default_rng(0).random(2**20)
    except ImportError:
        pass
    return out


def run_peer(peer: Any, figures: dict[str, list[float]]) -> None:
    def record(key: str, fn: Any, *args: Any) -> None:
        try:
            value = fn(*args)
        except Exception as exc:  # a peer that cannot run a workload is reported, not fatal
            print(f"  {peer.name}: {key} failed: {exc!r}", file=sys.stderr)
            return
        if isinstance(value, tuple):
            figures.setdefault(f"{key} p50 µs", []).append(value[0])
            figures.setdefault(f"{key} p99 µs", []).append(value[1])
        else:
            figures.setdefault(key, []).append(value)

    for n in (4, 8):
        record(f"start {n} workers ms", lambda n=n: peer.start(n) * 1e3)
    for key, fn in getattr(peer, "extra", dict)().items():
        record(key, fn)
    record("seq", peer.seq)
    if not hasattr(peer, "thr"):  # the raw reference: start, latency and streams only
        return
    for workers in (2, 4):
        for in_flight in (4, 16, 64):
            record(f"{in_flight} in flight, {workers} workers /s", peer.thr, workers, in_flight)
    for label, value in _payloads().items():
        record(f"{label} round trip ms", lambda v=value: peer.payload(v, 5) * 1e3)


async def _memory_10k() -> dict[str, float]:
    """Host RSS and worker USS with 10,000 calls in flight (most of them queued)."""
    me = psutil.Process()
    async with sp.open_pool(peers.ADAPTER, size=4) as pool:
        await pool.execute("ping", {"x": 1})
        base_rss = me.memory_info().rss
        base_uss = [psutil.Process(w.pid).memory_full_info().uss for w in pool.workers()]
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                for _ in range(10_000):
                    nursery.start_soon(pool.execute, "hold", {"seconds": 30})
                await trio.testing.wait_all_tasks_blocked()  # every call is submitted
                assert pool.stats().queued + pool.stats().in_flight == 10_000
                peak_rss = me.memory_info().rss
                peak_uss = [psutil.Process(w.pid).memory_full_info().uss for w in pool.workers()]
                scope.cancel()
    return {
        "host RSS MB (10k in flight)": peak_rss / 2**20,
        "host RSS growth MB": (peak_rss - base_rss) / 2**20,
        "worker USS MB, mean (10k in flight)": statistics.mean(peak_uss) / 2**20,
        "worker USS growth MB, max": max(p - b for p, b in zip(peak_uss, base_uss, strict=True))
        / 2**20,
    }


# A stream's window is how far its worker may run ahead of the consumer (chunks buffered on
# the host at most). At 64 a stream pauses for credit every 32 chunks, and those round trips
# weigh; at 1024 they hardly do. Both are measured: the window is the user's choice.
STREAM_WINDOWS = (64, 1024)


def _streaming() -> dict[str, tuple[float, float]]:
    out = {}
    for window in STREAM_WINDOWS:
        for tool, label in (("chunks", "sync generator"), ("achunks", "async generator")):
            name = f"snakepit_trio stream ({label}, window {window})"
            out[name] = trio.run(bench_streaming._sp_stream, tool, window)
    out[RAW_STREAM] = raw_peer.RawTrio().stream()
    return out


def _ray_streaming(repeats: int) -> list[tuple[float, float]]:
    """Last, after every other figure: Ray leaves threads behind in this process that slow
    down whatever runs after it (in one run, sequential p50 of thread-using peers doubled)."""
    out = []
    for _ in range(repeats):
        ray = bench_streaming._ray_stream()
        if ray is None:
            break
        out.append(ray)
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def render(med: dict[str, dict[str, float]], extra: dict[str, Any], repeats: int) -> str:
    keys = list(dict.fromkeys(k for m in med.values() for k in m))
    lines = [
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, medians of {repeats}; "
        "compare ratios within this run, not absolute numbers.",
        "",
    ]
    names = list(med)
    for group in (
        [k for k in keys if k.startswith(("start", "replace"))],
        [k for k in keys if k.startswith("seq")],
        [k for k in keys if "in flight" in k],
        [k for k in keys if "round trip" in k],
    ):
        lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for k in group:
            cells = [f"{med[n][k]:,.0f}" if k in med[n] else "—" for n in names]
            if "round trip" in k:
                cells = [f"{med[n][k]:,.1f}" if k in med[n] else "—" for n in names]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["| stream of 20,000 chunks | chunks/s | first chunk ms |", "|---|---:|---:|"]
    for name, (rate, first) in extra["streaming"].items():
        lines.append(f"| {name} | {rate:,.0f} | {first:.2f} |")
    lines += ["", "| memory, snakepit_trio, 4 workers | MB |", "|---|---:|"]
    for k, v in extra["memory"].items():
        lines.append(f"| {k} | {v:.1f} |")
    if extra.get("map"):
        lines += ["", bench_map.render(extra["map"], MAP_ITEMS, MAP_WORKERS, repeats).rstrip()]
    lines += ["", *targets(med, extra)]
    return "\n".join(lines) + "\n"


def targets(med: dict[str, dict[str, float]], extra: dict[str, Any]) -> list[str]:
    """The performance targets, each as a ratio measured in this run."""
    s, mp, tp, ppe = med.get(SP, {}), med.get(MP, {}), med.get(TP, {}), med.get(PPE, {})
    aio, raw = med.get(AIO, {}), med.get(RAW, {})
    out = ["Targets, as ratios in this run:", ""]
    out.append(
        f"- sequential p50 {_ratio(s.get('seq p50 µs'), aio.get('seq p50 µs'))} "
        f"anyio.to_process's (target ≤ 1x); p99 "
        f"{_ratio(s.get('seq p99 µs'), tp.get('seq p99 µs'))} trio-parallel's (≤ 1x)"
    )
    for w in (2, 4):
        key4 = f"4 in flight, {w} workers /s"
        best = max(
            (peer for name, peer in med.items() if name not in (SP, RAW) and key4 in peer),
            key=lambda peer: peer[key4],
            default={},
        )
        best_name = next((n for n, p in med.items() if p is best), "n/a")

        def vs(n: int, w: int = w) -> str:
            key = f"{n} in flight, {w} workers /s"
            return _ratio(s.get(key), mp.get(key))

        out.append(
            f"- {w} workers: 4 in flight {_ratio(s.get(key4), best.get(key4))} the best peer "
            f"({best_name}; target ≥ 1x); 16 in flight {vs(16)} multiprocessing.Pool "
            f"(≥ 2x); 64 in flight {vs(64)} (≥ 3x)"
        )
    start = s.get("start 8 workers ms")
    out.append(
        f"- 8 workers ready: {_ratio(start, raw.get('start 8 workers, forked from the host ms'))}"
        f" 8 raw Trio servers forked from the host, {_ratio(start, raw.get('start 8 workers ms'))}"
        " 8 started as fresh interpreters (target ≤ 1.2x)"
    )
    streams = extra.get("streaming", {})
    raw_first = streams.get(RAW_STREAM, (None, None))[1]
    for window in STREAM_WINDOWS:
        for label in ("sync generator", "async generator"):
            name = f"snakepit_trio stream ({label}, window {window})"
            rate, first = streams.get(name, (None, None))
            if rate is not None:
                out.append(
                    f"- stream ({label}, window {window}): {rate:,.0f} chunks/s (target ≥ "
                    f"250,000); first chunk {_ratio(first, raw_first)} the raw socket's (≤ 3x)"
                )
    echo = s.get("bytes 10 MB round trip ms")
    if echo:
        out.append(f"- 10 MB bytes round trip: {2 * MIB10 / echo / 1e6:.2f} GB/s (target ≥ 2)")
    out.append(
        f"- ndarray round trip: ProcessPoolExecutor / snakepit_trio = "
        f"{_ratio(ppe.get('ndarray 8 MB round trip ms'), s.get('ndarray 8 MB round trip ms'))}"
        " (target ≥ 3x)"
    )
    return out


# The last commit before telemetry: the "no telemetry" row of the telemetry section.
TELEMETRY_BASELINE = "d171df2"


def _telemetry(rounds: int, baseline: str | None) -> dict[str, Any]:
    try:
        return bench_telemetry.run(rounds, 20000, baseline)
    except subprocess.CalledProcessError as exc:  # the ref is not in this clone's history
        if baseline is None:
            raise
        print(f"telemetry baseline {baseline!r} unavailable ({exc}); without it", file=sys.stderr)
        return bench_telemetry.run(rounds, 20000, None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--only", nargs="*", help="peer names to run (default: all)")
    parser.add_argument("--telemetry-rounds", type=int, default=7, help="0: skip that section")
    parser.add_argument("--no-runtimes", action="store_true", help="skip the Node.js rows")
    parser.add_argument("--no-remote", action="store_true", help="skip the TCP worker rows")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    parser.add_argument(
        "--telemetry-baseline",
        default=TELEMETRY_BASELINE,
        help="git ref of the package without telemetry ('' for none)",
    )
    args = parser.parse_args()
    compileall.compile_dir(os.path.dirname(sp.__file__), quiet=1)
    chosen = [p for p in peers.all_peers() if not args.only or p.name in args.only]
    raw: dict[str, dict[str, list[float]]] = {p.name: {} for p in chosen}
    streams: dict[str, list[tuple[float, float]]] = {}
    memory: dict[str, list[float]] = {}
    maps: dict[str, list[float]] = {}
    for rep in range(args.repeats):
        for peer in chosen:
            t = time.perf_counter()
            run_peer(peer, raw[peer.name])
            print(f"repeat {rep + 1}: {peer.name} {time.perf_counter() - t:.0f}s", file=sys.stderr)
        for name, value in _streaming().items():
            streams.setdefault(name, []).append(value)
        for k, v in trio.run(_memory_10k).items():
            memory.setdefault(k, []).append(v)
        for k, v in bench_map.one_round(MAP_ITEMS, MAP_WORKERS).items():
            maps.setdefault(k, []).append(v)
    ray = _ray_streaming(args.repeats)
    if ray:
        streams["Ray actor streaming generator"] = ray
    med = {p: {k: statistics.median(v) for k, v in d.items()} for p, d in raw.items()}
    extra = {
        "streaming": {
            n: (statistics.median(r for r, _ in v), statistics.median(f for _, f in v))
            for n, v in streams.items()
        },
        "memory": {k: statistics.median(v) for k, v in memory.items()},
        "map": {k: statistics.median(v) for k, v in maps.items()},
    }
    text = render(med, extra, args.repeats)
    if not args.no_runtimes:
        runtimes = bench_runtimes.measure(args.repeats)
        extra["runtimes"] = runtimes
        text += "\n\n" + bench_runtimes.render(runtimes, args.repeats) + "\n"
    if not args.no_remote:
        remote = bench_remote.measure(args.repeats, ray=not args.no_ray)
        extra["remote"] = remote
        text += "\n" + bench_remote.render(remote, args.repeats) + "\n"
    if args.telemetry_rounds:
        telemetry = _telemetry(args.telemetry_rounds, args.telemetry_baseline or None)
        extra["telemetry"] = telemetry
        text += "\n" + bench_telemetry.render(telemetry)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.md").write_text(text)
    (out / "suite.json").write_text(
        json.dumps({"medians": med, "raw": raw, **extra, "repeats": args.repeats}, indent=2)
    )


if __name__ == "__main__":
    main()
