"""The worker side of examples/resilience.py: a service that fails now and then."""

from __future__ import annotations

import collections

from snakepit_trio.worker import Adapter, tool


class Service(Adapter):
    async def initialize(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    @tool(description="Look a key up; the backend fails the first two lookups of each key")
    def lookup(self, key: str) -> dict[str, object]:
        self.calls[key] += 1
        if self.calls[key] <= 2:  # on this worker: a flaky backend
            raise ConnectionError(f"{key}: backend unavailable")
        return {"key": key, "length": len(key)}

    @tool
    def down(self) -> None:
        raise ConnectionError("the backend is down")

    @tool
    def ping(self) -> str:
        return "pong"

    @tool(description="A cheap feature vector of a text")
    def features(self, text: str) -> list[int]:
        return [len(text), text.count(" "), sum(map(ord, text)) % 97]
