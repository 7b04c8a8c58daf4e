"""A pool of Node.js workers, driven from Trio like any other pool.

    python examples/node_worker/main.py

Needs Node.js 20 or later, and the worker package's dependencies (``npm ci`` in
``workers/node``, which ``nox -s tests`` runs; in an application, ``npm install
snakepit-trio-worker`` beside the adapter).
"""

from __future__ import annotations

import os

import trio

import snakepit_trio as sp

ADAPTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adapter.mjs")


async def main() -> None:
    async with sp.open_pool(ADAPTER, runtime="node", size=2) as pool:
        print(f"{len(pool.workers())} node workers: {[w.runtime for w in pool.workers()]}")
        print("tools:", sorted(t.name for t in pool.tools()))
        counted = await pool.execute("word_count", {"text": "the quick brown fox"})
        print(f"word_count -> {counted['words']} words")
        async with pool.stream("running_total", {"numbers": [1, 2, 3, 4]}) as totals:
            print("running totals:", [t async for t in totals])

        @pool.host_tool
        def lookup_user(user_id: int) -> dict[str, str]:
            return {"name": {7: "Ada"}.get(user_id, "stranger")}

        print(await pool.execute("greet", {"user_id": 7}))
        try:
            await pool.execute("word_count", {"text": 42})
        except sp.InvalidArguments as exc:
            print(f"InvalidArguments: {exc.param}")
    print("pool closed")


if __name__ == "__main__":
    trio.run(main)
