"""Bulk calls: ``map``, ``as_completed`` and ``execute_batch`` run many calls, a bounded
number at a time, and hand their results over lazily.

How this works: ``max_concurrency`` lanes (tasks) each take the next call's items from the
input (a sync or async iterable; an async one is read by one lane at a time), call, hand the
outcomes over, and take the next. A call takes one item, or a chunk of ``n``: ``chunksize=n``,
or for ``"auto"`` as many as ``AutoChunks`` says fit (``_core/_chunking.py``). A lane takes
``n`` items only while at most ``(2 * max_concurrency - 1) * n`` are taken and not yet handed
to the consumer, so never more than ``2 * max_concurrency * n`` are, and an endless input is
read only as fast as it is consumed. Just before a call is submitted, it waits while the
pool's queue has no room for it and another call of the run is under way
(``Dispatcher.has_room``): a run never makes the pool refuse a call with ``PoolSaturated``
by itself. Outcomes wait for the consumer in input order (``ordered``) or in the order the
calls finish. Lanes rather than a task per call: a call then costs one task switch on each
side instead of three, and no task is started.

Failures: an item's error is that item's outcome. Without ``return_exceptions`` the first
one (and any error of the input itself) cancels every call still running and is raised,
as itself, at the consumer's next step. The tasks live in the context manager's nursery:
leaving the block, by ``break``, an exception or cancellation, cancels the calls still
running (their workers get a cancel), and nothing outlives the block.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from . import _calling as calling
from ._circuit import CircuitBreaker
from ._core import _checks as checks
from ._core._chunking import BYTE_BUDGET, ChunkSizer
from ._core._sessions import SessionRecord
from ._engine._batches import BatchAnswer, Outcome  # Outcome: (it succeeded, its value or error)
from ._engine._engine import Engine
from ._retry import RetryPolicy

_END = object()  # what the input gives when it has no more items
# What the handles' signatures say (the names keep them short).
CallArgs = dict[str, Any] | None
ArgsSource = Iterable[CallArgs] | AsyncIterable[CallArgs]
CallSource = Iterable[tuple[str, CallArgs]] | AsyncIterable[tuple[str, CallArgs]]
ResultStream = AbstractAsyncContextManager[AsyncIterator[Any]]
PairStream = AbstractAsyncContextManager[AsyncIterator[tuple[Any, Any]]]


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


# --- the checks and the calls ----------------------------------------------------------------
def check_source(name: str, source: Any) -> Iterable[Any] | AsyncIterable[Any]:
    """Check the input of a bulk call: an iterable or async iterable of items.

    Raises:
        TypeError: anything else, or a dict, str or bytes (surely a mistake).
    """
    if isinstance(source, Mapping | str | bytes | bytearray):
        raise TypeError(
            f"{name} must be an iterable with one item per call (a list, a generator, an "
            f"async iterable), not {checks.a_type(source)}; for one call use execute()"
        )
    if isinstance(source, AsyncIterable | Iterable):
        return source
    raise TypeError(
        f"{name} must be an iterable or an async iterable with one item per call; got "
        f"{checks.shown(source)} ({checks.a_type(source)})"
    )


def check_chunksize(value: Any) -> int | None:
    """``chunksize``: a whole number of items per call, or ``"auto"`` (None).

    Raises:
        TypeError, ValueError: anything else.
    """
    allowed = "chunksize must be 'auto' or a whole number of items per call >= 1"
    if isinstance(value, str):
        if value == "auto":
            return None
        hint = checks.did_you_mean(value, ("auto",))
        raise ValueError(f"{allowed}; got {checks.shown(value)}{hint}")
    try:
        return checks.whole("chunksize", value, unit="items per call")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{allowed}; got {checks.shown(value)} ({checks.a_type(value)})") from None


class Options:
    """The options of a bulk call, checked once, and how one of its calls is made."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_concurrency: Any,
        ordered: Any,
        return_exceptions: Any,
        timeout: Any,
        idempotent: Any,
        kill_on_cancel: Any,
        retry: Any,
        breaker: Any,
        session: SessionRecord | None,
        chunksize: Any = 1,
    ) -> None:
        calling.check_options(
            "tool",  # each call's tool is checked when it is made
            timeout=timeout,
            idempotent=idempotent,
            on_progress=None,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )
        default = 2 * engine.config.worker_capacity * (1 if session else engine.config.size)
        limit = checks.whole(
            "max_concurrency",
            max_concurrency,
            unit="calls",
            none=f"twice the pool's slots, here {default}",
        )
        checks.flag("ordered", ordered)
        checks.flag("return_exceptions", return_exceptions)
        self.chunksize = check_chunksize(chunksize)  # None: "auto"
        self.engine = engine
        self.limit = default if limit is None else limit
        self.ordered: bool = ordered
        self.return_exceptions: bool = return_exceptions
        self.timeout: float | None = timeout
        self.idempotent: bool = idempotent
        self.kill_on_cancel: bool | None = kill_on_cancel
        self.retry: RetryPolicy | None = retry
        self.breaker: CircuitBreaker | None = breaker
        self.session = session
        pin = session.worker if session is not None and session.affinity == "strict" else None
        self.has_room: Callable[[], bool] = lambda: engine.core.has_room(pin)

    def execute(self, tool: str, args: Any) -> Awaitable[Any]:
        return calling.execute(
            self.engine,
            tool,
            args,
            timeout=self.timeout,
            idempotent=self.idempotent,
            on_progress=None,
            kill_on_cancel=self.kill_on_cancel,
            retry=self.retry,
            breaker=self.breaker,
            session=self.session,
        )

    def execute_chunk(
        self, tool: str, items: list[Any], *, split: bool = False
    ) -> Awaitable[BatchAnswer]:
        return calling.execute_batch(
            self.engine,
            tool,
            items,
            timeout=self.timeout,
            idempotent=self.idempotent,
            kill_on_cancel=self.kill_on_cancel,
            stop=not self.return_exceptions,  # the map stops at the first failure anyway
            retry=self.retry,
            breaker=self.breaker,
            session=self.session,
            split=split,
        )

    def may_chunk(self) -> bool:
        """Whether ``chunksize="auto"`` may put several items in one call: only where a
        chunk keeps every promise made about each item's own call. A timeout (the map's
        or the pool's), ``retry`` and ``breaker`` are promises about each call;
        ``max_requests`` counts calls; telemetry (a handler or a tracer) reports each
        call; and workers that name no "batch" capability run no chunks."""
        engine = self.engine
        config = engine.config
        return (
            self.timeout is None
            and config.timeout is None
            and self.retry is None
            and self.breaker is None
            and config.max_requests is None
            and not engine.telemetry.on
            and engine.runs_batches
        )

    def run(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        call: Callable[[Any], Awaitable[Any]],
        *,
        ordered: bool,
        pairs: bool = False,
        size: Callable[[], int] = lambda: 1,
        call_chunk: Callable[[list[Any]], Awaitable[list[Outcome | None]]] | None = None,
        singles: bool = True,
    ) -> Run:
        return Run(
            source,
            call,
            limit=self.limit,
            ordered=ordered,
            return_exceptions=self.return_exceptions,
            has_room=self.has_room,
            pairs=pairs,
            size=size,
            call_chunk=call_chunk,
            singles=singles,
        )


