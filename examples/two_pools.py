"""Two pools configured in TOML: calls routed by tool name, each pool with its own stats.

Run from the repository root:  python examples/two_pools.py
"""

from __future__ import annotations

import pathlib

import trio

import snakepit_trio as sp

HERE = pathlib.Path(__file__).parent
DOCS = ["The cat sat on the mat.", "A dog and a cat!", "Dogs chase cats.", "The hat."]


async def main() -> None:
    configs = sp.load_pools(HERE / "snakepit.toml")
    async with sp.open_pools(configs) as pools:  # both pools start at once
        print("pools:", {name: len(pool.workers()) for name, pool in pools.items()})

        # Each call goes to the one pool that has the tool.
        counted = await pools.execute("word_count", {"text": DOCS[0], "top": 1})
        print("word_count ->", counted["top"])
        async with trio.open_nursery() as nursery:
            for i, text in enumerate(DOCS):
                nursery.start_soon(pools.execute, "add", {"doc_id": f"doc{i}", "text": text})
        print("search 'cat' ->", await pools.execute("search", {"word": "cat"}))

        # A pool can also be named; a tool no pool has is refused before anything is sent.
        print("index tools:", [t.name for t in pools["index"].tools()])
        print("pruned:", await pools["index"].execute("prune"), "rare words")
        [worker] = pools["index"].workers()
        print(f"index worker: thread_safe={worker.thread_safe}, GIL: {worker.gil_enabled}")
        try:
            await pools.execute("serach", {"word": "cat"})
        except sp.UnknownTool as exc:
            print("UnknownTool:", exc)

        for name, stats in pools.stats().items():
            print(f"{name}: {stats.requests} requests, {stats.workers} workers, {stats.health}")
    print("both pools closed")


if __name__ == "__main__":
    trio.run(main)
