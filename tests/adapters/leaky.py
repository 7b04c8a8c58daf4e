"""Tools that keep memory, as leaky libraries do."""

from __future__ import annotations

import os

from snakepit_trio.worker import Adapter, tool


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Leaky(Adapter):
    async def initialize(self) -> None:
        self.kept: list[bytearray] = []

    @tool
    def leak(self, megabytes: int) -> float:
        """Keep ``megabytes`` more (every page touched); returns this worker's RSS in MB."""
        block = bytearray(megabytes * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        self.kept.append(block)
        return rss_mb()

    @tool
    def pid(self) -> int:
        return os.getpid()
