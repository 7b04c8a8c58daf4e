"""How a worker comes to be: the seam between supervision and worker processes.

A ``Launcher`` starts one worker incarnation, connects its channel, and later stops and
forgets it. The supervisor (``_supervisor.py``) drives any launcher the same way: restarts,
heartbeats, kills and exit reports do not depend on what a worker is. ``ProcessLauncher`` is
the real one (a process forked from the template or a fresh interpreter, with the local lane
or gRPC as its channel); ``snakepit_trio.testing`` has one that runs the adapter in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Protocol

import attrs
import psutil
import trio

from .._config import PoolConfig
from .._shared import _frames as w
from .._transport._base import OnFrames, OnLost
from .._transport._describe import WorkerDescription
from .._transport._errors import TransportError
from . import _spawn
from ._output import pump
from ._placement import Placement
from ._records import WorkerRecords
from ._runtimes import Program
from ._template import ForkedWorker, Templates
from ._worker import Worker

log = logging.getLogger("snakepit_trio")

OUTPUT_GRACE = 0.5  # seconds to wait for a dead worker's last output lines


class Launcher(Protocol):
    async def spawn(self, worker_id: str, slot: int = 0) -> _spawn.WorkerProcess:
        """Start the worker's process (not yet ready), for worker slot ``slot``."""
        ...

    async def connect(
        self, worker: Worker, nursery: trio.Nursery, on_frames: OnFrames, on_lost: OnLost
    ) -> WorkerDescription | str:
        """Wait until ``worker`` is ready and open its channel (its tasks go in ``nursery``).

        Returns its description, or why it could not start (bounded by startup_timeout).
        """
        ...

    async def reap(self, worker: Worker, grace: float) -> None:
        """Make sure it is dead (stopping it with ``grace`` if it runs), and its children
        too; wait briefly for its last output. Shielded and bounded."""
        ...

    async def release(self, worker: Worker) -> set[int]:
        """Close its channel and forget it; return ids of calls never delivered to it."""
        ...

    def died_with_template(self, worker: Worker) -> tuple[str, str] | None:
        """(cause, reason) when it died because what made it died, else None."""
        ...

    def rss(self, worker: Worker) -> int | None:
        """Its resident memory in bytes now, or None where it cannot be read."""
        ...


@attrs.define(eq=False)
class _Incarnation:
    socket_path: str
    stdout_done: trio.Event = attrs.Factory(trio.Event)
    stderr_done: trio.Event = attrs.Factory(trio.Event)
    recorded: trio.Event = attrs.Factory(trio.Event)
    ready_fd: int = -1  # ours until connect() hands it to _read_ready, which closes it


