"""Pool: the public handle of a running pool, a facade over the engine (``_engine/``).

Get one from ``open_pool`` (``_lifecycle.py``) or ``snakepit_trio.testing.open_fake_pool``.
Every method here validates what the caller passed and hands it to the engine; no state
lives here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import attrs
import trio

from . import _bulk as bulk
from . import _calling as calling
from . import _host_tools as host_tools
from ._bulk import ArgsSource, CallSource, PairStream, ResultStream
from ._circuit import CircuitBreaker
from ._config import PoolConfig
from ._core import _checks as checks
from ._core._dispatcher import CallState
from ._core._sessions import SessionRecord
from ._core._worker_state import WorkerState
from ._engine import _admission as admission
from ._engine._engine import Engine
from ._engine._host_calls import HostCallInfo
from ._errors import PoolClosed
from ._progress import ProgressCallback
from ._public import NoPublicConstructor
from ._retry import RetryPolicy
from ._session import Session
from ._stats import CallInfo, PoolStats, SessionInfo, WorkerInfo
from ._streaming import Stream, feed
from ._tools import ToolSpec
from .telemetry._api import PoolTelemetry

__all__ = ["HostToolContext", "Pool"]


# Here, not in a module of its own: it names Pool, and modules may not import each other.
@attrs.frozen
class HostToolContext:
    """Passed to a host tool that declares a ``HostToolContext`` parameter (or one named
    ``ctx``).

    Attributes:
        pool: the pool; ``ctx.pool.execute(...)`` inside a host tool is a nested call (see
            the README's "Host tools" for how nested calls are placed).
        session: the calling call's session, or None; ``ctx.session.execute(...)`` is a
            nested call in that session.
        session_id: that session's id, or None.
        worker_id: the worker whose tool called.
        call_id: the calling call's id (unique within the pool).
        tool: the calling worker tool's name.
        deadline: the calling call's deadline on ``trio.current_time()``'s clock, or None;
            the host tool is cancelled when it passes.
    """

    pool: Pool
    session: Session | None
    session_id: str | None
    worker_id: str
    call_id: int
    tool: str
    deadline: float | None

    def time_remaining(self) -> float | None:
        """Seconds left until the calling call's deadline.

        Returns:
            Seconds (negative once passed), or None without a deadline.

        Raises:
            RuntimeError: called outside Trio.
        """
        return None if self.deadline is None else self.deadline - trio.current_time()


class Pool(host_tools.HostToolRegistrar, metaclass=NoPublicConstructor):
    """A running pool of workers. Get one from ``open_pool``; it has no public constructor."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        engine.host_calls.make_context = self._host_tool_context

    def _host_scope(self) -> str | None:
        return None  # the pool's host tools: every call sees them

    def _host_tool_context(self, info: HostCallInfo) -> HostToolContext:
        record = info.session
        return HostToolContext(
            pool=self,
            session=None if record is None else Session._create(self._engine, record),
            session_id=None if record is None else record.id,
            worker_id=info.worker_id,
            call_id=info.call.id,
            tool=info.call.tool,
            deadline=info.deadline,
        )

    @property
    def config(self) -> PoolConfig:
        """The pool's configuration (frozen)."""
        return self._engine.config

    @property
    def telemetry(self) -> PoolTelemetry:
        """The pool's events: ``attach`` handlers, ``subscribe`` in a task (see the README's
        "Observability" section for every event)."""
        return PoolTelemetry._create(self._engine.telemetry)

    # --- calls ---------------------------------------------------------------------------
    async def execute(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> Any:
        """Run ``tool`` with keyword ``args`` on a worker and return its result.

        Cancelling the caller sends a cancel to the worker: async tools are cancelled and
        sync tools see ``ctx.cancelled``; the worker's slot stays taken until the tool stops.

        Args:
            tool: the tool's name.
            args: keyword arguments (msgpack-encodable values).
            timeout: budget in seconds for queue wait plus execution (default: the pool's).
            idempotent: if the worker dies mid-call, run it again (``max_retries`` times at
                most, default once), on another worker when there is one.
            on_progress: called with a ``Progress`` for each ``ctx.progress()`` of the tool.
            kill_on_cancel: if the call is cancelled or times out and the tool has not
                stopped ``cancel_grace`` seconds later, kill and replace its worker (other
                calls on that worker then fail with WorkerCrashed). Default: the pool's.
            retry: run the call again after the errors this ``RetryPolicy`` retries (errors
                of calls that may have run only if ``idempotent``). ``timeout``, when
                given, and the policy's budget then bound every attempt and wait together.
            breaker: a ``CircuitBreaker`` each attempt runs under.

        Returns:
            The tool's return value, decoded (numpy arrays arrive as read-only views).

        Raises:
            UnknownTool, InvalidArguments, SerializationError, PayloadTooLarge: before dispatch.
            PoolSaturated, QueueTimeout, RequestTimeout, PoolClosed, PoolUnhealthy: see the
                failure table in the README.
            RemoteError: the tool raised. WorkerCrashed: the worker died mid-call.
            CircuitOpen: ``breaker`` refused the call.
            TypeError, ValueError: an option of the wrong type or out of range (named).
        """
        return await calling.execute(
            self._engine,
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
            session=None,
        )

    def stream(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> AbstractAsyncContextManager[Stream]:
        """Run a streaming tool; the context manager gives a ``Stream`` to ``async for``.

        Leaving the block early (``break``, an exception, cancellation) stops the tool: the
        worker closes its generator, so the generator's ``finally`` runs.

        Args:
            tool: a streaming tool (a generator in the adapter).
            args: keyword arguments (msgpack-encodable values).
            timeout: budget in seconds for the whole stream, queue wait included.
            idle_timeout: longest wait for the next chunk (``StreamIdleTimeout``).
            window: chunks the worker may send ahead of the consumer; the host buffers at
                most this many, and the worker's generator pauses when they are unread.
            on_progress: called with a ``Progress`` for each ``ctx.progress()`` of the tool.
            kill_on_cancel: as for ``execute``: replace the worker if the generator does not
                stop within ``cancel_grace`` after the stream is left. Default: the pool's.

        Returns:
            An async context manager yielding the ``Stream``.

        Raises:
            The same errors as ``execute``, while starting or while iterating. A stream is
            never retried: a worker crash mid-stream delivers the chunks already received,
            then raises ``WorkerCrashed``.
        """
        return Stream._opening(
            self._engine.open_stream(
                tool,
                args,
                timeout=timeout,
                idle_timeout=idle_timeout,
                window=window,
                on_progress=on_progress,
                kill_on_cancel=kill_on_cancel,
                session=None,
            )
        )

    async def execute_stream(
        self,
        tool: str,
        args: dict[str, Any] | None,
        callback: Callable[[Any], object],
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> None:
        """Snakepit's spelling of ``stream``: call ``callback(chunk)`` for each chunk.

        Args:
            tool, args, timeout, idle_timeout, window, on_progress, kill_on_cancel: as for
                ``stream``.
            callback: called with each chunk, in order; sync or async (awaited).

        Returns:
            None, once the stream has ended.

        Raises:
            The errors of ``stream``, and whatever ``callback`` raises (the stream stops).
            TypeError: ``callback`` is not callable (before anything is sent).
        """
        admission.check_callback(callback)
        async with self.stream(
            tool,
            args,
            timeout=timeout,
            idle_timeout=idle_timeout,
            window=window,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        ) as chunks:
            await feed(chunks, callback)

    # --- many calls ----------------------------------------------------------------------
    def map(
        self,
        tool: str,
        args: ArgsSource,
        *,
        max_concurrency: int | None = None,
        ordered: bool = True,
        return_exceptions: bool = False,
        chunksize: int | Literal["auto"] = "auto",
        timeout: float | None = None,
        idempotent: bool = False,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        session: Session | None = None,
    ) -> ResultStream:
        """Run ``tool`` once per item of ``args``; ``async for`` over the results.

        Lazy: an item is read only when a call may start, at most ``max_concurrency``
        calls run at once, and at most ``2 * max_concurrency * n`` items are read and not
        yet consumed, ``n`` being the items the next call takes (1 with ``chunksize=1``,
        and with ``"auto"`` while items take milliseconds: ``2 * max_concurrency``), so an
        endless input is fine. The pool's queue is never filled by the map itself (a call
        waits for one of the map's own to end instead of failing with ``PoolSaturated``).
        Leaving the block early (``break``, an exception, cancellation) cancels the calls
        still running.

        Args:
            tool: the tool's name (one that does not stream).
            args: the arguments of each call (dicts, or None for none), a sync or async
                iterable.
            max_concurrency: calls running at once (default: twice the pool's slots,
                ``size * worker_capacity``, or the session's worker's).
            ordered: results in input order (True) or as the calls finish.
            return_exceptions: an item's error is yielded in its place instead of being
                raised.
            chunksize: items sent to a worker in one call, run there one after another
                (a call's cost is then shared: for tools that take microseconds, 16 to
                256 is many times faster). Then ``max_concurrency`` counts calls, and
                ``timeout``, ``retry``, ``breaker``, ``idempotent`` and ``max_requests``
                apply to a chunk's call as a whole (an item's own error is still its
                own); without ``return_exceptions`` the item that fails ends its chunk.
                ``"auto"`` (default): sized as the map goes, from what the calls that
                ran cost. The first call takes one item; while items are cheap, calls
                take more (at most twice as many as a call measured, up to 1024), so
                that one runs about 5 ms in its worker and carries about 1 MiB; items
                that take 5 ms or more go one to a call, as with ``chunksize=1``. A
                call that fails as a whole starts again from one item. Only when no
                timeout applies (``timeout`` or the pool's), no ``retry``, ``breaker``
                or ``max_requests``, no telemetry handler or tracer, and the workers
                run chunks; otherwise one item per call, each with its own timeout,
                retries and breaker.
            timeout, idempotent, kill_on_cancel, retry, breaker: as for ``execute``, for
                each call.
            session: run every call in this ``Session`` (same as ``session.map``).

        Returns:
            An async context manager yielding the async iterator of results.

        Raises:
            The first error of a call or of ``args`` itself, as itself (not in a group),
            once every other call has been cancelled; unless ``return_exceptions``, where
            each call's error is yielded instead (``args`` failing still raises).
            UnknownTool, PoolClosed: on entering, before ``args`` is read.
            TypeError, ValueError: a bad option (named), or ``args`` is not an iterable.
        """
        return bulk.map_calls(
            self._engine,
            tool,
            args,
            session=self._record_of(session),
            max_concurrency=max_concurrency,
            ordered=ordered,
            return_exceptions=return_exceptions,
            chunksize=chunksize,
            timeout=timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    def as_completed(
        self,
        calls: CallSource,
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        timeout: float | None = None,
        idempotent: bool = False,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        session: Session | None = None,
    ) -> PairStream:
        """Run each ``(tool, args)`` call; ``async for call, result`` as they finish.

        ``call`` is the pair as given. Lazy and bounded as ``map``.

        Args:
            calls: ``(tool, args)`` pairs, a sync or async iterable.
            max_concurrency, return_exceptions, timeout, idempotent, kill_on_cancel, retry,
                breaker, session: as for ``map``.

        Returns:
            An async context manager yielding the async iterator of ``(call, result)``.

        Raises:
            As ``map``; an item that is not a ``(tool, args)`` pair fails as a TypeError.
        """
        return bulk.as_completed_calls(
            self._engine,
            calls,
            session=self._record_of(session),
            max_concurrency=max_concurrency,
            return_exceptions=return_exceptions,
            timeout=timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    async def execute_batch(
        self,
        calls: CallSource,
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        timeout: float | None = None,
        idempotent: bool = False,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        session: Session | None = None,
    ) -> list[Any]:
        """Run each ``(tool, args)`` call, ``max_concurrency`` at a time.

        Args:
            calls: ``(tool, args)`` pairs, a sync or async iterable.
            max_concurrency, return_exceptions, timeout, idempotent, kill_on_cancel, retry,
                breaker, session: as for ``map``.

        Returns:
            The results, in the order of ``calls`` (with ``return_exceptions``, a call's
            error in its place).

        Raises:
            As ``map``: the first error, as itself, after the other calls were cancelled.
        """
        return await bulk.batch_calls(
            self._engine,
            calls,
            session=self._record_of(session),
            max_concurrency=max_concurrency,
            return_exceptions=return_exceptions,
            timeout=timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    def _record_of(self, session: Any) -> SessionRecord | None:
        if session is None:
            return None
        if not isinstance(session, Session):
            raise TypeError(
                "session must be a Session (from pool.session()) or None; got "
                f"{checks.shown(session)} ({checks.a_type(session)})"
            )
        if session._engine is not self._engine:
            raise ValueError(f"session {session.id!r} belongs to another pool")
        return session._record

    # --- sessions ------------------------------------------------------------------------
    @asynccontextmanager
    async def session(
        self,
        id: str | None = None,
        *,
        affinity: str = "strict",
        ttl: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[Session]:
        """A session for the block, closed on exit (see ``open_session``).

        Args:
            id, affinity, ttl, metadata: as for ``open_session``.

        Returns:
            An async context manager yielding the ``Session``.

        Raises:
            The errors of ``open_session``.
        """
        session = await self.open_session(id, affinity=affinity, ttl=ttl, metadata=metadata)
        try:
            yield session
        finally:
            session.close()

    async def open_session(
        self,
        id: str | None = None,
        *,
        affinity: str = "strict",
        ttl: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Create a session bound to the least-loaded worker.

        Args:
            id: the session id (default: a fresh unique id).
            affinity: ``"strict"`` (calls only ever run on the bound worker; its death makes
                the session lost) or ``"prefer"`` (the bound worker when it is free).
            ttl: close the session after this many idle seconds (default: ``session_ttl``).
            metadata: any values to keep with the session.

        Returns:
            The open ``Session``; close it with ``session.close()``.

        Raises:
            PoolClosed: the pool is closing.
            SessionQuotaExceeded: ``max_sessions`` sessions exist already.
            ValueError: a bad affinity or ttl, or the id is taken.
        """
        engine = self._engine
        if engine.closing:
            raise PoolClosed(f"pool {engine.config.name!r} is closed")
        record = await engine.sessions.create(id, affinity=affinity, ttl=ttl, metadata=metadata)
        return Session._create(engine, record)

    def get_session(self, id: str) -> Session | None:
        """The open session with this id.

        Args:
            id: the session id.

        Returns:
            Its ``Session`` (equal to any other handle of the same session), or None.

        Raises:
            Nothing; an unknown or closed session gives None.
        """
        record = self._engine.sessions.store.get(id)
        return None if record is None else Session._create(self._engine, record)

    def list_sessions(self) -> list[SessionInfo]:
        """A snapshot of every open session.

        Returns:
            One ``SessionInfo`` per open session.

        Raises:
            Nothing; it reads the pool's session table.
        """
        return self._engine.sessions.infos()

    def close_session(self, id: str) -> bool:
        """Close a session; its worker's adapter gets ``on_session_end``.

        Args:
            id: the session id.

        Returns:
            True if it was open, False if no such session exists.

        Raises:
            Nothing; closing an unknown or closed session returns False.
        """
        return self._engine.sessions.close(id)

    async def execute_in_session(
        self,
        session_id: str,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> Any:
        """Snakepit's spelling: ``execute`` in session ``session_id``, opened (strict) on
        first use. Close it with ``close_session`` (or set ``session_ttl``).

        Args:
            session_id: the session's id.
            tool, args, timeout, idempotent, on_progress, kill_on_cancel, retry, breaker: as
                for ``execute``.

        Returns:
            The tool's return value.

        Raises:
            The errors of ``open_session`` and of ``Session.execute`` (a bad argument
            before the session is opened).
        """
        calling.check_options(
            tool,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )
        session = self.get_session(session_id) or await self.open_session(session_id)
        return await session.execute(
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    async def execute_in_session_stream(
        self,
        session_id: str,
        tool: str,
        args: dict[str, Any] | None,
        callback: Callable[[Any], object],
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> None:
        """``execute_stream`` in session ``session_id``, opened (strict) on first use.

        Args:
            session_id: the session's id.
            tool, args, callback, timeout, idle_timeout, window, on_progress,
                kill_on_cancel: as for ``execute_stream``.

        Returns:
            None, once the stream has ended.

        Raises:
            The errors of ``open_session`` and of ``Session.stream`` (a bad argument
            before the session is opened).
            TypeError: ``callback`` is not callable (before anything is sent).
        """
        admission.check_callback(callback)
        admission.check_stream(
            tool,
            timeout=timeout,
            idle_timeout=idle_timeout,
            window=window,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )
        session = self.get_session(session_id) or await self.open_session(session_id)
        async with session.stream(
            tool,
            args,
            timeout=timeout,
            idle_timeout=idle_timeout,
            window=window,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        ) as chunks:
            await feed(chunks, callback)

    # --- host tools (register_host_tool, host_tool, unregister_host_tool: HostToolRegistrar)
    def host_tools(self, session: Session | str | None = None) -> list[ToolSpec]:
        """The host tools a call may use: the pool's, and a session's own over them.

        Args:
            session: a session (or its id) whose calls' view to list; None for calls
                without a session.

        Returns:
            Their specs, by name.

        Raises:
            TypeError: ``session`` is neither a Session, a str nor None.
        """
        if isinstance(session, Session):
            session_id: str | None = session.id
        elif session is None or isinstance(session, str):
            session_id = session
        else:
            raise TypeError(
                f"session must be a Session, a session id (str) or None; got "
                f"{type(session).__name__}"
            )
        tools = self._engine.host_calls.registry.visible(session_id)
        return [tools[n].spec for n in sorted(tools)]

    # --- what the pool holds -------------------------------------------------------------
    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool's counters (never blocks).

        Returns:
            A frozen ``PoolStats``.

        Raises:
            Nothing; it reads counters, on an open or a closing pool alike.
        """
        engine = self._engine
        core = engine.core
        # On their way out (draining, or at max_requests) they are not counted.
        live = [
            ws
            for ws in core.workers.values()
            if ws.state is not WorkerState.DRAINING and not ws.exhausted
        ]
        busy = sum(1 for ws in live if ws.state is WorkerState.BUSY)
        c = engine.counters
        return PoolStats(
            workers=len(live),
            available=len(live) - busy,
            busy=busy,
            queued=core.queued,
            in_flight=core.in_flight,
            requests=c.requests,
            errors=c.errors,
            queue_timeouts=c.queue_timeouts,
            saturated=c.saturated,
            restarts=c.restarts,
            crashes=c.crashes,
            sessions=len(engine.sessions.store.sessions),
            recycles=c.recycles,
            health=engine.health.state,
            events_dropped=engine.telemetry.dropped,
        )

    def workers(self) -> list[WorkerInfo]:
        """One entry per live worker (never blocks on a worker).

        Returns:
            A ``WorkerInfo`` per worker; ``rss`` is None where it cannot be read.

        Raises:
            Nothing; a worker that cannot be inspected is reported with ``rss=None``.
        """
        engine = self._engine
        now = time.monotonic()
        trio_now = trio.current_time()
        out = []
        for wk in engine.workers.values():
            slots = engine.core.workers.get(wk.id)
            calls = (
                ()
                if slots is None
                else tuple(
                    CallInfo(
                        id=c.id,
                        tool=c.tool,
                        elapsed=max(0.0, trio_now - c.handle.sent_at),
                        cancelled=c.state is CallState.ABANDONED,
                        session_id=c.handle.session_id,
                    )
                    for c in sorted(slots.calls.values(), key=lambda c: c.handle.sent_at)
                )
            )
            out.append(
                WorkerInfo(
                    id=wk.id,
                    pid=wk.pid,
                    state="dead" if slots is None else slots.state.value,
                    requests=wk.requests,
                    in_flight=0 if slots is None else len(slots.calls),
                    uptime=now - wk.started_at,
                    rss=engine.launcher.rss(wk),
                    silent=max(0.0, trio_now - wk.last_heard),
                    calls=calls,
                    accepting=slots is not None and slots.accepting,
                    gil_enabled=None if wk.description is None else wk.description.gil_enabled,
                    thread_safe=wk.description is not None and wk.description.thread_safe,
                    device=wk.device,
                    runtime=None if wk.description is None else wk.description.runtime,
                )
            )
        return out

    def tools(self) -> list[ToolSpec]:
        """The workers' tools (the adapter's and the ``tools`` functions), as the workers
        described them; a tool's description is its docstring's first line unless
        ``@tool(description=...)`` says otherwise.

        Returns:
            One ``ToolSpec`` per tool, sorted by name.

        Raises:
            Nothing; the specs were read when the workers started.
        """
        return sorted(self._engine.tools.values(), key=lambda t: t.name)

    def __repr__(self) -> str:
        s = self.stats()
        engine = self._engine
        cfg = engine.config
        state = "open"
        if engine.terminated.is_set():
            state = "closed"
        elif engine.closing:
            state = "closing"
        tools = f" tools={len(cfg.tools)}" if cfg.tools else ""
        return (
            f"<Pool {cfg.name!r} {state} adapter={cfg.adapter!r}{tools} "
            f"workers={s.workers}/{cfg.size} busy={s.busy} queued={s.queued} "
            f"in_flight={s.in_flight} requests={s.requests}>"
        )
