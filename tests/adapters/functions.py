"""Module-level functions served as tools (``open_pool(tools=[...])``), and names that are
not functions, for the tests of function tools."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

from snakepit_trio.worker import ToolContext, tool


def score(x: int, weight: float = 1.0) -> float:
    """Score one item.

    The rest of the docstring is not the description.
    """
    return x * weight


async def ascore(x: int) -> dict[str, object]:
    """Score one item on the worker's loop."""
    await asyncio.sleep(0)
    return {"x": 2 * x, "loop": asyncio.get_running_loop().is_running()}


def count(n: int) -> Iterator[int]:
    """Count from 0 to n - 1."""
    yield from range(n)


async def acount(n: int) -> AsyncIterator[int]:
    """Count from 0 to n - 1, on the worker's loop."""
    for i in range(n):
        await asyncio.sleep(0)
        yield i


@tool(name="lineage", description="Where this worker came from")
def where(ctx: ToolContext) -> dict[str, int]:
    return {"pid": os.getpid(), "ppid": os.getppid(), "request_id": ctx.request_id}


def echo(value: object = None) -> object:
    """Named as tests.adapters.basic:Echo's tool is: served with it, a clash."""
    return value


@tool(name="score")
def score_again(x: int) -> int:
    """Renamed to score: served with score, a clash."""
    return x


def takes_args(*values: int) -> int:
    """Positional arguments: a tool is called by keyword, so it cannot serve."""
    return sum(values)


THRESHOLD = 0.5  # not a function


class Scorer:
    """A class, not a function."""

    def __call__(self, x: int) -> int:
        return x
