"""Tools that fail on the worker's result path, or break the process, in every way we know of.

Imported inside real worker processes (tests/e2e/test_worker_faults.py,
test_worker_process.py, test_withdrawn_calls.py) and in memory
(tests/pool/test_inline_faults.py). Every kind of tool (sync, async, sync generator, async
generator) has a twin, so one rule can be checked for all four.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

from snakepit_trio.worker import Adapter, tool

BUFFER = 2 << 20  # over the default shared-memory threshold (1 MiB)


class Unprintable(Exception):
    """An exception whose message cannot be built."""

    def __str__(self) -> str:
        raise KeyboardInterrupt


class Unformattable(Exception):
    """An exception whose traceback cannot be formatted."""

    @property
    def __notes__(self) -> list[str]:
        raise KeyboardInterrupt


class _Treacherous:
    def __eq__(self, other: object) -> bool:
        raise KeyboardInterrupt

    __hash__ = object.__hash__


class Unnameable(Exception):
    """An exception whose type cannot even be named (no frame can be built for it)."""


Unnameable.__module__ = _Treacherous()  # type: ignore[assignment]


class Exhausting:
    """A value whose encoding runs out of memory (msgpack asks it for its class)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise MemoryError("no memory left to encode this value")


def deep(depth: int, size: int = BUFFER) -> Any:
    """A buffer of ``size`` bytes nested ``depth`` lists deep."""
    value: Any = b"x" * size
    for _ in range(depth):
        value = [value]
    return value


def _raise(what: str) -> None:
    if what == "SystemExit":
        raise SystemExit(3)
    if what == "KeyboardInterrupt":
        raise KeyboardInterrupt
    if what == "Unprintable":
        raise Unprintable
    if what == "Unformattable":
        raise Unformattable("its notes raise")
    if what == "Unnameable":
        raise Unnameable("its module is not a name")
    if what == "surrogate":
        raise ValueError("a message no UTF-8 can hold: \ud800")
    raise ValueError(f"unknown exception {what!r}")


def _wait_for_release(path: str) -> None:
    """Connect to the test's socket (which tells it the call runs), block until released."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.recv(1)


def _mark(path: str) -> None:
    with open(path, "x"):
        pass


class Faults(Adapter):
    # --- tools that raise ------------------------------------------------------------
    @tool
    def raises(self, what: str) -> None:
        _raise(what)

    @tool
    async def araises(self, what: str) -> None:
        await asyncio.sleep(0)
        _raise(what)

    @tool
    def gen_raises(self, what: str) -> Iterator[int]:
        yield 1
        _raise(what)

    @tool
    async def agen_raises(self, what: str) -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0)
        _raise(what)

    @tool
    async def agen_raises_on_close(self, what: str) -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(3600)
        finally:
            _raise(what)

    # --- results and chunks that cannot be encoded ----------------------------------
    @tool
    def unencodable(self) -> Any:
        return Exhausting()

    @tool
    async def aunencodable(self) -> Any:
        return Exhausting()

    @tool
    def gen_unencodable(self) -> Iterator[Any]:
        yield 1
        yield Exhausting()
        yield 3

    @tool
    async def agen_unencodable(self) -> AsyncIterator[Any]:
        yield 1
        yield Exhausting()
        yield 3

    @tool
    def deep(self, depth: int) -> Any:
        return deep(depth)

    @tool
    def gen_deep(self, depth: int) -> Iterator[Any]:
        yield 1
        yield deep(depth)
        yield 3

    @tool
    def echo(self, value: Any = None) -> Any:
        return value

    @tool
    async def aecho(self, value: Any = None) -> Any:
        return value

    # --- the process ----------------------------------------------------------------
    @tool
    def broken_pipe(self) -> None:
        r, w = os.pipe()
        os.close(r)
        try:
            os.write(w, b"x")
        finally:
            os.close(w)

    @tool
    def segfault(self) -> None:
        ctypes.string_at(0)

    # --- calls held until the test releases them ------------------------------------
    @tool
    def hold(self, path: str) -> str:
        _wait_for_release(path)
        return "released"

    @tool
    async def ahold(self, path: str) -> str:
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            await reader.read(1)
        finally:
            writer.close()
        return "released"

    @tool
    def mark(self, path: str) -> str:
        _mark(path)
        return "marked"

    @tool
    async def amark(self, path: str) -> str:
        _mark(path)
        return "marked"

    @tool
    def gen_mark(self, path: str) -> Iterator[str]:
        _mark(path)
        yield "marked"

    @tool
    async def agen_mark(self, path: str) -> AsyncIterator[str]:
        _mark(path)
        yield "marked"
