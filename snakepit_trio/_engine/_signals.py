"""SIGTERM: drain and stop every pool's workers, then die of SIGTERM as the process would have.

How this works: a process whose SIGTERM handler is the default dies at once, and its workers
notice the host's death and kill themselves: calls in flight are lost. So the first pool
opened in the main thread while SIGTERM has its default handler watches for it (with
``trio.open_signal_receiver``). On SIGTERM every open pool in the process closes as its block's
end would (``_shutdown.py``): new and queued calls get PoolClosed at once, running calls may
finish (``drain_timeout``), open sessions end, workers stop. A second SIGTERM meanwhile stops
the waiting: the workers are stopped at once (SIGTERM, grace, SIGKILL). Then the default
handler is restored and SIGTERM re-raised, so the process still ends the way its supervisor
(systemd, Kubernetes, a shell) expects, with status 143.

A program that handles SIGTERM itself (its own handler or signal receiver) is left alone:
pools then never watch for it. Ctrl-C needs none of this: Trio raises KeyboardInterrupt in the
main task, which unwinds ``open_pool`` (or, when it comes while a pool closes, hurries the
closing; the pool then raises it), and workers never see SIGINT (they run in their own
session, outside the terminal's foreground process group).
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from .._config import STOP_MARGIN
from ._shutdown import SESSION_END_WAIT

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("snakepit_trio")

_open_pools: weakref.WeakSet[Engine] = weakref.WeakSet()


def can_watch() -> bool:
    """Main thread, default handler (a pool already watching has replaced it)."""
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )


def track(pool: Engine) -> None:
    _open_pools.add(pool)


def untrack(pool: Engine) -> None:
    _open_pools.discard(pool)


async def watch(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Wait for SIGTERM (a task in one pool's nursery), then stop all pools and re-raise it."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            break
        pools = list(_open_pools)
        log.warning(
            "SIGTERM: draining and stopping %d pool(s) before exiting (SIGTERM again: stop now)",
            len(pools),
        )
        limit = max(
            (
                p.config.drain_timeout + SESSION_END_WAIT + p.config.shutdown_grace + STOP_MARGIN
                for p in pools
            ),
            default=0,
        )
        # Shielded: a pool block that ends meanwhile must not cancel the exit.
        with trio.CancelScope(shield=True), trio.move_on_after(limit):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_hurry_on_repeat, signals, pools)
                for pool in pools:
                    pool.terminate.set()
                for pool in pools:
                    await pool.terminated.wait()
                nursery.cancel_scope.cancel()
    # Leaving the receiver's block restored the previous (default) handler.
    signal.raise_signal(signal.SIGTERM)


async def _hurry_on_repeat(signals: AsyncIterator[int], pools: list[Engine]) -> None:
    """A second SIGTERM while the pools close: stop waiting for their running calls."""
    async for _ in signals:
        for pool in pools:
            pool.hurry("a second SIGTERM")
