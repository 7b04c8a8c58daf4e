"""One asyncio event loop thread per pool, owned by the pool's nursery.

Crossings are the cost that matters: Trio -> asyncio uses ``call_soon_threadsafe`` and
asyncio -> Trio uses ``TrioToken.run_sync_soon``, and both directions coalesce: everything
posted before the other side runs is handed over in ONE crossing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

T = TypeVar("T")


def _new_loop() -> asyncio.AbstractEventLoop:
    # Never through the global policy: another library (e.g. trio-asyncio) may have replaced it.
    try:
        import uvloop
    except ImportError:
        return asyncio.SelectorEventLoop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self.loop = loop
        self._token = token
        self._lock = threading.Lock()
        self._inbound: list[tuple[Callable[[Any], None], Any]] = []
        self._inbound_scheduled = False

    # --- asyncio thread -> Trio ----------------------------------------------------------
    def post_to_trio(self, fn: Callable[[Any], None], arg: Any) -> None:
        """From the asyncio thread: run ``fn(arg)`` in the Trio thread soon, batched."""
        with self._lock:
            self._inbound.append((fn, arg))
            if self._inbound_scheduled:
                return
            self._inbound_scheduled = True
        try:
            self._token.run_sync_soon(self._drain_inbound)
        except trio.RunFinishedError:
            pass  # the Trio run is over: nobody is left to receive

    def _drain_inbound(self) -> None:
        with self._lock:
            items, self._inbound = self._inbound, []
            self._inbound_scheduled = False
        for fn, arg in items:
            fn(arg)

    # --- Trio -> asyncio thread ----------------------------------------------------------
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the asyncio loop and return its result.

        Cancelling the calling Trio task cancels the asyncio task and waits until it has
        really finished, so nothing outlives the caller.
        """
        done = trio.Event()
        fut = asyncio.run_coroutine_threadsafe(_call(fn, *args), self.loop)
        fut.add_done_callback(lambda _: self._wake(done))
        try:
            await done.wait()
        except trio.Cancelled:
            fut.cancel()
            with trio.CancelScope(shield=True):
                await done.wait()
            raise
        return fut.result()

    def _wake(self, event: trio.Event) -> None:
        try:
            self._token.run_sync_soon(event.set)
        except trio.RunFinishedError:
            pass


async def _call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


async def _cancel_everything() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def open_bridge(name: str = "snakepit-bridge") -> AsyncIterator[Bridge]:
    """Start the asyncio loop thread; on exit cancel its tasks, stop it and join it."""
    loop = _new_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    bridge = Bridge(loop, trio.lowlevel.current_trio_token())
    try:
        yield bridge
    finally:
        with trio.CancelScope(shield=True):
            stopped = asyncio.run_coroutine_threadsafe(_cancel_everything(), loop)
            await trio.to_thread.run_sync(stopped.result)
            loop.call_soon_threadsafe(loop.stop)
            await trio.to_thread.run_sync(thread.join)
            loop.close()
