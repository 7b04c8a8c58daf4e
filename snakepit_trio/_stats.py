"""Frozen snapshots: ``pool.stats()``, ``pool.workers()`` and ``pool.list_sessions()``."""

from __future__ import annotations

from typing import Any

import attrs

from ._core._sessions import SessionRecord

__all__ = ["CallInfo", "PoolStats", "SessionInfo", "WorkerInfo"]


@attrs.frozen
class PoolStats:
    """A snapshot of the pool's counters.

    Attributes:
        workers: live workers (ready or busy), not counting those on their way out
            (draining, or at ``max_requests``).
        available: workers with at least one free slot.
        busy: workers with every slot taken.
        queued: calls waiting for a worker.
        in_flight: calls sent to a worker and not yet answered.
        requests: calls submitted since the pool opened.
        errors: calls that ended with an error (any kind).
        queue_timeouts: calls that failed with QueueTimeout.
        saturated: calls refused with PoolSaturated.
        restarts: workers started to replace one that died.
        crashes: workers that died without being asked to stop.
        sessions: open sessions.
        recycles: workers replaced by max_requests, max_age or max_memory_mb.
        health: ``"healthy"``; ``"unhealthy"`` after ``crash_threshold`` crashes within
            ``crash_window`` (calls fail with PoolUnhealthy); ``"probing"`` while one call
            tests whether workers run again.
        events_dropped: telemetry events that found a subscription's buffer full
            (``pool.telemetry.subscribe``).
    """

    workers: int
    available: int
    busy: int
    queued: int
    in_flight: int
    requests: int
    errors: int
    queue_timeouts: int
    saturated: int
    restarts: int
    crashes: int
    sessions: int = 0
    recycles: int = 0
    health: str = "healthy"
    events_dropped: int = 0


@attrs.frozen
class WorkerInfo:
    """One live worker.

    Attributes:
        id: the worker's id (a new id for each restart).
        pid: its process id.
        state: ``"starting"``, ``"ready"``, ``"busy"``, ``"draining"`` or ``"dead"``.
        requests: calls sent to it.
        in_flight: calls it is running now.
        uptime: seconds since it started.
        rss: resident memory in bytes, or None if it could not be read.
        silent: seconds since the worker last sent anything (a result, a chunk or a
            heartbeat answer); above ``heartbeat_timeout`` it is replaced.
        calls: the calls sent to it and not yet answered, oldest first (some may still
            wait there for a slot).
        accepting: whether it takes new calls (False while draining, at ``max_requests``,
            silent on heartbeats, or held by a cancelled call that still runs).
        gil_enabled: whether its interpreter runs with a GIL, as it reported after importing
            the adapter (None: it did not say). Threads of a worker run Python code in
            parallel only where this is False (a free-threaded build).
        thread_safe: its adapter declares ``thread_safe = True``.
        device: the device it is pinned to (``"cuda:GPU-…"``: ``open_pool(devices=...)``),
            the same for every worker of its slot; None when not pinned.
        runtime: the language it runs (``"python"``, ``"node"``), as it said; None: it
            did not say.
    """

    id: str
    pid: int
    state: str
    requests: int
    in_flight: int
    uptime: float
    rss: int | None
    silent: float = 0.0
    calls: tuple[CallInfo, ...] = ()
    accepting: bool = True
    gil_enabled: bool | None = None
    thread_safe: bool = False
    device: str | None = None
    runtime: str | None = None


@attrs.frozen
class CallInfo:
    """One call on a worker (in ``WorkerInfo.calls``).

    Attributes:
        id: the call's id within the pool.
        tool: the tool it runs.
        elapsed: seconds since it was sent to the worker.
        cancelled: its caller gave up (timeout or cancellation) and it has not ended yet;
            while it runs its worker gets no new calls.
        session_id: the session it belongs to, or None.
    """

    id: int
    tool: str
    elapsed: float
    cancelled: bool
    session_id: str | None = None


@attrs.frozen
class SessionInfo:
    """A snapshot of one session (from ``pool.list_sessions()``).

    Attributes:
        id: the session id.
        worker_id: the worker it is bound to (None until bound, or after a prefer-session's
            worker died).
        affinity: ``"strict"`` or ``"prefer"``.
        calls: calls made in the session.
        in_flight: calls running now.
        idle: seconds since the last call started or ended.
        ttl: idle seconds before it expires, or None.
        metadata: the metadata given at creation.
        lost: why a strict session was lost, or None.
    """

    id: str
    worker_id: str | None
    affinity: str
    calls: int
    in_flight: int
    idle: float
    ttl: float | None
    metadata: dict[str, Any]
    lost: str | None


def session_info(record: SessionRecord, now: float) -> SessionInfo:
    """A snapshot of ``record`` at ``now``."""
    return SessionInfo(
        id=record.id,
        worker_id=record.worker,
        affinity=record.affinity,
        calls=record.calls,
        in_flight=record.in_flight,
        idle=now - record.last_used,
        ttl=record.ttl,
        metadata=dict(record.metadata),
        lost=record.lost,
    )
