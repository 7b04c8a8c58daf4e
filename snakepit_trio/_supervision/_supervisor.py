"""One worker slot: start its worker, watch it, stop it, restart it.

``supervise`` loops over incarnations of one slot. Each incarnation owns its worker's tasks
(output pumps, channel, heartbeat) in one nursery and always ends with the worker stopped and
reaped. ``task_status.started()`` fires only once the first incarnation is READY, so a worker
that cannot start makes ``open_pool`` raise ``WorkerStartError``. How a worker comes to be is
the launcher's business (``_launcher.py``); this module is the same for every kind.
"""

from __future__ import annotations

import logging
import time

import trio

from .._core._backoff import Backoff
from .._errors import WorkerStartError
from . import _heartbeat as heartbeat
from . import _thread_profile as thread_profile
from ._crash import oom_kill_count
from ._launcher import Launcher
from ._worker import ExitInfo, PoolHooks, Worker

log = logging.getLogger("snakepit_trio")

DISCONNECT_GRACE = 0.2  # seconds a worker whose channel broke gets to exit by itself


def _exit_info(worker: Worker, expected: bool) -> ExitInfo:
    code = worker.process.returncode
    served = time.monotonic() - worker.started_at
    if getattr(worker.process, "remote", False):  # a connection let go: no exit is known
        return ExitInfo(None, None, expected, served, worker.recycling)
    if code is not None and code < 0:
        return ExitInfo(None, -code, expected, served, worker.recycling)
    return ExitInfo(code, None, expected, served, worker.recycling)


async def run_incarnation(
    pool: PoolHooks,
    launcher: Launcher,
    slot: int,
    *,
    task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED,
) -> ExitInfo:
    """Run one worker from spawn to death; ``started`` once it is READY."""
    config = pool.config
    worker_id = pool.next_worker_id()
    spawning = time.monotonic()
    proc = await launcher.spawn(worker_id, slot)
    worker = Worker(id=worker_id, slot=slot, process=proc, oom_kills=oom_kill_count())
    pool.worker_spawned(worker, worker.spawned_at - spawning)
    ready = False
    failure: str | None = None
    try:
        async with trio.open_nursery() as nursery:

            async def watch_exit() -> None:
                await proc.wait()
                if worker.killed_by is None:
                    worker.killed_by = launcher.died_with_template(worker)
                worker.wake.set()

            nursery.start_soon(watch_exit)
            described = await launcher.connect(
                worker,
                nursery,
                lambda frames: pool.on_frames(worker, frames),
                worker.lost,
            )
            if not isinstance(described, str):
                worker.description = described
                described = thread_profile.refusal(config, described) or described
            if isinstance(described, str):
                failure = described  # raised below, outside this nursery: not in a group
                await launcher.reap(worker, 0)
                nursery.cancel_scope.cancel()
            else:
                ready = True
                worker.started_at = time.monotonic()  # its age counts from READY
                # Its WELCOME was just heard. Its silence counts from now, not from the spawn:
                # a launcher may take seconds to place a worker (on a Ray node, say).
                worker.last_heard = trio.current_time()
                pool.worker_ready(worker, described)
                task_status.started(worker)
                if config.heartbeat_timeout is not None or getattr(proc, "remote", False):
                    nursery.start_soon(heartbeat.watch, pool, worker)
                await _serve(pool, launcher, worker)
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await launcher.reap(worker, config.shutdown_grace if ready else 0)
            undelivered = await launcher.release(worker)
            # Also when this task is cancelled: the pool must learn that the worker is gone.
            if ready:
                info = _exit_info(worker, worker.stop_requested or pool.closing)
                pool.worker_exited(worker, info, undelivered)
    if failure is not None:
        raise WorkerStartError(worker_id, failure, worker.tail())
    return info


async def _serve(pool: PoolHooks, launcher: Launcher, worker: Worker) -> None:
    """Wait until the worker exits, is killed or is told to stop; then stop it."""
    proc = worker.process
    await worker.wake.wait()
    expected = worker.stop_requested or pool.closing
    if worker.killed_by is not None and worker.killed_by[0] == "disconnected":
        # The connection usually breaks because the process is exiting: give it a moment,
        # so its own exit code or signal is what the crash reports.
        with trio.move_on_after(DISCONNECT_GRACE):
            await proc.wait()
        if proc.returncode is not None:
            worker.killed_by = launcher.died_with_template(worker)
    # Stopped by us, or its channel broke while the process lives on: stop it.
    await launcher.reap(worker, pool.config.shutdown_grace if expected else 0)


async def supervise(
    pool: PoolHooks,
    launcher: Launcher,
    slot: int,
    *,
    retry_first: bool = False,
    task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep slot ``slot`` filled until the pool closes, restarting crashed workers.

    ``started`` fires when the first worker is ready. A first start that fails raises
    WorkerStartError (so ``open_pool`` fails), unless ``retry_first`` (a replacement for a
    recycled worker): then it is retried with backoff like a restart.
    """
    backoff = Backoff(pool.config.restart)
    status = task_status
    first = True
    delay = 0.0
    while True:
        if pool.closing:
            return
        if not first:
            pool.note_restart(slot, delay)
        try:
            info = await run_incarnation(pool, launcher, slot, task_status=status)
            status = trio.TASK_STATUS_IGNORED  # started() has fired
        except WorkerStartError as exc:
            if first and not retry_first:
                raise
            log.warning("starting a worker in slot %d failed: %s", slot, exc.reason)
            pool.note_start_failure(exc.reason, slot)
            info = ExitInfo(None, None, False)
        first = False
        if info.expected or info.replaced or pool.closing:
            return  # replaced: its replacement was started when it began to be recycled
        # Time spent starting does not count as time up: a slow import is not stability.
        delay = backoff.next_delay(info.served)
        await trio.sleep(delay)
