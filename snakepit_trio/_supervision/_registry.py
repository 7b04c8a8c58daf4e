"""The worker registry: a sqlite file recording every live worker, to clean up after crashes.

How this works: each worker is recorded (pool token, host pid and start time, worker id,
pid, start time and process group) right after it is spawned, before the host connects to
it, and removed once it is reaped. A host that is SIGKILLed cannot remove its rows; its
workers normally kill themselves (stdin EOF, parent-death signal), but a stopped or wedged
worker cannot. ``sweep`` finds rows whose host is dead and kills what is left of them:

- the worker, only if its pid still names the process started then (pid reuse is checked
  with the start time, so an unrelated process that got the pid is never touched);
- any process carrying the pool's token and the worker's id in its environment (its
  children, including those that called setsid()).

Rows of live hosts are never touched, so pools in other processes are safe. Every
function here is blocking (sqlite, /proc): the pool calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import attrs
import platformdirs
import psutil

from .._shared import _shm
from .._shared._tagging import kill_all, tagged

STATE_DIR_ENV = "SNAKEPIT_TRIO_STATE_DIR"
FILENAME = "workers.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (
    token TEXT NOT NULL,
    host_pid INTEGER NOT NULL,
    host_started REAL NOT NULL,
    worker_id TEXT NOT NULL,
    worker_pid INTEGER NOT NULL,
    worker_started REAL NOT NULL,
    pgid INTEGER NOT NULL,
    PRIMARY KEY (token, worker_id)
)
"""


def default_state_dir() -> Path:
    """``$SNAKEPIT_TRIO_STATE_DIR``, else the platform's user state directory."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(platformdirs.user_state_dir("snakepit-trio", appauthor=False))


@attrs.frozen
class Entry:
    token: str
    host_pid: int
    host_started: float
    worker_id: str
    worker_pid: int
    worker_started: float
    pgid: int


@attrs.frozen
class Leftover:
    """What a sweep found for one row of a dead host."""

    entry: Entry
    pids: tuple[int, ...]  # live processes belonging to it (killed unless dry run)


def started_at(pid: int) -> float | None:
    """The process's start time (psutil's create_time), or None if it does not exist."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def _same_process(pid: int, started: float) -> bool:
    now = started_at(pid)
    return now is not None and abs(now - started) < 0.05


def host_alive(entry: Entry) -> bool:
    """Is the host that recorded ``entry`` still running (the same process, not a reuse)?"""
    return _same_process(entry.host_pid, entry.host_started)


class Registry:
    """One sqlite file; a short-lived connection per operation (any thread may call)."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / FILENAME
        with self._connect() as db:
            db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    def add(self, entry: Entry) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers VALUES (?, ?, ?, ?, ?, ?, ?)", attrs.astuple(entry)
            )

    def remove(self, token: str, worker_id: str | None = None) -> None:
        with self._connect() as db:
            if worker_id is None:
                db.execute("DELETE FROM workers WHERE token = ?", (token,))
            else:
                db.execute(
                    "DELETE FROM workers WHERE token = ? AND worker_id = ?", (token, worker_id)
                )

    def entries(self) -> list[Entry]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM workers ORDER BY host_pid, worker_id").fetchall()
        return [Entry(*row) for row in rows]

    def sweep(self, *, dry_run: bool = False) -> list[Leftover]:
        """Kill what is left of workers whose host is dead and forget them.

        With ``dry_run``, only report. Returns one Leftover per row of a dead host.
        """
        found = []
        for entry in self.entries():
            if host_alive(entry):
                continue  # a live pool: never touched
            procs = {p.pid: p for p in tagged(entry.token, entry.worker_id)}
            if entry.worker_pid not in procs and _same_process(
                entry.worker_pid, entry.worker_started
            ):
                with contextlib.suppress(psutil.Error, OSError):
                    proc = psutil.Process(entry.worker_pid)
                    if proc.status() != psutil.STATUS_ZOMBIE:  # dead, not yet reaped
                        procs[entry.worker_pid] = proc
            if not dry_run:
                kill_all(procs.values())
                _shm.sweep(_shm.prefix(entry.token))  # its shared-memory payloads
                self.remove(entry.token, entry.worker_id)
            found.append(Leftover(entry, tuple(sorted(procs))))
        return found
