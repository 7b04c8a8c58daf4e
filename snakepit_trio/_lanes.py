"""The lanes of a bulk run (``map``, ``as_completed``, ``execute_batch``; ``_bulk.py`` makes
its calls): they read the input, call, and hand the outcomes over lazily.

How this works: ``max_concurrency`` lanes (tasks) each take the next call's items from the
input (a sync or async iterable; an async one is read by one lane at a time), call, hand the
outcomes over, and take the next. A call takes ``n`` items, as ``size()`` says at that moment
(1, or a chunk). A lane takes ``n`` items only while at most ``(2 * max_concurrency - 1) * n``
are taken and not yet handed to the consumer, so never more than ``2 * max_concurrency * n``
are, and an endless input is read only as fast as it is consumed. Just before a call is
submitted, it waits while the pool's queue has no room for it and another call of the run is
under way (``Dispatcher.has_room``): a run never makes the pool refuse a call with
``PoolSaturated`` by itself. Outcomes wait for the consumer in input order (``ordered``) or
in the order the calls finish. Lanes rather than a task per call: a call then costs one task
switch on each side instead of three, and no task is started.

Failures: an item's error is that item's outcome. Without ``return_exceptions`` the first
one (and any error of the input itself) cancels every call still running and is raised,
as itself, at the consumer's next step. The tasks live in the context manager's nursery:
leaving the block, by ``break``, an exception or cancellation, cancels the calls still
running (their workers get a cancel), and nothing outlives the block.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._engine._batches import Outcome  # (it succeeded, its value or its error)

_END = object()  # what the input gives when it has no more items


class Run:
    """One bulk run: its lanes, their calls, and the outcomes waiting for the consumer."""

    def __init__(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        call: Callable[[Any], Awaitable[Any]],
        *,
        limit: int,
        ordered: bool,
        return_exceptions: bool,
        has_room: Callable[[], bool],
        pairs: bool = False,
        size: Callable[[], int] = lambda: 1,
        call_chunk: Callable[[list[Any]], Awaitable[list[Outcome | None]]] | None = None,
        singles: bool = True,
    ) -> None:
        self._source = source
        self._call = call
        self._size = size  # items the next call takes (call_chunk makes calls of several)
        self._call_chunk = call_chunk
        self._singles = singles  # one item taken alone goes through ``call``
        self._limit = limit
        self._ordered = ordered
        self._return_exceptions = return_exceptions
        self._has_room = has_room
        self._pairs = pairs  # hand (item, result) pairs (as_completed), not results
        self.scope = trio.CancelScope()
        self.taken = 0  # items taken from the input
        self.handed = 0  # outcomes handed to the consumer
        self.running = 0  # calls started and not finished
        self._submitted = 0  # calls past the queue gate and not finished
        self.exhausted = False  # the input has no more items
        self.error: BaseException | None = None  # raised at the consumer's next step
        self._by_index: dict[int, Outcome] = {}  # ordered: finished, not yet handed
        self._next = 0  # ordered: the index to hand next
        self._fifo: deque[Outcome] = deque()  # unordered: finished, not yet handed
        self._consumer = trio.lowlevel.ParkingLot()
        self._lanes_waiting = trio.lowlevel.ParkingLot()
        self._gate = trio.lowlevel.ParkingLot()

    # --- the consumer's side ---------------------------------------------------------------
    def take(self) -> Outcome | None:
        """The next outcome to hand over, if one is ready."""
        if self._ordered:
            outcome = self._by_index.pop(self._next, None)
            if outcome is None:
                return None
            self._next += 1
        elif self._fifo:
            outcome = self._fifo.popleft()
        else:
            return None
        self.handed += 1
        if self._lanes_waiting and not self._full():
            self._lanes_waiting.unpark_all()
        return outcome

    @property
    def finished(self) -> bool:
        """Every outcome was handed over."""
        return self.exhausted and self.running == 0 and self.handed == self.taken

    async def wait(self) -> None:
        """Until an outcome, an error or the end may be there."""
        await self._consumer.park()

    def stop(self) -> None:
        """The consumer left: cancel the lanes and every call still running."""
        self.scope.cancel()

    # --- the lanes and their calls ----------------------------------------------------------
    async def drive(self) -> None:
        """Run the lanes until the input ends or fails, or the run is stopped."""
        source = self._source
        is_async = isinstance(source, AsyncIterable)
        try:
            items: Any = aiter(source) if is_async else iter(source)  # type: ignore[arg-type]
        except Exception as exc:  # the input's own __iter__ failed: raised as itself
            self._fail(exc)
            return
        reading = trio.Lock() if is_async else None
        with self.scope:
            async with trio.open_nursery() as lanes:
                for _ in range(self._limit):
                    lanes.start_soon(self._lane, items, reading)
        self._consumer.unpark_all()

    async def _lane(self, items: Any, reading: trio.Lock | None) -> None:
        try:
            while True:
                if reading is None:
                    taken = await self._take_sync(items)
                else:
                    async with reading:  # an async iterator is read by one lane at a time
                        taken = await self._take_async(items)
                if taken is None:
                    return
                index, group = taken
                self.running += 1
                if len(group) == 1 and self._singles:
                    await self._one(index, group[0])
                else:
                    await self._one_chunk(index, group)
        except Exception as exc:  # the input itself failed: raised as itself
            self._fail(exc)

    async def _room(self) -> bool:
        """Wait until the next call's items may be taken; False once the input has ended
        or the run stopped (a lane goes on without a checkpoint after a failure: no item
        after it)."""
        while self._full() and not self._over():
            await self._lanes_waiting.park()
        return not self._over()

    def _full(self) -> bool:
        # Taking n more items would leave more than 2 * limit * n read and not consumed
        # (n: the size of the next call; 2 * limit items with one item per call).
        return self.taken - self.handed > (2 * self._limit - 1) * self._size()

    def _over(self) -> bool:
        return self.exhausted or self.scope.cancel_called

    async def _take_sync(self, items: Any) -> tuple[int, list[Any]] | None:
        if not await self._room():  # before items are taken, not after
            return None
        size = self._size()
        group: list[Any] = []
        while len(group) < size:
            item = next(items, _END)
            if item is _END:
                break
            group.append(item)
        return self._taken(group, size)

    async def _take_async(self, items: Any) -> tuple[int, list[Any]] | None:
        if not await self._room():
            return None
        size = self._size()  # read before the first await: what _room found room for
        group: list[Any] = []
        while len(group) < size:
            item = await anext(items, _END)
            if item is _END:
                break
            group.append(item)
        return self._taken(group, size)

    def _taken(self, group: list[Any], size: int) -> tuple[int, list[Any]] | None:
        if len(group) < size:  # the input has ended
            self.exhausted = True
            self._lanes_waiting.unpark_all()  # lanes waiting for room: nothing more to take
            self._consumer.unpark_all()
        if not group:
            return None
        index = self.taken
        self.taken += len(group)
        return index, group

    async def _one(self, index: int, item: Any) -> None:
        """One item's call; its outcome waits for the consumer."""
        outcome: Outcome
        try:
            await self._gate_open()
            try:
                outcome = (True, await self._call(item))
            finally:
                self._gate_left()
        except Exception as exc:  # this item's outcome
            if not self._return_exceptions:
                self._fail(exc)
                return
            outcome = (False, exc)
        finally:
            self._ended()
        if self._pairs:
            outcome = (outcome[0], (item, outcome[1]))
        self._deliver(index, outcome)
        self._consumer.unpark_all()

    async def _one_chunk(self, first: int, group: list[Any]) -> None:
        """One call for a chunk of items; each item's outcome waits for the consumer."""
        assert self._call_chunk is not None
        outcomes: list[Outcome | None]
        try:
            await self._gate_open()
            try:
                outcomes = await self._call_chunk(group)
            finally:
                self._gate_left()
        except Exception as exc:  # the chunk's call failed: every item's outcome
            if not self._return_exceptions:
                self._fail(exc)
                return
            outcomes = [(False, exc)] * len(group)
        finally:
            self._ended()
        if not self._return_exceptions:
            failure = next((got for got in outcomes if got is not None and not got[0]), None)
            if failure is not None:
                self._fail(failure[1])
                return
        stopped: Outcome | None = None
        for offset, got in enumerate(outcomes):
            # None: it did not run, an item before it ended the chunk (its outcome then).
            outcome = got if got is not None else stopped
            assert outcome is not None
            if not outcome[0]:
                stopped = outcome
            self._deliver(first + offset, outcome)
        self._consumer.unpark_all()

    async def _gate_open(self) -> None:
        # Wait while the queue is full and a call of ours is under way: one ending makes
        # room. With none under way the call goes (the queue is full of others' calls).
        while self._submitted and not self._has_room():
            await self._gate.park()
        self._submitted += 1

    def _gate_left(self) -> None:
        self._submitted -= 1
        if self._gate:
            self._gate.unpark()

    def _ended(self) -> None:
        self.running -= 1

    def _deliver(self, index: int, outcome: Outcome) -> None:
        if self._ordered:
            self._by_index[index] = outcome
        else:
            self._fifo.append(outcome)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            self.scope.cancel()
        self._consumer.unpark_all()


class Results:
    """What a bulk call's ``async with`` gives: ``async for`` over its results."""

    __slots__ = ("_run",)

    def __init__(self, run: Run) -> None:
        self._run = run

    def __aiter__(self) -> Results:
        return self

    async def __anext__(self) -> Any:
        run = self._run
        while True:
            if run.error is not None:
                raise run.error
            outcome = run.take()
            if outcome is not None:
                await trio.lowlevel.checkpoint_if_cancelled()
                return outcome[1]
            if run.finished:
                await trio.lowlevel.checkpoint()
                raise StopAsyncIteration
            await run.wait()


@asynccontextmanager
async def running(run: Run) -> AsyncIterator[Results]:
    """Run ``run`` for the block; whatever the block raises comes out as itself."""
    raised: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run.drive)
        try:
            yield Results(run)
        except BaseException as exc:  # kept out of the nursery, which would wrap it
            raised = exc
        finally:
            run.stop()
    if raised is not None:
        raise raised
