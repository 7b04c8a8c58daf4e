"""Recycling: replace workers past max_requests, max_age or max_memory_mb, losing no call.

Rules: the replacement starts at once; the old worker gets no new calls and is stopped when
its last call is done; at least ``size - 1`` workers keep taking calls (when another recycle
is under way, a due worker serves on until that replacement is ready); a worker holding
strict sessions waits until they close; a fresh worker already over the memory limit is
warned about once instead of being replaced forever.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

import trio

from .._core._worker_state import WorkerState
from .._supervision._worker import Worker

if TYPE_CHECKING:
    from .._config import PoolConfig
    from .._core._dispatcher import Dispatcher
    from .._supervision._launcher import Launcher
    from ._counters import Counters
    from ._sessions import SessionHost

log = logging.getLogger("snakepit_trio")

MAINTENANCE_INTERVAL = 0.25  # seconds between recycling checks (age and memory)


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

    def start_replacement(self, slot: int) -> None: ...
    async def wait_replacement(self, slot: int) -> bool: ...


class Recycler:
    def __init__(self, engine: RecyclingHost) -> None:
        self._engine = engine

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
            now = time.monotonic()
            for worker in list(engine.workers.values()):
                slots = engine.core.workers.get(worker.id)
                if worker.recycling or slots is None or slots.state is WorkerState.DRAINING:
                    continue
                if cfg.max_requests is not None and worker.requests >= cfg.max_requests:
                    self.recycle(worker, f"served max_requests={cfg.max_requests}")
                elif cfg.max_age is not None and now - worker.started_at >= cfg.max_age:
                    self.recycle(worker, f"older than max_age={cfg.max_age:g}s")
                elif cfg.max_memory_mb is not None and not worker.memory_exempt:
                    self._check_memory(worker, cfg.max_memory_mb)

    def _check_memory(self, worker: Worker, limit_mb: float) -> None:
        rss = self._engine.launcher.rss(worker)
        if rss is None:
            log.warning("cannot read the memory of worker %s; max_memory_mb skips it", worker.id)
            return
        rss_mb = rss / 2**20
        if rss_mb <= limit_mb:
            return
        if worker.requests == 0:
            # A fresh worker already over the limit would be replaced forever: warn instead.
            worker.memory_exempt = True
            log.warning(
                "worker %s uses %.0f MB before serving any call, over max_memory_mb=%g; "
                "it will not be recycled for memory (raise the limit)",
                worker.id,
                rss_mb,
                limit_mb,
            )
            return
        self.recycle(worker, f"RSS {rss_mb:.0f} MB over max_memory_mb={limit_mb:g}")