class AutoChunks:
    """``chunksize="auto"``: each call takes as many items as ``ChunkSizer`` says fit, from
    what the calls that ran cost (``_core/_chunking.py``); one item goes as a call of its
    own. Used only where ``Options.may_chunk``: no timeout, retry or breaker applies."""

    def __init__(self, opts: Options, tool: str) -> None:
        # Room for a chunk that comes out larger than measured, under the payload limit.
        budget = min(BYTE_BUDGET, max(1, opts.engine.config.max_payload_bytes // 8))
        self.sizer = ChunkSizer(byte_budget=budget)
        self._opts = opts
        self._tool = tool

    def size(self) -> int:
        return self.sizer.size

    def one(self, item: Any) -> Awaitable[Any]:
        opts = self._opts
        return opts.engine.execute(
            self._tool,
            item,
            timeout=None,
            idempotent=opts.idempotent,
            on_progress=None,
            kill_on_cancel=opts.kill_on_cancel,
            session=opts.session,
            measured=self._one_ran,
        )

    def _one_ran(self, run_time: float, size: int) -> None:
        self.sizer.ran(1, run_time, size)

    async def chunk(self, items: list[Any]) -> list[Outcome | None]:
        try:
            answer = await self._opts.execute_chunk(self._tool, items, split=True)
        except Exception:  # the call failed as a whole (raised on by the run)
            self.sizer.failed()
            raise
        if answer.too_large:  # nothing was sent: the first half, then the rest
            self.sizer.too_large(len(items))
            half = len(items) // 2
            first = await self._part(items[:half])
            if not self._opts.return_exceptions and any(o and not o[0] for o in first):
                return first + [None] * (len(items) - half)  # stopped there, as a chunk is
            return first + await self._part(items[half:])
        if answer.run_time is not None:  # None: nothing was sent
            self.sizer.ran(answer.ran, answer.run_time, answer.size)
        return answer.outcomes

    async def _part(self, items: list[Any]) -> list[Outcome | None]:
        if len(items) > 1:
            return await self.chunk(items)
        try:
            return [(True, await self.one(items[0]))]
        except Exception as exc:  # this item's outcome, as for any call of its own
            return [(False, exc)]


def check_pair(item: Any) -> tuple[str, Any]:
    """One item of ``as_completed`` / ``execute_batch``: a (tool, args) pair.

    Raises:
        TypeError: it is not a pair of a str and the arguments.
    """
    if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    raise TypeError(
        "each call must be a (tool, args) pair, such as ('predict', {'text': 'hi'}); got "
        f"{checks.shown(item)} ({checks.a_type(item)})"
    )


# --- the three bulk calls ----------------------------------------------------------------------
@asynccontextmanager
async def map_calls(
    engine: Engine, tool: str, args: Any, *, session: SessionRecord | None, **options: Any
) -> AsyncIterator[Results]:
    """``pool.map``: ``tool`` once per item of ``args``; see ``Pool.map``."""
    opts = Options(engine, session=session, **options)
    checks.text("tool", tool)
    source = check_source("args", args)
    engine.spec(tool, streaming=False)  # UnknownTool (or PoolClosed) before any item is read
    chunksize = opts.chunksize
    if chunksize is None and opts.may_chunk():
        auto = AutoChunks(opts, tool)
        run = opts.run(
            source, auto.one, ordered=opts.ordered, size=auto.size, call_chunk=auto.chunk
        )
    elif chunksize is None or chunksize == 1:
        run = opts.run(source, lambda item: opts.execute(tool, item), ordered=opts.ordered)
    else:

        async def call_chunk(items: list[Any]) -> list[Outcome | None]:
            return (await opts.execute_chunk(tool, items)).outcomes

        run = opts.run(
            source,
            lambda item: opts.execute(tool, item),
            ordered=opts.ordered,
            size=lambda: chunksize,
            call_chunk=call_chunk,
            singles=False,
        )
    async with running(run) as results:
        yield results


@asynccontextmanager
async def as_completed_calls(
    engine: Engine, calls: Any, *, session: SessionRecord | None, **options: Any
) -> AsyncIterator[Results]:
    """``pool.as_completed``: each (tool, args) pair, handed over as it finishes."""
    opts = Options(engine, session=session, ordered=False, **options)
    source = check_source("calls", calls)
    run = opts.run(source, lambda item: opts.execute(*check_pair(item)), ordered=False, pairs=True)
    async with running(run) as results:
        yield results


async def batch_calls(
    engine: Engine, calls: Any, *, session: SessionRecord | None, **options: Any
) -> list[Any]:
    """``pool.execute_batch``: each (tool, args) pair; the results in input order."""
    opts = Options(engine, session=session, ordered=True, **options)
    source = check_source("calls", calls)
    run = opts.run(source, lambda item: opts.execute(*check_pair(item)), ordered=True)
    async with running(run) as results:
        return [result async for result in results]
