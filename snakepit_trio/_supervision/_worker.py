"""One worker incarnation as the host tracks it, how it ended, and what its pool offers.

Scheduling state (ready, busy, draining) is not here: the dispatcher in ``_core`` owns it.
This record holds what only the shell knows: the process, its channel, its stderr tail,
when it was last heard from, and why the pool killed it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from .._config import PoolConfig

if TYPE_CHECKING:
    from .._transport._base import Channel
    from .._transport._describe import WorkerDescription
    from ._spawn import WorkerProcess

TAIL_LINES = 40


@attrs.define(eq=False)
class Worker:
    """One worker process incarnation, as the host tracks it."""

    id: str
    slot: int
    process: WorkerProcess
    channel: Channel | None = None
    description: WorkerDescription | None = None  # what it said of itself once ready
    started_at: float = attrs.Factory(time.monotonic)  # reset when it is ready
    spawned_at: float = attrs.Factory(time.monotonic)
    rss_checked_at: float = 0.0  # when max_memory_mb was last checked (time.monotonic)
    requests: int = 0
    stderr_tail: deque[str] = attrs.Factory(lambda: deque(maxlen=TAIL_LINES))
    stop_requested: bool = False
    recycling: bool = False  # draining, to be replaced (max_requests, max_age, max_memory_mb)
    memory_exempt: bool = False  # started above max_memory_mb: warned once, never recycled
    killed_by: tuple[str, str] | None = None  # (cause, reason) when the pool kills it
    last_heard: float = attrs.Factory(trio.current_time)  # any batch or PONG from it
    last_rss: int | None = None  # from its last PONG
    quiet: bool = False  # silent on heartbeats: suspended in the dispatcher
    oom_kills: int | None = None  # the cgroup's oom_kill count when it started
    device: str | None = None  # the device its slot is pinned to ("cuda:GPU-…")
    capabilities: frozenset[str] = frozenset()  # what it named in its description
    # It maps the pool's shared-memory segments: every worker the pool started; one over TCP
    # only once its handshake proved it is on this host and sees our /dev/shm.
    shares_memory: bool = True
    wake: trio.Event = attrs.Factory(trio.Event)
    gone: trio.Event = attrs.Factory(trio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def broken(self) -> bool:
        """It broke the frame protocol: nothing more it sends is read."""
        return self.killed_by is not None and self.killed_by[0] == "protocol"

    def lost(self, reason: str) -> None:
        """Its connection broke: kill it (its process may live on) and replace it.

        Once its process is known to have ended, that end is how it died: a child of it
        that held the connection open may be what dies now (its group is killed after it).
        """
        if self.process.returncode is not None:
            self.wake.set()
            return
        self.kill(reason, "disconnected")

    def kill(self, reason: str, cause: str) -> None:
        """Kill and replace this worker (its running calls fail with WorkerCrashed)."""
        if self.killed_by is None:
            self.killed_by = (cause, reason)
        self.wake.set()

    def request_stop(self) -> None:
        self.stop_requested = True
        self.wake.set()

    def tail(self) -> str:
        return "\n".join(self.stderr_tail)


@attrs.frozen
class ExitInfo:
    exit_code: int | None
    signal: int | None
    expected: bool  # we stopped it (shutdown), so it is not a crash
    served: float = 0.0  # seconds from READY to exit (0: it never became ready)
    replaced: bool = False  # it was being recycled: a replacement is already on its way


class PoolHooks(Protocol):
    """What a supervisor needs from the engine it reports to."""

    @property
    def config(self) -> PoolConfig: ...
    @property
    def closing(self) -> bool: ...

    def next_worker_id(self) -> str: ...
    def worker_spawned(self, worker: Worker, spawn: float) -> None: ...
    def worker_ready(self, worker: Worker, description: WorkerDescription) -> None: ...
    def worker_exited(self, worker: Worker, info: ExitInfo, undelivered: set[int]) -> None: ...
    def on_frames(self, worker: Worker, frames: object) -> None: ...
    def worker_quiet(self, worker: Worker, quiet: bool) -> None: ...
    def note_restart(self, slot: int, backoff: float) -> None: ...
    def note_start_failure(self, reason: str, slot: int | None = None) -> None: ...
