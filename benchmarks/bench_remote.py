"""Workers reached over TCP against the local lane: the same adapter, the same figures, one run.

Rows (each a pool of 2 workers running ``stream_adapter:EchoStreams``):
- local lane: ``open_pool`` as by default (workers it starts, shared memory over 1 MB);
- TCP plain: ``endpoints`` to 2 workers started here with ``--listen tcp://127.0.0.1:0``,
  with ``shm_threshold=None``: every payload inline, as with workers on another host;
- TCP TLS: the same with ``--tls-cert/--tls-key`` (a throwaway trustme CA) and
  ``TLSConfig(ca=...)`` on the host;
- TCP same host: TCP plain with the default ``shm_threshold``, which a worker on this host
  takes in its handshake (large payloads through shared memory, as on the local lane).
Figures, medians of ``--repeats`` (the rows alternate within each repeat):
- sequential ``ping(x) -> x``: p50/p99 µs;
- calls/s with 64 in flight;
- ``echo`` of 10 MB of bytes: GB/s, as 10 MB / round trip time;
- stream of 20,000 chunks of 8 bytes: chunks/s, and first-chunk latency (ms).

With Ray installed (the ``ray`` extra; ``--no-ray`` skips them), two more rows
(``bench_ray.py``): "Ray launcher", the same pool with its workers placed by
``RayLauncher`` on a local Ray (TLS with a pinned certificate), and "Ray actors", the same
workload on 2 plain Ray actors (``ray.get``, ``ray.wait``, a streaming generator), for
comparison with what a Ray user would otherwise write.

Another row is a function that yields an opened pool of that adapter (``PoolOpener``); add
it to ``ROWS`` or pass it to ``measure``. A row that is no pool is a ``DirectRow``: a
function of the folder that returns the figures itself.

    python benchmarks/bench_remote.py [--repeats 3] [--no-ray] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_ray
import bench_streaming
from peers import _payload_trio, _seq_trio, _thr_trio

import snakepit_trio as sp

HERE = Path(__file__).resolve().parent
ADAPTER = "stream_adapter:EchoStreams"
WORKERS = 2
TOKEN = "bench-remote-token-0123456789abcdef"
PAYLOAD = 10 * 2**20

# A row: given the folder holding the token and certificates, an opened pool of ADAPTER.
PoolOpener = Callable[[Path], AbstractAsyncContextManager[sp.Pool]]


class DirectRow:
    """A row that measures the workload itself (no pool): ``run(folder)`` -> figures."""

    def __init__(self, run: Callable[[Path], dict[str, float]]) -> None:
        self.run = run


@asynccontextmanager
async def _listening_worker(folder: Path, tls: bool) -> AsyncIterator[str]:
    """Start a worker with ``--listen tcp://127.0.0.1:0``; yield its endpoint; stop it."""
    command = [sys.executable, "-m", "snakepit_trio.worker", "--adapter", ADAPTER]
    command += ["--listen", "tcp://127.0.0.1:0", "--token-file", str(folder / "token")]
    if tls:
        command += ["--tls-cert", str(folder / "worker.pem"), "--tls-key", str(folder / "key")]
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path}
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                data = await process.stdout.receive_some(256)
                if not data:
                    raise RuntimeError(f"the worker exited before READY: {command}")
                line += data
        word, _pid, port = line.split()
        assert word == b"READY", line
        yield f"tcp://127.0.0.1:{int(port)}"
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(10):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()  # type: ignore[union-attr]


@asynccontextmanager
async def local_lane(folder: Path) -> AsyncIterator[sp.Pool]:
    async with sp.open_pool(ADAPTER, size=WORKERS) as pool:
        yield pool


def _tcp(tls: bool, shm: bool = False) -> PoolOpener:
    @asynccontextmanager
    async def opener(folder: Path) -> AsyncIterator[sp.Pool]:
        async with contextlib.AsyncExitStack() as stack:
            urls = [
                await stack.enter_async_context(_listening_worker(folder, tls))
                for _ in range(WORKERS)
            ]
            config = sp.TLSConfig(ca=str(folder / "ca.pem")) if tls else None
            threshold = {} if shm else {"shm_threshold": None}  # None: as from elsewhere
            async with sp.open_pool(
                ADAPTER, endpoints=urls, token=TOKEN, tls=config, **threshold
            ) as pool:
                yield pool

    return opener


