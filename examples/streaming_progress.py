"""Streaming with backpressure and a progress bar driven by the worker's progress events.

Run from the repository root:  python examples/streaming_progress.py
(uses `rich` for the bar: pip install rich)
"""

from __future__ import annotations

import trio
from rich.progress import Progress

import snakepit_trio as sp


async def main() -> None:
    async with sp.open_pool("report_adapter:Reports", size=1) as pool:
        with Progress(transient=True) as bar:
            task = bar.add_task("summarising", total=None)

            def on_progress(p: sp.Progress) -> None:
                bar.update(task, completed=p.done, total=p.total, description=p.message or "")

            best = None
            async with pool.stream(
                "summarise", {"rows": 50}, window=8, on_progress=on_progress
            ) as rows:
                async for row in rows:
                    if best is None or row["score"] > best["score"]:
                        best = row
        print(f"streamed 50 rows; best row {best}")

        # Leaving early stops the generator in the worker (its finally runs).
        async with pool.stream("summarise", {"rows": 1000}) as rows:
            async for row in rows:
                if row["row"] == 2:
                    break
        print("stopped a 1000-row stream after 3 rows")
        # The worker's slot frees once the generator has closed; the next call waits for it.
        async with pool.stream("summarise", {"rows": 1}) as rows:
            print("next stream:", [row async for row in rows])
        print("in flight now:", pool.stats().in_flight)


if __name__ == "__main__":
    trio.run(main)
