"""Stream: the public handle of a streaming call (its state is the engine's StreamHandle).

Backpressure is credit based: the worker may run at most ``window`` chunks ahead of the
consumer, so a slow consumer keeps memory flat on both sides. Leaving the ``async with``
before the end abandons the call: the worker gets a CANCEL and closes the generator (its
``finally`` runs); the worker's slot stays taken until it has.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from ._engine._calls import StreamHandle
from ._public import NoPublicConstructor
from ._shared._codec import decode

__all__ = ["Stream"]


class Stream(metaclass=NoPublicConstructor):
    """The chunks a streaming tool yields, in order. Get one from ``pool.stream()``.

    Iterate it with ``async for``. Iteration raises the call's error (``RemoteError``,
    ``WorkerCrashed``, ``RequestTimeout``, ...) after the chunks that arrived before it.
    """

    __slots__ = ("_handle",)

    def __init__(self, handle: StreamHandle) -> None:
        self._handle = handle

    @staticmethod
    @asynccontextmanager
    async def _opening(
        opened: AbstractAsyncContextManager[StreamHandle],
    ) -> AsyncIterator[Stream]:
        # The engine's stream call, seen through the public handle.
        async with opened as handle:
            yield Stream._create(handle)

    def __repr__(self) -> str:
        h = self._handle
        state = "done" if h.finished else "open"
        return f"<Stream {h.tool!r} {state} received={h.received} buffered={len(h.buffer)}>"

    @property
    def tool(self) -> str:
        """The streaming tool's name."""
        return self._handle.tool

    @property
    def finished(self) -> bool:
        """True once the final frame (end or error) arrived or the call failed."""
        return self._handle.finished

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        """The next chunk.

        Raises:
            StopAsyncIteration: the tool's generator finished.
            RemoteError, WorkerCrashed, RequestTimeout, QueueTimeout, StreamIdleTimeout:
                the call failed (after every chunk that arrived before the failure).
        """
        handle = self._handle
        payload = handle.take() if handle.buffer else await handle.next_payload()
        return decode(payload, what=handle.what, unmapped=handle.unmapped)

    def close(self) -> None:
        """Stop the stream early (leaving ``async with`` does this).

        The worker closes the generator (its ``finally`` runs); chunks already buffered are
        dropped.

        Raises:
            Nothing; closing a finished or closed stream does nothing.
        """
        self._handle.close()


async def feed(chunks: Stream, callback: Callable[[Any], object]) -> None:
    """Call ``callback(chunk)`` (sync or async) for each chunk, in order."""
    async for chunk in chunks:
        result = callback(chunk)
        if inspect.isawaitable(result):
            await result
