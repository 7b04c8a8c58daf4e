"""One worker slot: start its process, hand-shake, open its channel, watch it, restart it.

``supervise`` loops over incarnations of one slot. Each incarnation owns its process, its
stdout/stderr pumps and its channel in one nursery, and always ends with the process group
killed and reaped. ``task_status.started()`` fires only once the first incarnation is READY,
so a worker that cannot start makes ``open_pool`` raise ``WorkerStartError``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from .._config import PoolConfig
from .._core._backoff import Backoff
from .._core._worker_state import WorkerEvent, WorkerState, transition
from .._errors import WorkerStartError
from .._shared import _frames as w
from .._transport._bridge import Bridge
from .._transport._grpc import TransportError, WorkerChannel
from .._transport._lane import LaneChannel
from . import _heartbeat as heartbeat
from . import _spawn as _process
from ._crash import oom_kill_count
from ._records import WorkerRecords
from ._template import ForkedWorker, Templates

log = logging.getLogger("snakepit_trio")
worker_log = logging.getLogger("snakepit_trio.worker")

TAIL_LINES = 40
MAX_LINE = 4096


@attrs.define(eq=False)
class Worker:
    """One worker process incarnation, as the host tracks it."""

    id: str
    slot: int
    process: _process.WorkerProcess
    channel: WorkerChannel | LaneChannel | None = None
    state: WorkerState = WorkerState.STARTING
    started_at: float = attrs.Factory(time.monotonic)
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
    wake: trio.Event = attrs.Factory(trio.Event)
    gone: trio.Event = attrs.Factory(trio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    def move(self, event: WorkerEvent) -> None:
        self.state = transition(self.state, event)

    def lost(self, reason: str) -> None:
        """Its connection broke: kill it (its process may live on) and replace it."""
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
    reason: str
    served: float = 0.0  # seconds from READY to exit (0: it never became ready)


class PoolHooks(Protocol):
    """What a supervisor needs from its pool."""

    config: PoolConfig
    bridge: Bridge
    socket_dir: str
    closing: bool
    records: WorkerRecords
    template: Templates | None

    def next_worker_id(self, slot: int) -> str: ...
    def worker_ready(self, worker: Worker, describe: Any) -> None: ...
    def worker_exited(self, worker: Worker, info: ExitInfo, undelivered: set[int]) -> None: ...
    def frames_from(self, worker: Worker) -> Callable[[list[Any]], None]: ...
    def note_restart(self) -> None: ...
    def clean_up_after(self, worker_id: str) -> None: ...
    def note_start_failure(self, reason: str) -> None: ...
    def worker_quiet(self, worker: Worker, quiet: bool) -> None: ...


async def _pump(
    stream: trio.abc.ReceiveStream, worker: Worker, name: str, done: trio.Event
) -> None:
    """Read a worker's stdout/stderr continuously (a full pipe must never block it)."""
    buffer = b""
    keep = name == "stderr"
    try:
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                break
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                _emit(worker, name, raw, keep)
        if buffer:
            _emit(worker, name, buffer, keep)
    finally:
        done.set()


def _emit(worker: Worker, name: str, raw: bytes, keep: bool) -> None:
    line = raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r")
    if keep:
        worker.stderr_tail.append(line)
    worker_log.info("[%s %s] %s", worker.id, name, line, extra={"worker_id": worker.id})


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


async def _hand_shake(
    pool: PoolHooks,
    worker: Worker,
    socket_path: str,
    ready_fd: int,
    nursery: trio.Nursery,
    recorded: trio.Event,
) -> Any:
    """READY line, then channel + Describe; returns the Describe reply or a failure reason."""
    timeout = pool.config.startup_timeout
    with trio.move_on_after(timeout):
        if not await _read_ready(ready_fd):
            await worker.process.wait()
            return f"exited with code {worker.process.returncode} before it was ready"
        await recorded.wait()  # in the registry before we ever connect to it
        try:
            if pool.config.transport == "local":
                lane = LaneChannel(
                    _process.lane_path(socket_path),
                    pool.frames_from(worker),
                    worker.lost,
                    max_message=pool.config.max_payload_bytes + 2 * w.MAX_BATCH_BYTES,
                )
                worker.channel = lane
                return await lane.open(nursery, timeout=timeout)
            channel = WorkerChannel(pool.bridge, socket_path, pool.frames_from(worker), worker.lost)
            worker.channel = channel
            return await channel.open(timeout=timeout)
        except TransportError as exc:
            return str(exc)
    return f"not ready within startup_timeout={timeout:g}s"


def _died_with_template(proc: _process.WorkerProcess) -> tuple[str, str] | None:
    """What a worker died of, when its template process died first (None otherwise)."""
    if isinstance(proc, ForkedWorker) and proc.orphaned:
        return ("signal", "its template process died, and it with it")
    return None


