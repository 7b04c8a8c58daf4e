"""The pool's health: crash descriptions, and the crash breaker's glue to the Trio clock.

The breaker itself is pure (``_core/_breaker.py``); this module feeds it times and crashes,
turns its state into ``PoolUnhealthy``, and describes each crash in words a user can act on
(``_supervision/_crash.py``).
"""

from __future__ import annotations

import logging

import trio

from .._config import PoolConfig
from .._core._breaker import BreakerState, CrashBreaker
from .._errors import PoolUnhealthy, WorkerCrashed
from .._supervision._crash import classify, oom_kill_count
from .._supervision._worker import ExitInfo, Worker

log = logging.getLogger("snakepit_trio")


class Health:
    def __init__(self, config: PoolConfig) -> None:
        self._config = config
        self.breaker = CrashBreaker(config.crash_threshold, config.crash_window, config.probe_after)

    @property
    def state(self) -> str:
        return self.breaker.state.value

    def admit(self, call_id: int) -> bool:
        """May this call run now? (While probing, the first call admitted is the probe.)"""
        breaker = self.breaker
        return breaker.state is BreakerState.CLOSED or breaker.admit(trio.current_time(), call_id)

    def answered(self, call_id: int) -> None:
        if self.breaker.probe is not None:
            self.breaker.answered(call_id)

    def gave_up(self, call_id: int) -> None:
        self.breaker.gave_up(call_id)

    def crashed(self, cause: str) -> bool:
        """Note a crash; True if the pool has just become unhealthy (shed the queue)."""
        if not self.breaker.record_crash(trio.current_time(), cause):
            return False
        cfg = self._config
        log.error(
            "pool %r is unhealthy: %d worker crashes within %gs (last: %s); calls fail "
            "with PoolUnhealthy until a probe call succeeds (first probe in %gs)",
            cfg.name,
            len(self.breaker.crashes),
            cfg.crash_window,
            cause,
            cfg.probe_after,
        )
        return True

    def unhealthy(self) -> PoolUnhealthy:
        b = self.breaker
        return PoolUnhealthy(
            len(b.crashes), self._config.crash_window, b.last_cause, b.retry_in(trio.current_time())
        )

    def describe_crash(
        self, worker: Worker, info: ExitInfo, running: tuple[str, ...] = ()
    ) -> WorkerCrashed:
        now_oom = oom_kill_count()
        verdict = classify(
            exit_code=info.exit_code,
            signal=info.signal,
            killed_by_pool=worker.killed_by,
            last_rss=worker.last_rss,
            oom_kills_rose=(
                worker.oom_kills is not None and now_oom is not None and now_oom > worker.oom_kills
            ),
            memory_limit_mb=self._config.max_memory_mb,
        )
        return WorkerCrashed(
            worker.id,
            worker.pid,
            info.exit_code,
            info.signal,
            worker.tail(),
            detail=verdict.detail,
            cause=verdict.cause,
            last_rss=worker.last_rss,
            running=running,
        )
