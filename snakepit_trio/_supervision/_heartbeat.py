"""Heartbeats: notice a worker that is alive but wedged, and replace it.

How this works: anything a worker sends proves its event loop runs. The worker's silence is
checked every half ``heartbeat_interval``; silent that long, it is sent a PING, which its
loop answers with a PONG (carrying its RSS), so a healthy worker is never silent for much
more than one interval. Silent for two intervals, it gets no new calls (reversible: it may
just be slow). Silent for ``heartbeat_timeout``, it is killed and replaced: it is stopped
(SIGSTOP), its loop is blocked (a C call holding the GIL, a tool blocking the loop) or it
is deadlocked. Its running calls fail with WorkerCrashed(cause="unresponsive").

A worker reached at an endpoint is different: a silent link looks exactly like a lost one
(a cable pulled, a partition, a dead peer that sent no FIN), so its silence fails its calls
with WorkerCrashed(cause="disconnected"), and the slot reconnects. Such a worker is also
PINGed every interval even while it talks: its ``--orphan-timeout`` counts the host's
silence, and a worker streaming results would otherwise never hear from an idle host.
With ``heartbeat_timeout=None`` those PINGs still go out; only the timeout is off.

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
    remote = bool(getattr(worker.process, "remote", False))
    assert timeout is not None or remote
    tick = interval / 2
    seq = 0
    woke = pinged = trio.current_time()
    while True:
        await trio.sleep(tick)
        now = trio.current_time()
        if now - woke > tick + interval:
            # We were stalled: the PONGs may be waiting behind us. Start the clock again.
            worker.last_heard = max(worker.last_heard, now - interval)
        woke = now
        silent = now - worker.last_heard
        if timeout is not None and silent >= timeout and remote:
            endpoint = getattr(worker.process, "endpoint", "")
            worker.kill(
                f"the link to {endpoint} went silent for {silent:.1f}s "
                f"(heartbeat_timeout={timeout:g}s): no heartbeat answer, so the connection "
                "is taken as lost (a network partition, or the worker stopped)",
                "disconnected",
            )
            return
        if timeout is not None and silent >= timeout:
            worker.kill(
                f"no answer to heartbeats for {silent:.1f}s (heartbeat_timeout={timeout:g}s): "
                "stopped, or blocked in code that holds the GIL",
                "unresponsive",
            )
            return
        if timeout is not None and silent >= 2 * interval and not worker.quiet:
            pool.worker_quiet(worker, True)
        if worker.channel is not None and (silent >= tick or (remote and now - pinged >= interval)):
            seq += 1
            pinged = now
            worker.channel.send(w.ping(seq))