def _exit_info(worker: Worker, expected: bool) -> ExitInfo:
    code = worker.process.returncode
    reason = worker.killed_by[1] if worker.killed_by else ""
    served = time.monotonic() - worker.started_at
    if code is not None and code < 0:
        return ExitInfo(None, -code, expected, reason, served)
    return ExitInfo(code, None, expected, reason, served)


async def run_incarnation(
    pool: PoolHooks, slot: int, *, task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED
) -> ExitInfo:
    """Run one worker process from spawn to death; ``started`` once it is READY."""
    config = pool.config
    worker_id = pool.next_worker_id(slot)
    socket_path = os.path.join(pool.socket_dir, f"{worker_id}.sock")
    proc, ready_fd = await _process.spawn(
        config, socket_path, pool.records.tags(worker_id), pool.template
    )
    worker = Worker(id=worker_id, slot=slot, process=proc, oom_kills=oom_kill_count())
    stdout_done, stderr_done = trio.Event(), trio.Event()
    ready = False
    break_out: str | None = None
    recorded = trio.Event()

    async def record() -> None:  # while it starts: the registry's file is slow to write
        await pool.records.spawned(worker_id, proc.pid)
        recorded.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record)
            assert proc.stdout is not None and proc.stderr is not None
            nursery.start_soon(_pump, proc.stdout, worker, "stdout", stdout_done)
            nursery.start_soon(_pump, proc.stderr, worker, "stderr", stderr_done)

            async def watch_exit() -> None:
                await proc.wait()
                if worker.killed_by is None:
                    worker.killed_by = _died_with_template(proc)
                worker.wake.set()

            nursery.start_soon(watch_exit)

            describe = await _hand_shake(pool, worker, socket_path, ready_fd, nursery, recorded)
            if isinstance(describe, str):
                # Raised below, outside this nursery, so it is not wrapped in a group.
                break_out = describe
                await _process.stop(proc, 0)
                with trio.move_on_after(1):
                    await stderr_done.wait()
                nursery.cancel_scope.cancel()
            else:
                ready = True
                worker.started_at = time.monotonic()  # its age counts from READY
                worker.move(WorkerEvent.READY)
                pool.worker_ready(worker, describe)
                task_status.started(worker)
                if config.heartbeat_timeout is not None:
                    nursery.start_soon(heartbeat.watch, pool, worker)

                await worker.wake.wait()
                expected = worker.stop_requested or pool.closing
                if worker.killed_by is not None and worker.killed_by[0] == "disconnected":
                    # The connection usually breaks because the process is exiting: give it
                    # a moment, so its own exit code or signal is what the crash reports.
                    with trio.move_on_after(0.2):
                        await proc.wait()
                    if proc.returncode is not None:
                        worker.killed_by = _died_with_template(proc)
                if proc.returncode is None:
                    # Stopped by us, or its channel broke while the process lives on: kill it.
                    await _process.stop(proc, config.shutdown_grace if expected else 0)
                else:
                    _process.signal_group(proc.pid, signal.SIGKILL)  # its children, if any
                with trio.move_on_after(0.5):  # the last stderr lines explain a crash
                    await stderr_done.wait()
                    await stdout_done.wait()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _process.stop(proc, 0 if not ready else config.shutdown_grace)
            if worker.channel is not None:
                undelivered = await worker.channel.aclose()
            else:
                undelivered = set()
            for path in (socket_path, _process.lane_path(socket_path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            pool.clean_up_after(worker_id)  # kill what it started that is left, forget it
            # Also when this task is cancelled: the pool must learn that the worker is gone.
            if ready:
                worker.move(WorkerEvent.EXITED)
                expected = worker.stop_requested or pool.closing
                info = _exit_info(worker, expected)
                pool.worker_exited(worker, info, undelivered)
    if break_out is not None:
        raise WorkerStartError(worker_id, break_out, worker.tail())
    return info


async def supervise(
    pool: PoolHooks,
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
    while True:
        if pool.closing:
            return
        if not first:
            pool.note_restart()
        try:
            info = await run_incarnation(pool, slot, task_status=status)
            status = trio.TASK_STATUS_IGNORED  # started() has fired
        except WorkerStartError as exc:
            if first and not retry_first:
                raise
            log.warning("starting a worker in slot %d failed: %s", slot, exc.reason)
            pool.note_start_failure(exc.reason)
            info = ExitInfo(None, None, False, exc.reason)
        first = False
        if info.expected or pool.closing:
            return
        # Time spent starting does not count as time up: a slow import is not stability.
        await trio.sleep(backoff.next_delay(info.served))
