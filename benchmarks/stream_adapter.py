"""The worker side of the streaming benchmark."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from snakepit_trio.worker import Adapter, tool


class StreamBench(Adapter):
    @tool
    def chunks(self, n: int, size: int = 8) -> Iterator[bytes]:
        payload = b"x" * size
        for _ in range(n):
            yield payload

    @tool
    async def achunks(self, n: int, size: int = 8) -> AsyncIterator[bytes]:
        payload = b"x" * size
        for _ in range(n):
            yield payload
