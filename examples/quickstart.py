"""Quick start: a pool of two worker processes, calls in parallel, and a remote error.

Run from the repository root:  python examples/quickstart.py
"""

from __future__ import annotations

import time

import trio

import snakepit_trio as sp


async def main() -> None:
    started = time.perf_counter()
    async with sp.open_pool("demo_adapter:TextTools", size=2) as pool:
        print(f"2 workers ready in {time.perf_counter() - started:.2f}s: {pool!r}")
        print("tools:", ", ".join(t.name for t in pool.tools()))

        result = await pool.execute(
            "word_count", {"text": "The cat and the hat. The cat sat!", "top": 2}
        )
        print("word_count ->", result)

        # Eight calls at once; they spread over both workers.
        squares: dict[int, int] = {}

        async def square(x: int) -> None:
            squares[x] = await pool.execute("slow_square", {"x": x})

        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for x in range(8):
                nursery.start_soon(square, x)
        print(
            f"8 slow squares in {time.perf_counter() - t0:.2f}s ->", dict(sorted(squares.items()))
        )

        # An exception in the worker arrives as a typed error with the remote traceback.
        try:
            await pool.execute("divide", {"a": 1, "b": 0})
        except sp.RemoteError as exc:
            print(f"divide -> RemoteError: {exc.remote_type}: {exc.remote_message}")

        # Bad arguments are refused before anything is sent.
        try:
            await pool.execute("word_count", {"txt": "typo"})
        except sp.InvalidArguments as exc:
            print(f"word_count -> InvalidArguments: {exc}")

        print("stats:", pool.stats())
    print("pool closed; workers stopped")


if __name__ == "__main__":
    trio.run(main)
