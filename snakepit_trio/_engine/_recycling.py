"""Recycling: replace workers past max_requests, max_age or max_memory_mb, losing no call.

Rules:
- ``max_requests`` is a hard limit, like ``ProcessPoolExecutor(max_tasks_per_child=)``: the
  dispatcher sends a worker no more unpinned calls than that. The replacement starts ahead
  of time, when the worker has about as many calls left as it is sent while a worker starts
  (from its rate, measured over at least one start time, and the last start's duration), so
  the swap is usually instant. The swap: once the replacement serves, the old worker takes
  no new call (it may have been sent fewer than max_requests), finishes its running calls
  and stops. A slot serves with one worker at a time, besides the one finishing its last
  calls: a replacement starts its own replacement only once its predecessor has finished
  them (or is gone), else a burst would start a worker per call. A worker at its limit
  still runs the calls of its strict sessions, and stops once they are closed and its last
  call is done; it is not in its successors' way meanwhile.
- ``max_memory_mb`` is checked after calls (at most once a millisecond per worker) and by
  the maintenance tick: a worker over it gets no new calls at once, calls waiting there
  move, and its replacement starts. A fresh worker already over the limit is warned about
  once and never recycled for memory; so are all workers once three in a row crossed the
  limit within their first two calls (the limit is below what one call needs).
- ``max_age`` is soft: the worker serves on until a replacement is ready when another
  recycle is under way, so at least ``size - 1`` workers keep taking calls.
- A worker holding strict sessions is not recycled for age or memory until they close.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Protocol

import trio

from .._core._worker_state import WorkerState
from .._supervision._worker import Worker
from ..telemetry import _lifecycle as events

if TYPE_CHECKING:
    from .._config import PoolConfig
    from .._core._dispatcher import Action, Dispatcher
    from .._supervision._launcher import Launcher
    from ..telemetry._hub import Hub
    from ._counters import Counters
    from ._sessions import SessionHost

log = logging.getLogger("snakepit_trio")

MAINTENANCE_INTERVAL = 0.25  # seconds between recycling checks (age and memory)
MEMORY_CHECK_INTERVAL = 0.001  # seconds: at most this often per worker after its calls
PREMATURE_CALLS = 2  # over max_memory_mb within this many calls: the limit is too low
PREMATURE_IN_A_ROW = 3  # ...this many workers in a row: stop recycling for memory


class RecyclingHost(Protocol):
    """What the recycler needs from the engine it works for (the engine imports this module)."""

    @property
    def config(self) -> PoolConfig: ...
    @property
    def closing(self) -> bool: ...
    @property
    def core(self) -> Dispatcher: ...
    @property
    def workers(self) -> dict[str, Worker]: ...
    @property
    def sessions(self) -> SessionHost: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def launcher(self) -> Launcher: ...
    @property
    def nursery(self) -> trio.Nursery: ...
    @property
    def telemetry(self) -> Hub: ...

    def start_replacement(self, slot: int) -> None: ...
    async def wait_replacement(self, slot: int) -> bool: ...
    def apply(self, actions: list[Action]) -> None: ...


class Recycler:
    def __init__(self, engine: RecyclingHost) -> None:
        self._engine = engine
        self._start_seconds = 0.5  # how long a worker takes to start (the last one measured)
        self._premature = 0  # memory recycles in a row within PREMATURE_CALLS calls
        self._memory_off = False  # max_memory_mb proved below one call's needs: warned
        self._deferred: set[str] = set()  # workers whose replacement waits (see recheck)

    # --- max_requests ----------------------------------------------------------------------
    def sent(self, worker: Worker) -> None:
        """A call was sent to ``worker`` (max_requests is set): start its replacement once
        it nears the limit."""
        limit = self._engine.config.max_requests
        assert limit is not None
        if worker.recycling or worker.requests < limit - self._lead(worker):
            return
        self._replace_for_requests(worker, limit)

    def _replace_for_requests(self, worker: Worker, limit: int) -> None:
        engine = self._engine
        if engine.closing:
            return
        if self._in_the_way(worker):
            # One replacement per slot at a time: this worker is itself a replacement whose
            # predecessor still serves. Its own replacement starts once that one is done
            # (``recheck``); until then, once at its limit, calls wait in the queue.
            self._deferred.add(worker.id)
            return
        worker.recycling = True
        engine.counters.recycles += 1
        self._recycled(worker, "max_requests")
        log.info(
            "recycling worker %s (pid %d): it nears max_requests=%d", worker.id, worker.pid, limit
        )
        engine.nursery.start_soon(self._replace_then_retire, worker)

    def _slot_mate(self, worker: Worker) -> Worker | None:
        """Another live worker of ``worker``'s slot (the one it replaces, or its replacement)."""
        for other in self._engine.workers.values():
            if other is not worker and other.slot == worker.slot:
                return other
        return None

    def _in_the_way(self, worker: Worker) -> bool:
        """Whether another worker of ``worker``'s slot still serves the pool: it takes new
        calls, or runs some. One kept only for its strict sessions is not in the way: they
        may stay open for hours, and the slot must not stall meanwhile."""
        core = self._engine.core
        for other in self._engine.workers.values():
            if other is worker or other.slot != worker.slot:
                continue
            slots = core.workers.get(other.id)
            if slots is None:
                continue
            if not (slots.exhausted or slots.state is WorkerState.DRAINING):
                return True
            if any(call.pin is None for call in slots.calls.values()):
                return True
        return False

    def recheck(self) -> None:
        """Start the replacements deferred while another worker of their slot served (see
        ``_replace_for_requests``), where it no longer does."""
        limit = self._engine.config.max_requests
        if limit is None or not self._deferred:
            return
        for worker_id in list(self._deferred):
            worker = self._engine.workers.get(worker_id)
            if worker is None or worker.recycling:
                self._deferred.discard(worker_id)
            elif not self._in_the_way(worker):
                self._deferred.discard(worker_id)
                self._replace_for_requests(worker, limit)
                self.retire_if_done(worker)

    async def _replace_then_retire(self, worker: Worker) -> None:
        """Start ``worker``'s replacement; once it serves, ``worker`` takes no new call (the
        swap), finishes the calls it runs and stops."""
        engine = self._engine
        if not await engine.wait_replacement(worker.slot):
            return  # the pool closed before the replacement was ready
        self._swap(worker)

    def _swap(self, worker: Worker) -> None:
        """``worker``'s replacement serves: ``worker`` takes no new call from now on, and
        stops when its running calls are done; unless strict sessions still need it (then
        the maintenance tick swaps it once they are closed)."""
        engine = self._engine
        if worker.id not in engine.core.workers:
            return  # it died meanwhile
        if engine.sessions.store.bound_to(worker.id, strict_only=True):
            return
        engine.apply(engine.core.retire_worker(worker.id))
        self.retire_if_done(worker)

    def _lead(self, worker: Worker) -> int:
        """Calls ``worker`` will probably be sent while a replacement starts (at least 1)."""
        # Its rate over less than one start time is noise: one call a millisecond after it
        # became ready is not a thousand a second, and would start its replacement at once.
        age = max(time.monotonic() - worker.started_at, self._start_seconds, 1e-3)
        return max(1, math.ceil(2 * self._start_seconds * worker.requests / age))

    def retire_if_done(self, worker: Worker) -> None:
        """``worker`` takes no new calls and runs none: stop it, unless strict sessions still
        need it (then the maintenance tick looks again)."""
        engine = self._engine
        slots = engine.core.workers.get(worker.id)
        if slots is None or slots.calls or worker.stop_requested:
            return
        if slots.state is not WorkerState.DRAINING:  # at max_requests: its sessions run on
            if not slots.exhausted or slots.pinned:
                return
            if not worker.recycling:
                return  # its replacement has not started yet (see recheck): it keeps its slot
            if engine.sessions.store.bound_to(worker.id, strict_only=True):
                return
        worker.request_stop()

    # --- a worker's start and its calls ------------------------------------------------------
    def check_fresh(self, worker: Worker) -> None:
        """``worker`` just became ready: note how long that took, and exempt it from
        max_memory_mb if it is over the limit before serving anything."""
        self._start_seconds = max(worker.started_at - worker.spawned_at, 0.001)
        limit_mb = self._engine.config.max_memory_mb
        if limit_mb is None:
            return
        rss = self._engine.launcher.rss(worker)
        worker.rss_checked_at = time.monotonic()
        if self._memory_off or rss is None or rss / 2**20 <= limit_mb:
            return
        worker.memory_exempt = True
        log.warning(
            "worker %s uses %.0f MB before serving any call, over max_memory_mb=%g; "
            "it will not be recycled for memory (raise the limit)",
            worker.id,
            rss / 2**20,
            limit_mb,
        )

    def after_call(self, worker: Worker) -> None:
        """A call on ``worker`` ended: a deferred replacement may start now; check
        max_memory_mb (at most once a millisecond)."""
        if self._deferred:
            self.recheck()
        limit_mb = self._engine.config.max_memory_mb
        if limit_mb is None or worker.memory_exempt or self._memory_off or worker.recycling:
            return
        now = time.monotonic()
        if now - worker.rss_checked_at < MEMORY_CHECK_INTERVAL:
            return
        worker.rss_checked_at = now
        self._check_memory(worker, limit_mb)

    def _recycled(self, worker: Worker, reason: str) -> None:
        telemetry = self._engine.telemetry
        if telemetry.on:
            events.recycled(telemetry, worker, reason)

    def recycle(self, worker: Worker, reason: str) -> None:
        """Replace ``worker``; it stops once its running calls have finished.

        At least ``size - 1`` workers keep taking calls: when another recycle is under way,
        the worker serves on until its replacement is ready, and only then drains.
        """
        engine = self._engine
        if worker.recycling or engine.closing or worker.id not in engine.core.workers:
            return
        if engine.sessions.store.bound_to(worker.id, strict_only=True):
            return  # its strict sessions would be lost: the maintenance tick retries later
        worker.recycling = True
        engine.counters.recycles += 1
        self._recycled(worker, "max_age")
        log.info("recycling worker %s (pid %d): %s", worker.id, worker.pid, reason)
        serving = [
            w
            for w in engine.workers.values()
            if w is not worker and not w.recycling and w.id in engine.core.workers
        ]
        if len(serving) >= engine.config.size - 1:
            self._drain(worker)
            engine.start_replacement(worker.slot)
        else:
            engine.nursery.start_soon(self._replace_then_drain, worker)

    async def _replace_then_drain(self, worker: Worker) -> None:
        engine = self._engine
        if not await engine.wait_replacement(worker.slot):
            return  # the pool closed before the replacement was ready
        self._drain(worker)

    def _drain(self, worker: Worker) -> None:
        core = self._engine.core
        if worker.id not in core.workers:
            return  # it died meanwhile
        core.drain_worker(worker.id)
        if not core.workers[worker.id].calls:
            worker.request_stop()

    async def maintain(self) -> None:
        """Recycle workers past max_requests, max_age or max_memory_mb (a pool task)."""
        engine = self._engine
        cfg = engine.config
        if cfg.max_requests is None and cfg.max_age is None and cfg.max_memory_mb is None:
            return
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL)
            self.recheck()
            now = time.monotonic()
            for worker in list(engine.workers.values()):
                slots = engine.core.workers.get(worker.id)
                if slots is None:
                    continue
                if slots.exhausted or slots.state is WorkerState.DRAINING:
                    self.retire_if_done(worker)  # e.g. its last strict session closed
                elif worker.recycling and self._slot_mate(worker) is not None:
                    self._swap(worker)  # its replacement serves; its strict sessions closed
                if worker.recycling or slots.state is WorkerState.DRAINING:
                    continue
                if cfg.max_age is not None and now - worker.started_at >= cfg.max_age:
                    self.recycle(worker, f"older than max_age={cfg.max_age:g}s")
                elif cfg.max_memory_mb is not None and not (
                    worker.memory_exempt or self._memory_off
                ):
                    worker.rss_checked_at = now
                    self._check_memory(worker, cfg.max_memory_mb)

    def _check_memory(self, worker: Worker, limit_mb: float) -> None:
        engine = self._engine
        rss = engine.launcher.rss(worker)
        if rss is None:
            log.warning("cannot read the memory of worker %s; max_memory_mb skips it", worker.id)
            worker.memory_exempt = True
            return
        rss_mb = rss / 2**20
        if rss_mb <= limit_mb:
            return
        if engine.sessions.store.bound_to(worker.id, strict_only=True):
            return  # its strict sessions would be lost: looked at again after each call
        if worker.requests <= PREMATURE_CALLS:
            self._premature += 1
            if self._premature >= PREMATURE_IN_A_ROW:
                self._memory_off = True
                log.warning(
                    "max_memory_mb=%g is below what a worker needs to serve a call (worker %s "
                    "reached %.0f MB after %d calls, and %d workers in a row did the same); "
                    "workers are no longer recycled for memory (raise the limit)",
                    limit_mb,
                    worker.id,
                    rss_mb,
                    worker.requests,
                    self._premature,
                )
                return
        else:
            self._premature = 0
        # Over the limit: no new calls at once (each one could grow it further), calls
        # waiting there move, and the replacement starts now.
        if worker.recycling or engine.closing or worker.id not in engine.core.workers:
            return
        worker.recycling = True
        engine.counters.recycles += 1
        self._recycled(worker, "max_memory_mb")
        log.info(
            "recycling worker %s (pid %d): RSS %.0f MB over max_memory_mb=%g",
            worker.id,
            worker.pid,
            rss_mb,
            limit_mb,
        )
        engine.apply(engine.core.retire_worker(worker.id))
        engine.start_replacement(worker.slot)
        self.retire_if_done(worker)
