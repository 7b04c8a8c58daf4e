"""Heartbeats: notice a worker that is alive but wedged, and replace it.

How this works: anything a worker sends proves its event loop runs. The worker's silence is
checked every half ``heartbeat_interval``; silent that long, it is sent a PING, which its
loop answers with a PONG (carrying its RSS), so a healthy worker is never silent for much
more than one interval. Silent for two intervals, it gets no new calls (reversible: it may
just be slow). Silent for ``heartbeat_timeout``, it is killed and replaced: it is stopped
(SIGSTOP), its loop is blocked (a C call holding the GIL, a tool blocking the loop) or it
is deadlocked. Its running calls fail with WorkerCrashed(cause="unresponsive").

A host that was itself stalled (its Trio loop blocked by user code) cannot tell whether the
worker answered in time, so after a late wake-up the silence is measured afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .._shared import _frames as w

if TYPE_CHECKING:
    from ._worker import PoolHooks, Worker


async def watch(pool: PoolHooks, worker: Worker) -> None:
    """Run for the life of ``worker`` (a task in its incarnation's nursery)."""
    interval = pool.config.heartbeat_interval
    timeout = pool.config.heartbeat_timeout
    assert timeout is not None
    tick = interval / 2
    seq = 0
    woke = trio.current_time()
    while True:
        await trio.sleep(tick)
        now = trio.current_time()
        if now - woke > tick + interval:
            # We were stalled: the PONGs may be waiting behind us. Start the clock again.
            worker.last_heard = max(worker.last_heard, now - interval)
        woke = now
        silent = now - worker.last_heard
        if silent >= timeout:
            worker.kill(
                f"no answer to heartbeats for {silent:.1f}s (heartbeat_timeout={timeout:g}s): "
                "stopped, or blocked in code that holds the GIL",
                "unresponsive",
            )
            return
        if silent >= 2 * interval and not worker.quiet:
            pool.worker_quiet(worker, True)
        if silent >= tick and worker.channel is not None:
            seq += 1
            worker.channel.send(w.ping(seq))