class ProcessLauncher:
    """Worker processes on this machine, tagged, recorded in the registry, reaped."""

    def __init__(
        self,
        config: PoolConfig,
        records: WorkerRecords,
        template: Templates | None,
        socket_dir: str,
        bridge: object,
        nursery: trio.Nursery,
        placement: Placement,
        program: Program,  # found once, when the pool opens (_runtimes.program)
    ) -> None:
        self._config = config
        self._program = program
        self._placement = placement  # where each slot's workers run
        self.records = records
        self._template = template
        self._socket_dir = socket_dir
        self._bridge = bridge  # a _transport._bridge.Bridge when transport="grpc"
        self._nursery = nursery  # the pool's: registry cleanup outlives an incarnation
        self._live: dict[str, _Incarnation] = {}

    async def spawn(self, worker_id: str, slot: int = 0) -> _spawn.WorkerProcess:
        socket_path = os.path.join(self._socket_dir, f"{worker_id}.sock")
        proc, ready_fd = await _spawn.spawn(
            self._config,
            self._program,
            socket_path,
            self.records.tags(worker_id),
            self._template,
            self._placement.worker(slot),
        )
        self._live[worker_id] = _Incarnation(socket_path, ready_fd=ready_fd)
        return proc

    async def connect(
        self, worker: Worker, nursery: trio.Nursery, on_frames: OnFrames, on_lost: OnLost
    ) -> WorkerDescription | str:
        inc = self._live[worker.id]
        proc = worker.process
        worker.device = self._placement.device(worker.slot)
        nursery.start_soon(self._record, worker, inc)
        for stream, name, done in (
            (proc.stdout, "stdout", inc.stdout_done),
            (proc.stderr, "stderr", inc.stderr_done),
        ):
            if stream is None:  # worker_output="inherit": it writes to our stderr itself
                done.set()
            else:
                nursery.start_soon(pump, stream, worker, name, done)
        config = self._config
        timeout = config.startup_timeout
        ready_fd, inc.ready_fd = inc.ready_fd, -1
        with trio.move_on_after(timeout):
            if not await _read_ready(ready_fd):
                await proc.wait()
                return f"exited with code {proc.returncode} before it was ready"
            await inc.recorded.wait()  # in the registry before we ever connect to it
            try:
                if config.transport == "local":
                    from .._transport._lane import LaneChannel

                    channel: object = LaneChannel(
                        _spawn.lane_path(inc.socket_path),
                        on_frames,
                        on_lost,
                        max_message=config.max_payload_bytes + 2 * w.MAX_BATCH_BYTES,
                    )
                else:
                    from .._transport._grpc import WorkerChannel

                    channel = WorkerChannel(
                        self._bridge,  # type: ignore[arg-type]
                        inc.socket_path,
                        on_frames,
                        on_lost,
                    )
                worker.channel = channel  # type: ignore[assignment]
                assert worker.channel is not None
                return await worker.channel.open(nursery, timeout=timeout)
            except TransportError as exc:
                return str(exc)
        return f"not ready within startup_timeout={timeout:g}s"

    async def _record(self, worker: Worker, inc: _Incarnation) -> None:
        # While it starts: the registry's file is slow to write.
        await self.records.spawned(worker.id, worker.pid)
        inc.recorded.set()

    async def reap(self, worker: Worker, grace: float) -> None:
        proc = worker.process
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                await _spawn.stop(proc, grace)
            else:
                _spawn.signal_group(proc.pid, signal.SIGKILL)  # its children, if any
            inc = self._live.get(worker.id)
            if inc is not None:
                with trio.move_on_after(OUTPUT_GRACE):  # the last lines explain a crash
                    await inc.stderr_done.wait()
                    await inc.stdout_done.wait()

    async def release(self, worker: Worker) -> set[int]:
        inc = self._live.pop(worker.id, None)
        with trio.CancelScope(shield=True):
            undelivered = set() if worker.channel is None else await worker.channel.aclose()
            # Now, not when the garbage collector gets to them: a pool that replaces
            # crashed workers must not pile up descriptors.
            await _spawn.close_pipes(worker.process)
        if inc is not None:
            if inc.ready_fd >= 0:  # it never got as far as connect()
                os.close(inc.ready_fd)
            for path in (inc.socket_path, _spawn.lane_path(inc.socket_path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        # Beside the replacement's start, not before it: the scan for tagged processes
        # reads every process's environment (tens of ms), and the replacement has a new id.
        self._nursery.start_soon(self.records.reaped, worker.id)
        return undelivered

    def rss(self, worker: Worker) -> int | None:
        try:
            return int(psutil.Process(worker.pid).memory_info().rss)
        except (psutil.Error, OSError):
            return None

    def died_with_template(self, worker: Worker) -> tuple[str, str] | None:
        proc = worker.process
        if isinstance(proc, ForkedWorker) and proc.orphaned:
            return ("signal", "its template process died, and it with it")
        return None


async def _read_ready(fd: int) -> bool:
    """Wait for the worker's READY line; False if the pipe closed first (it died)."""
    stream = trio.lowlevel.FdStream(fd)
    data = b""
    try:
        while b"\n" not in data:
            chunk = await stream.receive_some(256)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"READY")
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