ROWS: dict[str, PoolOpener] = {
    "local lane": local_lane,
    "TCP plain": _tcp(tls=False),
    "TCP TLS": _tcp(tls=True),
    "TCP same host": _tcp(tls=False, shm=True),
}


def write_files(folder: Path) -> None:
    """The token file and a throwaway CA with a certificate for 127.0.0.1 (trustme)."""
    import trustme

    (folder / "token").write_text(TOKEN + "\n")
    (folder / "token").chmod(0o600)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key"))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(folder / "worker.pem"), append=True)


async def one_round(opener: PoolOpener, folder: Path) -> dict[str, float]:
    payload = os.urandom(PAYLOAD)
    async with opener(folder) as pool:

        async def echo() -> None:
            back = await pool.execute("echo", {"value": payload})
            assert len(back) == PAYLOAD

        p50, p99 = await _seq_trio(lambda i: pool.execute("ping", {"x": i}))
        rate = await _thr_trio(lambda i: pool.execute("ping", {"x": i}), 64)
        seconds = await _payload_trio(echo, 5)
        chunks, first = await bench_streaming.stream_figures(pool, "achunks", 64)
    return {
        "seq p50 µs": p50,
        "seq p99 µs": p99,
        "64 in flight calls/s": rate,
        "bytes 10 MB echo GB/s": PAYLOAD / seconds / 1e9,
        "stream chunks/s": chunks,
        "stream first chunk ms": first,
    }


def ray_rows() -> dict[str, PoolOpener | DirectRow]:
    """The Ray rows, if Ray is installed (else none)."""
    if not bench_ray.available():
        return {}
    return {"Ray launcher": bench_ray.ray_pool, "Ray actors": DirectRow(bench_ray.ray_actor_round)}


def measure(
    repeats: int, rows: dict[str, PoolOpener | DirectRow] | None = None, ray: bool = True
) -> dict[str, dict[str, float]]:
    """Medians per row; the rows alternate within each repeat."""
    rows = {**ROWS, **(ray_rows() if ray else {})} if rows is None else rows
    uses_ray = any(name.startswith("Ray") for name in rows)
    raw: dict[str, dict[str, list[float]]] = {name: {} for name in rows}
    if uses_ray:
        bench_ray.start_ray()  # once, from the main thread, for every round
    try:
        with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
            folder = Path(tmp)
            write_files(folder)
            for rep in range(repeats):
                for name, row in rows.items():
                    t = time.perf_counter()
                    if isinstance(row, DirectRow):
                        figures = row.run(folder)
                    else:
                        figures = trio.run(one_round, row, folder)
                    for key, value in figures.items():
                        raw[name].setdefault(key, []).append(value)
                    print(
                        f"repeat {rep + 1}: {name} {time.perf_counter() - t:.0f}s", file=sys.stderr
                    )
    finally:
        if uses_ray:
            bench_ray.stop_ray()
    return {n: {k: statistics.median(v) for k, v in d.items()} for n, d in raw.items()}


def render(medians: dict[str, dict[str, float]], repeats: int) -> str:
    names = list(medians)
    base, others = names[0], names[1:]
    lines = [
        f"| over TCP (median of {repeats}, {WORKERS} workers) | "
        + " | ".join(names)
        + "".join(f" | {o} / {base}" for o in others)
        + " |",
        "|---|" + "---:|" * (len(names) + len(others)),
    ]
    for key in medians[base]:
        values = [medians[n].get(key) for n in names]
        cells = [f"{v:,.2f}" if v is not None and v < 10 else f"{v:,.0f}" for v in values]
        ratios = [
            f"{medians[o][key] / medians[base][key]:.2f}x" if key in medians[o] else "n/a"
            for o in others
        ]
        lines.append(f"| {key} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the medians here")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args()
    medians = measure(args.repeats, ray=not args.no_ray)
    print(render(medians, args.repeats))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": medians, "repeats": args.repeats}, f, indent=2)


if __name__ == "__main__":
    main()
