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


class EchoStreams(StreamBench):
    """The calls of ``bench_adapter.Bench`` and these streams in one adapter: one pool per
    row of ``bench_remote.py`` runs every figure."""

    @tool
    def ping(self, x: int) -> int:
        return x

    @tool
    def echo(self, value: object) -> object:
        return value
