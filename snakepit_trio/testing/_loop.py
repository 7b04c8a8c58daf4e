"""An asyncio event loop inside a Trio run, in the same thread, on Trio's clock.

Why: a fake worker runs the real worker runtime, which is asyncio code, and a user's adapter
may ``await asyncio.sleep(60)``. Under ``trio.testing.MockClock`` that must take no real time.
So asyncio's clock is Trio's clock, and a Trio task (``drive``) steps the loop: it runs one
iteration (``_run_once``) whenever callbacks are ready or a timer is due, and otherwise
sleeps in Trio until the next asyncio timer or until something is scheduled. Trio's
autojump sees those sleeps and jumps the clock.

During each step the loop is asyncio's running loop, asyncio's async-generator hooks are
installed and sniffio says "asyncio"; all three are put back after the step, so Trio code
between steps sees Trio. The selector never blocks: Trio does all the waiting.

Relies on asyncio internals that have kept their meaning from Python 3.11 to 3.13:
``_run_once``, ``_ready``, ``_scheduled``, ``_thread_id`` and the async-generator hooks.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sniffio
import trio

T = TypeVar("T")


class _NoWaitSelector(selectors.DefaultSelector):
    def select(self, timeout: float | None = None) -> Any:
        return super().select(0)


class SteppedLoop(asyncio.SelectorEventLoop):
    """Create it inside ``trio.run``; drive it with ``open_stepped_loop``."""

    def __init__(self) -> None:
        super().__init__(_NoWaitSelector())
        self._trio_token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()
        self._lot = trio.lowlevel.ParkingLot()  # whoever steps the loop waits here
        self._last_time = trio.current_time()

    def time(self) -> float:
        try:
            self._last_time = trio.current_time()
        except RuntimeError:  # another thread, or after the run
            pass
        return self._last_time

    # Anything that may add work wakes the driver.
    def _poke(self) -> None:
        self._lot.unpark_all()

    # Typed loosely on purpose: these only wrap the base methods and pass everything on.
    def call_soon(self, *args: Any, **kwargs: Any) -> asyncio.Handle:  # type: ignore[override]
        handle = super().call_soon(*args, **kwargs)
        self._poke()
        return handle

    def call_at(self, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:  # type: ignore[override]
        handle = super().call_at(*args, **kwargs)  # call_later goes through here
        self._poke()
        return handle

    def call_soon_threadsafe(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> asyncio.Handle:
        handle = super().call_soon_threadsafe(*args, **kwargs)
        if threading.get_ident() == self._trio_thread:
            self._poke()
        else:
            try:
                self._trio_token.run_sync_soon(self._poke)
            except trio.RunFinishedError:
                pass
        return handle

    def _next_deadline(self) -> float:
        if self._ready:  # type: ignore[attr-defined]
            return -math.inf
        # A cancelled timer must not set the deadline: autojump would jump to it.
        scheduled = self._scheduled  # type: ignore[attr-defined]
        return min((h.when() for h in scheduled if not h.cancelled()), default=math.inf)

    def _step(self) -> None:
        prev_loop = asyncio.events._get_running_loop()
        prev_hooks = sys.get_asyncgen_hooks()
        prev_lib, sniffio.thread_local.name = sniffio.thread_local.name, "asyncio"
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook,  # type: ignore[attr-defined]
            finalizer=self._asyncgen_finalizer_hook,  # type: ignore[attr-defined]
        )
        asyncio.events._set_running_loop(self)
        try:
            self._run_once()  # type: ignore[attr-defined]
        finally:
            asyncio.events._set_running_loop(prev_loop)
            sys.set_asyncgen_hooks(*prev_hooks)
            sniffio.thread_local.name = prev_lib

    async def drive(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Step the loop until cancelled (a Trio task)."""
        self._check_closed()  # type: ignore[attr-defined]
        self._thread_id = threading.get_ident()  # is_running() is True while driven
        task_status.started()
        try:
            await self._step_until(lambda: False)
        finally:
            self._thread_id = None  # type: ignore[assignment]

    async def _step_until(self, done: Callable[[], bool]) -> None:
        while not done():
            if self._next_deadline() <= self.time():
                self._step()
                await trio.lowlevel.checkpoint()  # Trio's tasks run between steps
                continue
            with trio.move_on_at(self._next_deadline()):
                await self._lot.park()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` as an asyncio task and return its result. Cancelling the caller
        cancels the task, which unwinds at once (see ``_unwind``)."""
        task = self.create_task(coro)
        done = trio.Event()
        task.add_done_callback(lambda _: done.set())
        try:
            await done.wait()
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._unwind({task})
            raise
        return task.result()

    async def _unwind(self, tasks: set[asyncio.Task[Any]], *, cancel: bool = True) -> None:
        """Cancel ``tasks`` and run what they do at once in answer; no time passes.

        As in a worker process that is stopped: a task that ignores its cancellation and
        waits on is abandoned where it waits. Stepped here, not by ``drive``, so this works
        when the driving task is already gone (steps are atomic: two steppers are fine).
        """
        if cancel:
            for task in tasks:
                task.cancel()
        while not all(t.done() for t in tasks) and self._next_deadline() <= self.time():
            self._step()
            await trio.lowlevel.checkpoint()
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: nobody waits for it any more

    async def _shut_down(self) -> None:
        """Unwind every task, then let async generators finish, as far as they can at once."""
        await self._unwind(asyncio.all_tasks(self))
        await self._unwind({self.create_task(self.shutdown_asyncgens())}, cancel=False)
        # What still waits is abandoned, like the code of a killed process: say nothing.
        self.set_exception_handler(lambda loop, context: None)


@asynccontextmanager
async def open_stepped_loop() -> AsyncIterator[SteppedLoop]:
    """A stepped loop for the block; its tasks are cancelled and it is closed on exit."""
    loop = SteppedLoop()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(loop.drive)
            try:
                yield loop
            finally:
                with trio.CancelScope(shield=True):
                    await loop._shut_down()
                nursery.cancel_scope.cancel()
    finally:
        loop.close()
