"""The work every peer runs: the snakepit adapter and the same functions for the others."""

from __future__ import annotations

import os
import time
from typing import Any

from snakepit_trio.worker import Adapter, tool


class Bench(Adapter):
    @tool
    def ping(self, x: int) -> int:
        return x

    @tool
    def echo(self, value: Any) -> Any:
        return value

    @tool
    def nap_pid(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    @tool
    async def hold(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


# Module-level, so every peer can pickle them.
def ping(x: int) -> int:
    return x


def echo(value: Any) -> Any:
    return value


def nap_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
