"""Workers someone else started, reached over TCP: the launcher of a pool of ``endpoints``.

Each slot is one endpoint. "Starting" a worker connects to it (TLS if configured, the token
proof, HELLO/WELCOME: ``_transport/_lane.py``); "stopping" it closes the connection, and the
worker, which does not belong to this host, keeps running and cancels what that connection
had asked of it. A broken connection is the worker's crash (cause "disconnected"), and the
supervisor's restart is a reconnection with the pool's backoff. No process is spawned,
signalled, tagged or recorded in the registry.

Shared memory: with ``shm_threshold`` set, each connection's HELLO offers it
(``_shared/_samehost.py``); a worker that proves it is on this host and opens our probe
segment gets large arguments in segments, and sends its large results so. Any other gets
them inline (``Worker.shares_memory`` False: the engine re-encodes a payload made for
segments before it goes there). The segments a worker made for a connection are swept once
the connection is let go.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import trio

from .._config import PoolConfig
from .._shared import _frames as w
from .._shared import _samehost, _shm
from .._transport._base import OnFrames, OnLost
from .._transport._describe import WorkerDescription
from .._transport._errors import TransportError
from .._transport._lane import LaneChannel, TcpTarget
from ._stand_in import StandIn
from ._worker import Worker

log = logging.getLogger("snakepit_trio")


class RemoteWorker(StandIn):
    """What the supervisor watches instead of a process: one connection to an endpoint.

    ``pid`` is the remote process's, as its WELCOME said (0 until then); it "exits" when the
    host lets go of the connection.
    """

    start_method = "remote"
    remote = True  # its returncode is the supervisor's sentinel, not an exit (_exit_info)

    def __init__(self, endpoint: str) -> None:
        super().__init__(0)
        self.endpoint = endpoint

    def let_go(self) -> None:
        # As if killed: an unexpected end then keeps the cause the pool gave it.
        self.end(-signal.SIGKILL)


class EndpointLauncher:
    def __init__(self, config: PoolConfig, targets: list[TcpTarget], token: str) -> None:
        """``token``: the pool's, which its segment names derive from (``_shm.prefix``)."""
        self._config = config
        self._targets = targets
        self.token = token

    async def spawn(self, worker_id: str, slot: int = 0) -> RemoteWorker:
        return RemoteWorker(self._targets[slot].url)

    async def connect(
        self, worker: Worker, nursery: trio.Nursery, on_frames: OnFrames, on_lost: OnLost
    ) -> WorkerDescription | str:
        offer = None
        if self._config.shm_threshold is not None:
            try:
                offer = _samehost.offer(self.token, worker.id, self._config.shm_threshold)
            except OSError as exc:  # /dev/shm full, say: this connection is inline
                log.warning("%s: no shared memory offered: %s", worker.id, exc)
        return await connect_tcp(
            self._config, worker, self._targets[worker.slot], nursery, on_frames, on_lost, offer
        )

    async def reap(self, worker: Worker, grace: float) -> None:
        worker.process.let_go()  # type: ignore[attr-defined]  # release() closes the channel

    async def release(self, worker: Worker) -> set[int]:
        worker.process.let_go()  # type: ignore[attr-defined]
        undelivered: set[int] = set()
        if worker.channel is not None:
            with trio.CancelScope(shield=True):
                undelivered = await worker.channel.aclose()
        if worker.shares_memory and self._config.shm_threshold is not None:
            _shm.sweep(_shm.prefix(self.token, worker.id))  # results it never delivered
        return undelivered

    def rss(self, worker: Worker) -> int | None:
        return worker.last_rss  # as the worker's last PONG said

    def died_with_template(self, worker: Worker) -> tuple[str, str] | None:
        return None


async def connect_tcp(
    config: PoolConfig,
    worker: Worker,
    target: TcpTarget,
    nursery: trio.Nursery,
    on_frames: OnFrames,
    on_lost: OnLost,
    shm_offer: tuple[dict[str, Any], _samehost.Probe] | None = None,
) -> WorkerDescription | str:
    """Open ``worker``'s channel to the worker listening at ``target``.

    ``shm_offer``: shared memory offered in the HELLO (``_shared/_samehost.py``), taken by a
    worker that proves it is on this host. Returns its description, or why not (bounded by
    ``startup_timeout``); the remote process's pid, as its WELCOME said, becomes
    ``worker.process.pid``.
    """
    channel = LaneChannel(
        "",
        on_frames,
        on_lost,
        max_message=config.max_payload_bytes + 2 * w.MAX_BATCH_BYTES,
        tcp=target,
        shm_offer=shm_offer,
    )
    worker.channel = channel
    try:
        described = await channel.open(nursery, timeout=config.startup_timeout)
    except TransportError as exc:
        return str(exc)
    worker.process.pid = described.pid  # type: ignore[misc]
    worker.shares_memory = channel.shares_memory
    return described
