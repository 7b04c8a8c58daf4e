"""Faults a test can inject into a fake pool's workers."""

from __future__ import annotations

import trio

from .._pool import Pool
from .._public import NoPublicConstructor
from ._launcher import MemoryLauncher
from ._worker import FakeWorker


class Faults(metaclass=NoPublicConstructor):
    """Crash, hang or slow down the workers of a pool from ``open_fake_pool``.

    Get one with ``faults(pool)``; it has no public constructor. Worker ids are those of
    ``pool.workers()``; where a method takes ``worker_id=None`` it picks the worker running
    the most calls (the first on a tie).
    """

    def __init__(self, pool: Pool, launcher: MemoryLauncher) -> None:
        self._pool = pool
        self._launcher = launcher

    @property
    def started(self) -> int:
        """How many workers have been started so far, replacements included."""
        return self._launcher.started

    def crash(
        self, worker_id: str | None = None, *, exit_code: int = 1, signal: int | None = None
    ) -> str:
        """End a worker at once, as a process that exits or is killed.

        Its running calls fail with ``WorkerCrashed`` (idempotent ones run again elsewhere),
        calls not yet delivered to it are queued again, and the pool replaces it.

        Args:
            worker_id: which worker (default: the busiest).
            exit_code: the exit status it reports.
            signal: report death by this signal instead (e.g. ``signal.SIGKILL``).

        Returns:
            The id of the crashed worker.

        Raises:
            LookupError: no such live worker.
        """
        fake, worker_id = self._pick(worker_id)
        fake.kill(-signal if signal is not None else exit_code)
        return worker_id

    def hang(self, worker_id: str | None = None) -> str:
        """Make a worker stop answering, as a stopped (SIGSTOP) process: nothing it sends
        arrives and nothing sent to it is read. Heartbeats then find it (``heartbeat_timeout``)
        and the pool replaces it; its calls fail with ``WorkerCrashed(cause="unresponsive")``.

        Args:
            worker_id: which worker (default: the busiest).

        Returns:
            The id of the hung worker.

        Raises:
            LookupError: no such live worker.
        """
        fake, worker_id = self._pick(worker_id)
        fake.link.hung = True
        fake.link.resumed = trio.Event()
        return worker_id

    def resume(self, worker_id: str) -> None:
        """Let a hung worker answer again (as SIGCONT), if the pool has not replaced it.

        Args:
            worker_id: the hung worker.

        Raises:
            LookupError: no such live worker.
        """
        fake, _ = self._pick(worker_id)
        fake.link.hung = False
        fake.link.resumed.set()
        channel = fake._worker.channel
        if channel is not None:
            channel.release_held()  # type: ignore[attr-defined]

    def delay(self, seconds: float, worker_id: str | None = None) -> None:
        """Make every batch a worker sends arrive ``seconds`` later (in order).

        Args:
            seconds: the added latency (0 removes it).
            worker_id: one worker; None: every live worker and every one started later.

        Raises:
            ValueError: ``seconds`` is negative.
            LookupError: no such live worker.
        """
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds!r}")
        if worker_id is not None:
            self._pick(worker_id)[0].link.delay = seconds
            return
        self._launcher.delay = seconds
        for fake in self._launcher.live.values():
            fake.link.delay = seconds

    def _pick(self, worker_id: str | None) -> tuple[FakeWorker, str]:
        live = {k: v for k, v in self._launcher.live.items() if v.process.returncode is None}
        if worker_id is None:
            core = self._pool._engine.core
            if not live:
                raise LookupError("the pool has no live worker")
            worker_id = max(
                live, key=lambda k: len(core.workers[k].calls) if k in core.workers else -1
            )
        fake = live.get(worker_id)
        if fake is None:
            raise LookupError(f"no live worker {worker_id!r}; live: {sorted(live)}")
        return fake, worker_id


def faults(pool: Pool) -> Faults:
    """The fault injector of a fake pool.

    Args:
        pool: a pool from ``open_fake_pool``.

    Returns:
        Its ``Faults``.

    Raises:
        TypeError: ``pool`` runs real worker processes.
    """
    launcher = pool._engine.launcher
    if not isinstance(launcher, MemoryLauncher):
        raise TypeError("faults() works on pools from snakepit_trio.testing.open_fake_pool")
    return Faults._create(pool, launcher)
