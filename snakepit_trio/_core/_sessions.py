"""The session store: which sessions exist, which worker each is bound to, when each expires.

Pure state (times are passed in, and so is the maker of new session ids). A session is bound
to one worker when it is created. With strict affinity, the death of that worker makes the
session *lost*: its next call raises SessionLost instead of silently running on a worker that
never saw its state. With prefer affinity, a lost binding is simply replaced on the next call.
Idle sessions (no call running, none started for ``ttl`` seconds) expire.

Every query the pool makes per call or per new session is O(1) or O(log n), however many
sessions are open (thousands are usual: one per user): ``bound_to`` reads counters kept
per worker, and expiry times wait in a heap (at most one entry per session: an entry that
comes due early, because the session was used since, is put back at its new time; the
entries of closed sessions are dropped once they outnumber the open ones).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs

from . import _checks as checks
from ._variables import Variables

AFFINITIES = ("strict", "prefer")


class QuotaExceeded(Exception):
    """create() beyond max_sessions."""


def check_options(session_id: Any, *, affinity: Any, ttl: Any, metadata: Any) -> None:
    """Check what opening a session takes (each error names the argument).

    Raises:
        TypeError, ValueError: an argument of the wrong type or out of range.
    """
    checks.text("session id", session_id, none="a fresh id", empty=False)
    checks.choice("affinity", affinity, AFFINITIES)
    checks.number("ttl", ttl, none="the pool's session_ttl")
    checks.mapping("metadata", metadata, none="no metadata")


@attrs.define(eq=False)
class SessionRecord:
    id: str
    worker: Any
    affinity: str
    created_at: float
    last_used: float
    ttl: float | None
    metadata: dict[str, Any]
    in_flight: int = 0
    calls: int = 0
    lost: str | None = None  # why the session was lost, once it is
    variables: Variables = attrs.Factory(Variables)
    scheduled: bool = False  # it has an entry in the store's expiry heap

    def expires_at(self) -> float:
        if self.ttl is None or self.in_flight:
            return math.inf
        return self.last_used + self.ttl


class SessionStore:
    def __init__(
        self,
        *,
        new_id: Callable[[], str],
        max_sessions: int | None = None,
        default_ttl: float | None = None,
    ) -> None:
        self.max_sessions = max_sessions
        self.default_ttl = default_ttl
        self.sessions: dict[str, SessionRecord] = {}
        self._new_id = new_id  # the id of a session created without one
        # Sessions bound to each worker (not lost), all and strict ones: bound_to in O(1).
        self._bound: Counter[Any] = Counter()
        self._strict: Counter[Any] = Counter()
        # (expiry, tie-breaker, record): when each idle session may expire, earliest first.
        self._expiries: list[tuple[float, int, SessionRecord]] = []
        self._order = itertools.count()

    def create(
        self,
        session_id: str | None,
        *,
        worker: Any,
        affinity: str,
        now: float,
        ttl: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> SessionRecord:
        check_options(session_id, affinity=affinity, ttl=ttl, metadata=metadata)
        if session_id is None:
            session_id = self._new_id()
        if session_id in self.sessions:
            raise ValueError(f"session {session_id!r} already exists")
        if self.max_sessions is not None and len(self.sessions) >= self.max_sessions:
            raise QuotaExceeded
        record = SessionRecord(
            id=session_id,
            worker=worker,
            affinity=affinity,
            created_at=now,
            last_used=now,
            ttl=self.default_ttl if ttl is None else float(ttl),
            metadata=dict(metadata or {}),
        )
        self.sessions[session_id] = record
        self._bind(record, +1)
        self._schedule(record)
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        checks.text("session id", session_id)
        return self.sessions.get(session_id)

    def delete(self, session_id: str) -> SessionRecord | None:
        checks.text("session id", session_id)
        record = self.sessions.pop(session_id, None)
        if record is not None:
            self._bind(record, -1)
            if len(self._expiries) > 2 * len(self.sessions) + 64:
                self._compact()  # entries of closed sessions wait for their ttl otherwise
        return record

    def bound_to(self, worker: Any, *, strict_only: bool = False) -> int:
        """How many sessions (strict ones only, if asked) are bound to ``worker``, not lost."""
        return (self._strict if strict_only else self._bound)[worker]

    def rebind(self, record: SessionRecord, worker: Any) -> None:
        """Bind ``record`` (a prefer-session whose worker died) to ``worker``."""
        if self.sessions.get(record.id) is record:
            self._bind(record, -1)
            record.worker = worker
            self._bind(record, +1)
        else:
            record.worker = worker

    def call_started(self, record: SessionRecord, now: float) -> None:
        record.in_flight += 1
        record.calls += 1
        record.last_used = now

    def call_ended(self, record: SessionRecord, now: float) -> None:
        record.in_flight -= 1
        record.last_used = now
        self._schedule(record)

    def worker_died(self, worker: Any, reason: str) -> list[SessionRecord]:
        """Mark strict sessions on ``worker`` lost, unbind prefer ones; return the lost."""
        lost = []
        for record in self.sessions.values():
            if record.worker != worker or record.lost is not None:
                continue
            self._bind(record, -1)
            if record.affinity == "strict":
                record.lost = reason
                lost.append(record)
            else:
                record.worker = None
        return lost

    def next_expiry(self) -> float:
        self._settle(-math.inf)  # makes the earliest entry exact, expires nothing
        return self._expiries[0][0] if self._expiries else math.inf

    def expire(self, now: float) -> list[SessionRecord]:
        """Remove and return every session idle past its ttl."""
        return self._settle(now)

    # --- internals -----------------------------------------------------------------------
    def _bind(self, record: SessionRecord, delta: int) -> None:
        if record.worker is None or record.lost is not None:
            return
        counts = (self._bound, self._strict) if record.affinity == "strict" else (self._bound,)
        for count in counts:
            count[record.worker] += delta
            if not count[record.worker]:
                del count[record.worker]  # workers come and go: keep no key per dead one

    def _schedule(self, record: SessionRecord) -> None:
        """Give ``record`` a heap entry at its expiry, unless it has one (an entry never
        comes later than its session's expiry: a session's last use only moves forward)."""
        when = record.expires_at()
        if not record.scheduled and when != math.inf:
            record.scheduled = True
            heapq.heappush(self._expiries, (when, next(self._order), record))

    def _compact(self) -> None:
        """Drop the heap entries of sessions that are gone (amortized: see ``delete``)."""
        self._expiries = [e for e in self._expiries if self.sessions.get(e[2].id) is e[2]]
        heapq.heapify(self._expiries)

    def _settle(self, now: float) -> list[SessionRecord]:
        """Expire the sessions due at ``now``; until the earliest entry is exact, put back
        the entries of sessions used since (or drop those of sessions gone, or running a
        call: their next call_ended schedules them again)."""
        gone: list[SessionRecord] = []
        heap = self._expiries
        while heap:
            when, _, record = heap[0]
            current = record.expires_at()
            live = self.sessions.get(record.id) is record
            if live and current == when:
                if when > now:
                    break
                heapq.heappop(heap)
                record.scheduled = False
                del self.sessions[record.id]
                self._bind(record, -1)
                gone.append(record)
                continue
            heapq.heappop(heap)
            record.scheduled = False
            if live:
                self._schedule(record)
        return gone
