"""Pool: the public handle of a running pool, a facade over the engine (``_engine/``).

Get one from ``open_pool`` (``_lifecycle.py``) or ``snakepit_trio.testing.open_fake_pool``.
Every method here validates what the caller passed and hands it to the engine; no state
lives here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from ._config import PoolConfig
from ._core._dispatcher import CallState
from ._core._worker_state import WorkerState
from ._engine import _admission as admission
from ._engine._engine import Engine
from ._errors import PoolClosed
from ._progress import ProgressCallback
from ._public import NoPublicConstructor
from ._session import Session
from ._stats import CallInfo, PoolStats, SessionInfo, WorkerInfo
from ._streaming import Stream, feed
from ._tools import ToolSpec
from .telemetry._api import PoolTelemetry

__all__ = ["Pool"]


class Pool(metaclass=NoPublicConstructor):
    """A running pool of workers. Get one from ``open_pool``; it has no public constructor."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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

        Returns:
            The tool's return value, decoded (numpy arrays arrive as read-only views).

        Raises:
            UnknownTool, InvalidArguments, SerializationError, PayloadTooLarge: before dispatch.
            PoolSaturated, QueueTimeout, RequestTimeout, PoolClosed, PoolUnhealthy: see the
                failure table in the README.
            RemoteError: the tool raised. WorkerCrashed: the worker died mid-call.
        """
        return await self._engine.execute(
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
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
    ) -> Any:
        """Snakepit's spelling: ``execute`` in session ``session_id``, opened (strict) on
        first use. Close it with ``close_session`` (or set ``session_ttl``).

        Args:
            session_id: the session's id.
            tool, args, timeout, idempotent, on_progress, kill_on_cancel: as for ``execute``.

        Returns:
            The tool's return value.

        Raises:
            The errors of ``open_session`` and of ``Session.execute`` (a bad argument
            before the session is opened).
        """
        admission.check_call(
            tool,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )
        session = self.get_session(session_id) or await self.open_session(session_id)
        return await session.execute(
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
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
                )
            )
        return out

    def tools(self) -> list[ToolSpec]:
        """The adapter's tools, as its workers described them.

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
        return (
            f"<Pool {cfg.name!r} {state} adapter={cfg.adapter!r} "
            f"workers={s.workers}/{cfg.size} busy={s.busy} queued={s.queued} "
            f"in_flight={s.in_flight} requests={s.requests}>"
        )
