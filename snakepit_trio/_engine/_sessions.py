"""The host's session machinery: the store, binding calls to workers, and ttl expiry.

The pool owns one ``SessionHost``; its public session methods delegate here. What this needs
from the pool comes in as three callables, so the pool's worker bookkeeping stays the pool's.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from .._core._dispatcher import Call
from .._core._sessions import QuotaExceeded, SessionRecord, SessionStore, check_options
from .._errors import SessionLost, SessionQuotaExceeded
from .._stats import SessionInfo, session_info
from ..telemetry import _lifecycle as events
from ..telemetry._hub import Hub

log = logging.getLogger("snakepit_trio")


class SessionHost:
    def __init__(
        self,
        *,
        max_sessions: int | None,
        default_ttl: float | None,
        least_loaded: Callable[[], Awaitable[str]],
        is_live: Callable[[Any], bool],
        send_end: Callable[[SessionRecord], None],
        on_end: Callable[[str], None] = lambda session_id: None,
        telemetry: Hub | None = None,
    ) -> None:
        counter = itertools.count(1)
        self.store = SessionStore(
            new_id=lambda: f"s-{next(counter)}-{uuid.uuid4().hex[:12]}",
            max_sessions=max_sessions,
            default_ttl=default_ttl,
        )
        self._least_loaded = least_loaded
        self._is_live = is_live
        self._send_end = send_end
        self._on_end = on_end  # what the host keeps per session (its host tools) goes
        self._changed = trio.Event()
        self._telemetry = telemetry

    async def create(
        self,
        session_id: str | None,
        *,
        affinity: str,
        ttl: float | None,
        metadata: dict[str, Any] | None,
    ) -> SessionRecord:
        # Checked before waiting for a worker (there may be none while they restart).
        check_options(session_id, affinity=affinity, ttl=ttl, metadata=metadata)
        worker = await self._least_loaded()
        try:
            record = self.store.create(
                session_id,
                worker=worker,
                affinity=affinity,
                now=trio.current_time(),
                ttl=ttl,
                metadata=metadata,
            )
        except QuotaExceeded:
            raise SessionQuotaExceeded(self.store.max_sessions or 0) from None
        self._changed.set()
        if self._telemetry is not None and self._telemetry.on:
            events.session_opened(self._telemetry, record)
        return record

    def close(self, session_id: str) -> bool:
        record = self.store.delete(session_id)
        if record is None:
            return False
        self._end(record, "closed")
        self._changed.set()
        return True

    def end_all(self) -> list[SessionRecord]:
        """The pool is closing: close every open session (their workers get SESSION_END).

        Returns the sessions ended in a live binding (not lost, bound to a worker).
        """
        records = list(self.store.sessions.values())
        for record in records:
            self.store.delete(record.id)
            self._end(record, "pool_closed")
        self._changed.set()
        return [r for r in records if r.lost is None and r.worker is not None]

    def infos(self) -> list[SessionInfo]:
        now = trio.current_time()
        return [session_info(r, now) for r in self.store.sessions.values()]

    def worker_died(self, worker_id: str, why: str) -> None:
        for record in self.store.worker_died(worker_id, why):
            log.info("session %s lost: %s", record.id, why)
            if self._telemetry is not None and self._telemetry.on:
                events.session_ended(
                    self._telemetry, record, trio.current_time(), reason=why, lost=True
                )

    @asynccontextmanager
    async def use(self, session: SessionRecord | None, call: Call) -> AsyncIterator[None]:
        """Place ``call`` in ``session`` (pin or prefer its worker) for the block."""
        if session is None:
            yield
            return
        if session.lost is not None:
            raise SessionLost(session.id, session.lost)
        if self.store.get(session.id) is not session:
            raise SessionLost(session.id, "the session was closed or expired")
        if session.worker is None or not self._is_live(session.worker):
            self.store.rebind(session, await self._least_loaded())  # prefer: rebind
        if session.affinity == "strict":
            call.pin = session.worker
        else:
            call.prefer = session.worker
        call.handle.session_id = session.id
        self.store.call_started(session, trio.current_time())
        try:
            yield
        finally:
            self.store.call_ended(session, trio.current_time())
            self._changed.set()

    async def reap(self) -> None:
        """Close sessions idle past their ttl (a task in the pool's nursery)."""
        while True:
            with trio.move_on_at(self.store.next_expiry()):
                await self._changed.wait()
            self._changed = trio.Event()
            for record in self.store.expire(trio.current_time()):
                log.info("session %s expired after %gs idle", record.id, record.ttl)
                self._end(record, "expired")

    def _end(self, record: SessionRecord, reason: str) -> None:
        self._on_end(record.id)
        if record.lost is None:
            self._send_end(record)
            if self._telemetry is not None and self._telemetry.on:
                events.session_ended(self._telemetry, record, trio.current_time(), reason=reason)
