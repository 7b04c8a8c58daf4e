"""open_pool(): start the workers, hand out the pool, drain and stop everything on exit.

The pool's nursery owns the bridge thread, one supervisor per worker and the session reaper;
leaving the block drains (bounded), then stops every worker's process group.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._config import PoolConfig
from ._engine import _signals as signals
from ._errors import WorkerStartError
from ._pool import Pool
from ._supervision._records import WorkerRecords
from ._supervision._spawn import worker_env
from ._supervision._supervisor import Worker, supervise
from ._supervision._template import open_template
from ._transport._bridge import open_bridge

__all__ = ["open_pool"]


async def start_workers(pool: Pool) -> None:
    """Start every worker, ``startup_batch_size`` at a time; the first failure is raised."""
    errors: list[WorkerStartError] = []
    limiter = trio.Semaphore(pool.config.startup_batch_size)

    async def start_one(slot: int, cancel: trio.CancelScope) -> None:
        async with limiter:
            try:
                await pool._nursery.start(supervise, pool, slot)
            except WorkerStartError as exc:
                errors.append(exc)
                cancel.cancel()

    async with trio.open_nursery() as starters:
        for slot in range(pool.config.size):
            starters.start_soon(start_one, slot, starters.cancel_scope)
    if errors:
        raise errors[0]


async def shut_down(pool: Pool, drain: bool) -> None:
    """Refuse new calls, let running ones finish (bounded), stop every worker."""
    pool.closing = True
    pool._core.close()
    if drain:
        pool._check_settled()
        with trio.move_on_after(pool.config.drain_timeout):
            await pool._settled.wait()
    # Bounded even if a supervisor misbehaves: every stop is SIGTERM -> grace -> SIGKILL.
    # Repeated, because a replacement (recycling) may become ready while others stop; it
    # is told to stop as soon as it registers (Pool.worker_ready).
    with trio.move_on_after(pool.config.shutdown_grace + 5):
        while pool._workers:
            async with trio.open_nursery() as stoppers:
                for worker in list(pool._workers.values()):
                    worker.request_stop()
                    stoppers.start_soon(_await_exit, worker)
    pool._apply(pool._core.fail_queued())


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[0] is not None
    return isinstance(exc, trio.Cancelled)


async def _await_exit(worker: Worker) -> None:
    await worker.gone.wait()


async def _stop_on_terminate(pool: Pool) -> None:
    await pool.terminate.wait()
    with trio.CancelScope(shield=True):
        await shut_down(pool, drain=True)
    pool.terminated.set()


@asynccontextmanager
async def open_pool(
    adapter: str | None = None,
    *,
    size: int | None = None,
    config: PoolConfig | None = None,
    **options: Any,
) -> AsyncIterator[Pool]:
    """Start a pool of worker processes; all of them are ready when this yields.

    Args:
        adapter: ``"package.module:AdapterClass"``, importable by the workers.
        size: number of workers (default: the number of CPUs).
        config: a PoolConfig to start from; keyword options override its fields.
        **options: any PoolConfig field (``max_queue``, ``timeout``, ``worker_capacity``, ...).

    Raises:
        WorkerStartError: a worker could not import or initialize the adapter (with its
            stderr), or did not become ready within ``startup_timeout``.
        TypeError, ValueError: an unknown option or an invalid value.

    On exit, in-flight calls may finish for ``drain_timeout`` seconds, then every worker's
    process group gets SIGTERM and, after ``shutdown_grace``, SIGKILL. If the block is
    cancelled, workers are stopped at once.
    """
    cfg = PoolConfig.build(adapter, config, {"size": size, **options})
    records = await WorkerRecords.open(cfg)  # also kills leftovers of dead hosts
    socket_dir = tempfile.mkdtemp(prefix="snakepit-")  # mode 0700: only we can connect
    body_error: BaseException | None = None
    try:
        # The bridge outlives the nursery: every supervisor closes its channel through it.
        async with (
            open_bridge(f"{cfg.name}-bridge") as bridge,
            open_template(cfg, records, worker_env(cfg, {})) as template,
            trio.open_nursery() as nursery,
        ):
            pool = Pool(cfg, bridge, socket_dir, nursery, records, template)
            try:
                await start_workers(pool)
                nursery.start_soon(pool._sessions.reap)
                nursery.start_soon(pool._recycler.maintain)
                nursery.start_soon(_stop_on_terminate, pool)
                signals.track(pool)
                if cfg.handle_sigterm and signals.can_watch():
                    await nursery.start(signals.watch)
                yield pool
            except BaseException as exc:
                if _is_cancellation(exc):
                    raise  # our nursery's cancel scope, or an outer one, must see it
                # Re-raised below, outside the nursery, so the caller sees their own
                # exception (KeyboardInterrupt included) and not a group wrapping it.
                body_error = exc
            finally:
                cancelled = body_error is None and trio.current_effective_deadline() == -math.inf
                signals.untrack(pool)
                with trio.CancelScope(shield=True):
                    await shut_down(pool, drain=body_error is None and not cancelled)
                pool.terminated.set()
                nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        await records.close()
    if body_error is not None:
        raise body_error
