"""The launcher of ``snakepit_trio.testing``: workers that live in memory, in this thread.

It has the interface of ``_supervision/_launcher.ProcessLauncher``, so the engine, the
supervisors, heartbeats, recycling and the crash breaker run unchanged on top of it.
"""

from __future__ import annotations

import trio

from .._config import PoolConfig
from .._supervision._worker import Worker
from .._transport._base import OnFrames, OnLost
from .._transport._describe import WorkerDescription
from ..worker._adapter import Adapter
from ..worker._functions import FunctionTool
from ._worker import FakeProcess, FakeWorker, Link


class MemoryLauncher:
    def __init__(
        self, adapter: type[Adapter], config: PoolConfig, functions: list[FunctionTool]
    ) -> None:
        self._adapter = adapter
        self._functions = functions
        self._config = config
        self.live: dict[str, FakeWorker] = {}
        self.delay = 0.0  # given to workers started from now on
        self.started = 0  # workers started so far (the first one is 1)

    async def spawn(self, worker_id: str, slot: int = 0) -> FakeProcess:
        return FakeProcess()

    async def connect(
        self, worker: Worker, nursery: trio.Nursery, on_frames: OnFrames, on_lost: OnLost
    ) -> WorkerDescription | str:
        fake = FakeWorker(self._adapter, self._functions, self._config, worker, Link(self.delay))
        self.live[worker.id] = fake
        self.started += 1
        return await fake.start(nursery, on_frames, on_lost)

    async def reap(self, worker: Worker, grace: float) -> None:
        fake = self.live.get(worker.id)
        with trio.CancelScope(shield=True):
            if fake is not None:
                await fake.stop(grace)
            else:
                worker.process.exit(-9)  # type: ignore[attr-defined]

    async def release(self, worker: Worker) -> set[int]:
        fake = self.live.pop(worker.id, None)
        if fake is not None:
            fake.kill(-9)
        if worker.channel is None:
            return set()
        return await worker.channel.aclose()

    def rss(self, worker: Worker) -> int | None:
        return worker.last_rss  # the host's own memory, as its last PONG said

    def died_with_template(self, worker: Worker) -> tuple[str, str] | None:
        return None
