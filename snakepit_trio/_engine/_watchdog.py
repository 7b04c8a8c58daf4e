"""The watchdog: calls that wait on a worker that is not getting to them.

Two things no single frame reveals, checked every ``TICK`` seconds:
- A worker with calls that may still be waiting there (prefetched beyond its capacity, or
  behind a slot a cancelled call still holds) that completed nothing for a whole tick is
  stalled: a long call turned up among short ones, or a cancelled call is stuck. Its
  waiting calls are revoked (the dispatcher's ``revoke_waiting``) so that they run on
  another worker; the worker answers only for calls it has not started.
- A cancelled call that still runs ``cancel_grace`` seconds after its cancel is reported
  once (it holds its worker: the pool sends that worker nothing until it ends), and with
  ``kill_on_cancel`` its worker is killed and replaced. Calls that wait there and have not
  started are taken back first (revoked), so that they run elsewhere instead of failing
  with the killed worker: the kill waits for the worker's answers, at most ``KILL_WAIT``.

Why one task and not a timer per call: a cancel storm would start thousands of sleeping
tasks; one task that looks at the (small) set of calls in flight costs the same at any rate.
It wakes every tick, and exactly when a cancelled call's grace ends.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import trio

from .._config import PoolConfig
from .._core._dispatcher import Action, Call, CallState, Dispatcher, WorkerSlots
from .._supervision._worker import Worker

log = logging.getLogger("snakepit_trio")

TICK = 0.05  # seconds: a stall is noticed after one to two ticks without a completion
# Seconds a stuck worker may take to give back the calls it has not started before it is
# killed (a call it runs never answers a revoke, so the wait is bounded).
KILL_WAIT = 0.25


class WatchdogHost(Protocol):
    """What the watchdog needs of the engine it works for."""

    config: PoolConfig
    core: Dispatcher
    workers: dict[str, Worker]

    def apply(self, actions: list[Action]) -> None: ...
    def kill_worker(self, worker: Worker, reason: str, cause: str) -> None: ...


def may_wait(ws: WorkerSlots) -> bool:
    """Whether some call sent to this worker may not have started (and could move)."""
    if len(ws.calls) <= ws.capacity and not ws.held:
        return False
    return any(c.revocable for c in ws.calls.values())


class Watchdog:
    def __init__(self, engine: WatchdogHost) -> None:
        self._engine = engine
        self._poked = trio.Event()
        self._seen: dict[str, int] = {}  # worker -> completions when it last had waiting calls
        self._reported: set[int] = set()  # cancelled calls reported past cancel_grace
        # Stuck workers to kill once their waiting calls are back: id -> the stuck call, why,
        # and when to kill it at the latest.
        self._to_kill: dict[str, tuple[Call, str, float]] = {}

    def cancelled(self) -> None:
        """A sent call was cancelled: its cancel_grace may end before the next tick."""
        self._poked.set()

    def given_back(self) -> None:
        """A worker gave back a call it had not started: a stuck worker waiting for that
        may be killed now."""
        if self._to_kill:
            self._poked.set()

    async def run(self) -> None:
        """Run the checks above until cancelled (a task in the pool's nursery)."""
        next_tick = trio.current_time() + TICK
        while True:
            kills = min((by for _, _, by in self._to_kill.values()), default=math.inf)
            wake = min(next_tick, self._next_grace_end(), kills)
            with trio.move_on_at(wake):
                await self._poked.wait()
            self._poked = trio.Event()
            now = trio.current_time()
            if now >= next_tick:
                next_tick = now + TICK
                self._stalls()
            self._overdue_cancels(now)
            self._kill_stuck(now)

    def _stalls(self) -> None:
        core, seen = self._engine.core, self._seen
        for ws in list(core.workers.values()):
            if not may_wait(ws):
                seen.pop(ws.id, None)
            elif seen.get(ws.id) == ws.completions:
                seen.pop(ws.id, None)
                log.debug("worker %s made no progress; its waiting calls move", ws.id)
                self._engine.apply(core.revoke_waiting(ws.id))
            else:
                seen[ws.id] = ws.completions
        for gone in [w for w in seen if w not in core.workers]:
            del seen[gone]

    def _cancelled_calls(self) -> list[Call]:
        return [
            call
            for ws in self._engine.core.workers.values()
            if ws.held
            for call in ws.calls.values()
            if call.state is CallState.ABANDONED
        ]

    def _next_grace_end(self) -> float:
        grace = self._engine.config.cancel_grace
        ends = [
            c.handle.cancelled_at + grace
            for c in self._cancelled_calls()
            if c.id not in self._reported
        ]
        return min(ends, default=math.inf)

    def _overdue_cancels(self, now: float) -> None:
        engine = self._engine
        grace = engine.config.cancel_grace
        live: set[int] = set()
        for call in self._cancelled_calls():
            live.add(call.id)
            if call.id in self._reported or now < call.handle.cancelled_at + grace:
                continue
            self._reported.add(call.id)
            worker = engine.workers.get(call.worker)
            if call.handle.kill_on_cancel and worker is not None:
                log.warning(
                    "a cancelled call to %r still runs on worker %s after cancel_grace=%gs; "
                    "killing the worker (kill_on_cancel)",
                    call.tool,
                    call.worker,
                    grace,
                )
                if worker.id not in self._to_kill:
                    reason = (
                        f"a cancelled call to {call.tool!r} ran on past cancel_grace={grace:g}s"
                    )
                    engine.apply(engine.core.revoke_waiting(worker.id))
                    self._to_kill[worker.id] = (call, reason, now + KILL_WAIT)
            else:
                log.warning(
                    "a cancelled call to %r still runs on worker %s after cancel_grace=%gs; "
                    "the worker gets no new calls until it ends (kill_on_cancel=True "
                    "replaces such a worker)",
                    call.tool,
                    call.worker,
                    grace,
                )
        self._reported &= live

    def _kill_stuck(self, now: float) -> None:
        """Kill each stuck worker once it has answered for the calls it had not started (or
        ``KILL_WAIT`` is over)."""
        engine = self._engine
        for worker_id, (stuck, reason, kill_by) in list(self._to_kill.items()):
            ws = engine.core.workers.get(worker_id)
            worker = engine.workers.get(worker_id)
            if ws is None or worker is None or ws.calls.get(stuck.id) is not stuck:
                # Gone already, or the stuck call ended meanwhile: the worker serves on
                # (it may already run new calls, which a kill would fail).
                del self._to_kill[worker_id]
                continue
            waiting = any(c.revoking and c.state is CallState.SENT for c in ws.calls.values())
            if waiting and now < kill_by:
                continue
            del self._to_kill[worker_id]
            engine.kill_worker(worker, reason, "stuck")
