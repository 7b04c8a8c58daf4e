"""From ProcessPoolExecutor: the same map, first with concurrent.futures, then with a pool
that serves the same plain functions (``open_pool(tools=[...])``: no Adapter class).

Run from the repository root:  python examples/port_from_executor.py
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

import trio
from scoring import score

import snakepit_trio as sp

ITEMS = range(200)


def with_executor() -> list[int]:
    with ProcessPoolExecutor(2) as ex:
        return list(ex.map(score, ITEMS))


async def with_pool() -> list[int]:
    async with (
        sp.open_pool(tools=["scoring:score"], size=2) as pool,
        pool.map("score", ({"x": x} for x in ITEMS)) as results,
    ):
        return [r async for r in results]


async def more_than_a_map() -> None:
    """What the pool adds: tools described, bad calls refused, streams, chunked maps."""
    entries = ["scoring:score", "scoring:double", "scoring:scores"]
    async with sp.open_pool(tools=entries, size=2) as pool:
        for spec in pool.tools():
            params = ", ".join(f"{p.name}: {p.type}" for p in spec.params)
            print(f"tool {spec.name}({params}): {spec.description}")
        try:
            await pool.execute("score", {"x": "7"})
        except sp.InvalidArguments as exc:
            print(f"score(x='7') -> InvalidArguments: {exc}")
        async with pool.stream("scores", {"start": 0, "count": 3}) as chunks:
            print("streamed scores:", [s async for s in chunks] == [score(x) for x in range(3)])
        items = ({"x": x} for x in range(100_000))
        async with pool.map("double", items, chunksize=256) as results:
            total = sum([r async for r in results])
        print(f"100,000 doubled in chunks of 256: sum {total:,}")


def main() -> None:
    t = time.perf_counter()
    expected = with_executor()
    print(f"ProcessPoolExecutor: {len(expected)} scores in {time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    got = trio.run(with_pool)
    print(f"snakepit_trio: {len(got)} scores in {time.perf_counter() - t:.2f}s")
    print("same results:", got == expected)
    trio.run(more_than_a_map)
    print("pools closed")


if __name__ == "__main__":
    main()
