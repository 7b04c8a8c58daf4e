"""The worker side of the benchmarks."""

from __future__ import annotations

from snakepit_trio.worker import Adapter, tool


class Bench(Adapter):
    @tool
    def ping(self, x: int) -> int:
        return x


def ping(x: int) -> int:
    """The same work for the peers (module-level so every peer can pickle it)."""
    return x
