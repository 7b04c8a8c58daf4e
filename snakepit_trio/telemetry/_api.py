"""The public side of telemetry: ``pool.telemetry``, subscriptions, process-wide handlers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from .._core import _checks as checks
from .._public import NoPublicConstructor
from ._hub import Attached, Event, Hub, attach_global, detach_global

DEFAULT_BUFFER = 1000
_names = itertools.count(1)


class Subscription(metaclass=NoPublicConstructor):
    """The events of a ``subscribe()`` block, in order. Iterate it with ``async for``.

    Events that find its buffer full are dropped and counted (``dropped``; for a pool's
    subscription also in ``pool.stats().events_dropped``): a slow reader never slows the
    pool down. Iteration ends when the block ends, or when the pool closes (a pool's
    subscription), after the events already buffered.
    """

    __slots__ = ("_dropped", "_receive")

    def __init__(self, receive: trio.MemoryReceiveChannel[Event]) -> None:
        self._receive = receive
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Events dropped because the buffer was full."""
        return self._dropped

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        """The next event.

        Raises:
            StopAsyncIteration: the subscription (or its pool) has closed and every event
                it buffered was read.
        """
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def receive(self) -> Event:
        """Wait for the next event.

        Returns:
            The next ``Event``.

        Raises:
            trio.EndOfChannel: the subscription (or its pool) closed and every event it
                buffered was read.
        """
        try:
            return await self._receive.receive()
        except trio.ClosedResourceError:
            raise trio.EndOfChannel from None

    def __repr__(self) -> str:
        stats = self._receive.statistics()
        return f"<Subscription buffered={stats.current_buffer_used} dropped={self._dropped}>"


class _Feed:
    """The handler behind a subscription: puts each event in its channel, never waits."""

    def __init__(
        self, send: trio.MemorySendChannel[Event], sub: Subscription, hub: Hub | None
    ) -> None:
        self._send = send
        self._sub = sub
        self._hub = hub  # a pool's subscription counts its drops in the pool's stats too
        self._token = trio.lowlevel.current_trio_token()

    def __call__(self, event: Event) -> None:
        if self._hub is None:  # process-wide: the event may come from another Trio run
            try:
                here = trio.lowlevel.current_trio_token() is self._token
            except RuntimeError:
                here = False
            if not here:
                try:
                    self._token.run_sync_soon(self.put, event)
                except trio.RunFinishedError:
                    pass  # the subscriber's run is over
                return
        self.put(event)

    def put(self, event: Event) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._sub._dropped += 1
            if self._hub is not None:
                self._hub.dropped += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the block is over, or the pool closed: nobody reads any more


@asynccontextmanager
async def _subscribe(
    patterns: Any,
    buffer: Any,
    attach: Callable[[str, Any, Any], Attached | None],
    detach: Callable[[str, Attached | None], bool],
    hub: Hub | None,
) -> AsyncIterator[Subscription]:
    size = checks.whole("buffer", buffer, minimum=1, unit="events")
    assert size is not None
    send, receive = trio.open_memory_channel[Event](size)
    sub = Subscription._create(receive)
    name = f"subscription-{next(_names)}"
    entry = attach(name, patterns, _Feed(send, sub, hub))
    closer = None if hub is None else hub.on_close(send.close)
    try:
        yield sub
    finally:
        detach(name, entry)
        if hub is not None and closer is not None:
            hub.forget(closer)
        send.close()
        receive.close()


class PoolTelemetry(metaclass=NoPublicConstructor):
    """A pool's telemetry: ``pool.telemetry``. It has no public constructor.

    Handlers are synchronous callables taking one ``Event``; they run inline, in the Trio
    thread, where the event happened, so keep them cheap (``subscribe`` for anything that
    waits). A handler that raises is detached and logged once. The README's "Observability"
    section lists every event.
    """

    __slots__ = ("_hub",)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def attach(
        self, name: str, patterns: str | list[str], handler: Callable[[Event], object]
    ) -> None:
        """Call ``handler(event)`` for each event of this pool whose name matches.

        Args:
            name: the handler's name, unique among this pool's handlers (``detach`` takes it).
            patterns: an event name or pattern, or a list of them; ``*`` matches any run of
                characters (``"call.*"``, ``"worker.*"``, ``"adapter.*.stop"``, ``"*"``).
            handler: a synchronous callable taking one ``Event``.

        Raises:
            TypeError: a name, pattern or handler of the wrong type.
            ValueError: the name is taken, or a pattern is malformed or can select no event
                (the message names the events it could mean).
        """
        self._hub.attach(name, patterns, handler)

    def detach(self, name: str) -> bool:
        """Stop calling the handler attached as ``name``.

        Args:
            name: the name it was attached under.

        Returns:
            True if it was attached, False if no handler has that name (any more).

        Raises:
            TypeError: ``name`` is not a str.
            ValueError: ``name`` is empty.
        """
        return self._hub.detach(name)

    def subscribe(
        self, patterns: str | list[str], *, buffer: int = DEFAULT_BUFFER
    ) -> AbstractAsyncContextManager[Subscription]:
        """The pool's events matching ``patterns``, for the block, to iterate with ``async for``.

        Args:
            patterns: as for ``attach``.
            buffer: events kept for the reader; beyond it new events are dropped and
                counted (``Subscription.dropped``, ``pool.stats().events_dropped``).

        Returns:
            An async context manager yielding the ``Subscription``.

        Raises:
            TypeError, ValueError: a bad pattern, or a buffer that is not a whole number >= 1.
        """
        return _subscribe(patterns, buffer, self._hub.attach, self._hub.detach, self._hub)

    @property
    def handlers(self) -> list[str]:
        """The names of the handlers attached to this pool (subscriptions included)."""
        return list(self._hub.handlers.entries)

    @property
    def dropped(self) -> int:
        """Events this pool's subscriptions had no room for."""
        return self._hub.dropped

    def __repr__(self) -> str:
        return f"<PoolTelemetry {self._hub.pool!r} handlers={self.handlers}>"


def attach(name: str, patterns: str | list[str], handler: Callable[[Event], object]) -> None:
    """Call ``handler(event)`` for each matching event of every pool in this process.

    Args:
        name: the handler's name, unique among process-wide handlers.
        patterns: as for ``pool.telemetry.attach``.
        handler: a synchronous callable taking one ``Event``. It runs in the thread of the
            pool that emitted the event (pools in several threads call it from each).

    Raises:
        TypeError, ValueError: as for ``pool.telemetry.attach``.
    """
    attach_global(name, patterns, handler)


def detach(name: str) -> bool:
    """Stop calling the process-wide handler attached as ``name``.

    Args:
        name: the name it was attached under.

    Returns:
        True if it was attached, False otherwise.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: ``name`` is empty.
    """
    return detach_global(name)


def subscribe(
    patterns: str | list[str], *, buffer: int = DEFAULT_BUFFER
) -> AbstractAsyncContextManager[Subscription]:
    """The matching events of every pool in this process, for the block (under Trio).

    Args:
        patterns: as for ``pool.telemetry.attach``.
        buffer: events kept for the reader; beyond it new events are dropped and counted
            (``Subscription.dropped``).

    Returns:
        An async context manager yielding the ``Subscription``; events of pools in other
        threads' Trio runs reach it too.

    Raises:
        TypeError, ValueError: a bad pattern or buffer.
        RuntimeError: not called under Trio.
    """

    def attach_entry(name: str, patterns: Any, handler: Any) -> None:
        attach_global(name, patterns, handler)

    return _subscribe(patterns, buffer, attach_entry, detach_global, None)
