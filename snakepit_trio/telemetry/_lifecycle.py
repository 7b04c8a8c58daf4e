"""Events of workers and sessions: ``worker.*`` and ``session.*`` (see ``_catalogue.py``).

Each function is called by the engine only while its hub is on; each builds its event only
if a handler wants it.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from ._hub import Hub


class WorkerLike(Protocol):
    """What these events read of a worker (``_supervision/_worker.Worker``)."""

    @property
    def id(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def slot(self) -> int: ...
    @property
    def process(self) -> object: ...
    @property
    def started_at(self) -> float: ...
    @property
    def spawned_at(self) -> float: ...
    @property
    def requests(self) -> int: ...
    @property
    def last_rss(self) -> int | None: ...


class SessionLike(Protocol):
    """What these events read of a session (``_core/_sessions.SessionRecord``)."""

    @property
    def id(self) -> str: ...
    @property
    def worker(self) -> Any: ...
    @property
    def affinity(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def calls(self) -> int: ...


def _start_method(process: object) -> str:
    # "zygote" (forked from the template), "memory" (snakepit_trio.testing), else "spawn".
    return str(getattr(process, "start_method", "spawn"))


def _worker(worker: WorkerLike) -> dict[str, Any]:
    return {"worker_id": worker.id, "pid": worker.pid}


def spawned(hub: Hub, worker: WorkerLike, spawn: float) -> None:
    if hub.routes("worker.spawned"):
        metadata = {
            **_worker(worker),
            "slot": worker.slot,
            "start_method": _start_method(worker.process),
        }
        hub.emit("worker.spawned", {"spawn": spawn}, metadata)


def ready(hub: Hub, worker: WorkerLike) -> None:
    if hub.routes("worker.ready"):
        metadata = {
            **_worker(worker),
            "slot": worker.slot,
            "start_method": _start_method(worker.process),
        }
        hub.emit("worker.ready", {"startup": worker.started_at - worker.spawned_at}, metadata)


def exited(
    hub: Hub,
    worker: WorkerLike,
    crash: Any,
    reason: str,
) -> None:
    """``worker`` is gone: ``crash`` is its WorkerCrashed (None: the pool stopped it)."""
    hub.worker_gone(worker.id)
    uptime = time.monotonic() - worker.started_at
    if crash is None:
        if hub.routes("worker.stopped"):
            stopped = {"uptime": uptime, "requests": worker.requests}
            hub.emit("worker.stopped", stopped, {**_worker(worker), "reason": reason})
        return
    if hub.routes("worker.crashed"):
        measurements: dict[str, float] = {"uptime": uptime}
        if worker.last_rss is not None:
            measurements["last_rss"] = worker.last_rss
        metadata = {
            **_worker(worker),
            "cause": crash.cause,
            "exit_code": crash.exit_code,
            "signal": crash.signal,
            "running": list(crash.running),
        }
        hub.emit("worker.crashed", measurements, metadata)


def recycled(hub: Hub, worker: WorkerLike, reason: str) -> None:
    if hub.routes("worker.recycled"):
        measurements = {"uptime": time.monotonic() - worker.started_at, "requests": worker.requests}
        hub.emit("worker.recycled", measurements, {**_worker(worker), "reason": reason})


def start_failed(hub: Hub, slot: int | None, reason: str) -> None:
    if hub.routes("worker.start_failed"):
        hub.emit("worker.start_failed", {}, {"slot": slot, "reason": reason})


def restarted(hub: Hub, slot: int, backoff: float) -> None:
    if hub.routes("worker.restarted"):
        hub.emit("worker.restarted", {"backoff": backoff}, {"slot": slot})


def session_opened(hub: Hub, record: SessionLike) -> None:
    if hub.routes("session.opened"):
        metadata = {
            "session_id": record.id,
            "worker_id": record.worker,
            "affinity": record.affinity,
        }
        hub.emit("session.opened", {}, metadata)


def session_ended(
    hub: Hub, record: SessionLike, now: float, *, reason: str, lost: bool = False
) -> None:
    """``record`` ended (``lost``: its strict worker died); ``now`` on its store's clock."""
    name = "session.lost" if lost else "session.closed"
    if hub.routes(name):
        measurements = {"lifetime": now - record.created_at, "calls": record.calls}
        metadata = {"session_id": record.id, "worker_id": record.worker, "reason": reason}
        hub.emit(name, measurements, metadata)
