"""The session store: which sessions exist, which worker each is bound to, when each expires.

Pure state (times are passed in, and so is the maker of new session ids). A session is bound
to one worker when it is created. With strict affinity, the death of that worker makes the
session *lost*: its next call raises SessionLost instead of silently running on a worker that
never saw its state. With prefer affinity, a lost binding is simply replaced on the next call.
Idle sessions (no call running, none started for ``ttl`` seconds) expire.
"""

from __future__ import annotations

import math
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
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        checks.text("session id", session_id)
        return self.sessions.get(session_id)

    def delete(self, session_id: str) -> SessionRecord | None:
        checks.text("session id", session_id)
        return self.sessions.pop(session_id, None)

    def bound_to(self, worker: Any, *, strict_only: bool = False) -> int:
        return sum(
            1
            for r in self.sessions.values()
            if r.worker == worker and r.lost is None and (r.affinity == "strict" or not strict_only)
        )

    def call_started(self, record: SessionRecord, now: float) -> None:
        record.in_flight += 1
        record.calls += 1
        record.last_used = now

    def call_ended(self, record: SessionRecord, now: float) -> None:
        record.in_flight -= 1
        record.last_used = now

    def worker_died(self, worker: Any, reason: str) -> list[SessionRecord]:
        """Mark strict sessions on ``worker`` lost, unbind prefer ones; return the lost."""
        lost = []
        for record in self.sessions.values():
            if record.worker != worker or record.lost is not None:
                continue
            if record.affinity == "strict":
                record.lost = reason
                lost.append(record)
            else:
                record.worker = None
        return lost

    def next_expiry(self) -> float:
        return min((r.expires_at() for r in self.sessions.values()), default=math.inf)

    def expire(self, now: float) -> list[SessionRecord]:
        """Remove and return every session idle past its ttl."""
        gone = [r for r in self.sessions.values() if r.expires_at() <= now]
        for record in gone:
            del self.sessions[record.id]
        return gone
