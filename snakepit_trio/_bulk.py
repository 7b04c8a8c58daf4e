"""Bulk calls: ``map``, ``as_completed`` and ``execute_batch`` run many calls, a bounded
number at a time, and hand their results over lazily (the lanes that do it: ``_lanes.py``).

Here: their options, checked once before anything is read, and how each call is made. A map
call takes one item, or a chunk (one BATCH call for several items, run one after another in
one worker): ``chunksize=n`` items, or for ``"auto"`` as many as ``AutoChunks`` says fit,
from what the calls that ran cost (``_core/_chunking.py``) -- but only where a chunk keeps
every promise made about each item's call (``Options.may_chunk``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from . import _calling as calling
from ._circuit import CircuitBreaker
from ._core import _checks as checks
from ._core._chunking import BYTE_BUDGET, ChunkSizer
from ._core._sessions import SessionRecord
from ._engine._batches import BatchAnswer, Outcome  # Outcome: (it succeeded, its value or error)
from ._engine._engine import Engine
from ._lanes import Results, Run, running
from ._retry import RetryPolicy

# What the handles' signatures say (the names keep them short).
CallArgs = dict[str, Any] | None
ArgsSource = Iterable[CallArgs] | AsyncIterable[CallArgs]
CallSource = Iterable[tuple[str, CallArgs]] | AsyncIterable[tuple[str, CallArgs]]
ResultStream = AbstractAsyncContextManager[AsyncIterator[Any]]
PairStream = AbstractAsyncContextManager[AsyncIterator[tuple[Any, Any]]]


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
    own. Used only where ``Options.may_chunk`` (no timeout, retry or breaker applies: a
    call is made straight to the engine)."""

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
