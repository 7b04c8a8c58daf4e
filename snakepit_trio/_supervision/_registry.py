"""The worker registry: a sqlite file recording every live worker, to clean up after crashes.

How this works: each worker is recorded (pool token, host pid and start time, worker id,
pid, start time and process group) right after it is spawned, before the host connects to
it, and removed once it is reaped. A host that is SIGKILLed cannot remove its rows; its
workers normally kill themselves (stdin EOF, parent-death signal), but a stopped or wedged
worker cannot. ``sweep`` finds rows whose host is dead and kills what is left of them:

- the worker, only if its pid still names the process started then (pid reuse is checked
  with the start time) and that process carries the row's pool token in its environment,
  so an unrelated process that got the pid, or that a forged row names, is never touched;
- any process carrying the pool's token and the worker's id in its environment (its
  children, including those that called setsid()).

Rows of live hosts are never touched, so pools in other processes are safe.

Trust: rows make the host kill processes, so they are read only from a file no other user
can have written. The state directory must belong to this user and be writable by nobody
else (else ``UnsafeStateDir``, a PermissionError naming the directory and the fix); the
file must be a regular file of this user that nobody else may write (else
``UntrustedRegistry``: the pool runs without a registry and logs why). A new file is made
with mode 0600.

Every function here is blocking (sqlite, /proc): the pool calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import attrs
import platformdirs
import psutil

from .._shared import _shm
from .._shared._tagging import POOL_TOKEN, kill_all, tagged

log = logging.getLogger("snakepit_trio")

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


class UnsafeStateDir(PermissionError):
    """The state directory may hold files another user wrote: it is not used."""


class UntrustedRegistry(PermissionError):
    """The registry file may hold rows another user wrote: they are not acted on."""


def _check_state_dir(directory: Path) -> None:
    st = os.stat(directory)
    if st.st_uid != os.geteuid():
        why = f"owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
        fix = f"use a directory of your own, or chown it to yourself and `chmod 700 {directory}`"
    elif st.st_mode & 0o022:
        why = f"writable by other users (mode {stat.S_IMODE(st.st_mode):#o})"
        fix = f"`chmod 700 {directory}`"
    else:
        return
    raise UnsafeStateDir(
        f"state_dir {str(directory)!r} is {why}: another user could plant worker records "
        f"there that make the pool kill your processes. Fix: {fix}; or pass another "
        f"state_dir (or set ${STATE_DIR_ENV}), or registry=False to run without a registry"
    )


def _open_registry_file(path: Path) -> None:
    """Make the file (mode 0600) if it is missing; refuse one this user cannot trust."""
    why: str | None
    try:
        # O_NONBLOCK: a FIFO planted under its name must not hang the open.
        flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        why = "a symbolic link"
    else:
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        why = _distrust(st)
    if why is None:
        return
    raise UntrustedRegistry(
        f"worker registry {str(path)!r} is {why}, so its rows are not trusted and nothing "
        f"in it is acted on; remove it (or `chmod 600` it, if it is yours and nobody "
        f"else wrote to it)"
    )


def _distrust(st: os.stat_result) -> str | None:
    """Why a registry file could hold rows another user wrote (None: it cannot)."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user"
    if st.st_mode & 0o022:
        return f"writable by other users (mode {stat.S_IMODE(st.st_mode):#o})"
    return None


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


def _recorded_worker(entry: Entry) -> psutil.Process | None:
    """The live process ``entry`` records, if its pid still names it: started then, and
    carrying the row's pool token (so not a process the row merely points at)."""
    if not _same_process(entry.worker_pid, entry.worker_started):
        return None
    try:
        proc = psutil.Process(entry.worker_pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # dead, not yet reaped
            return None
        carries = proc.environ().get(POOL_TOKEN) == entry.token
    except (psutil.Error, OSError):
        carries = False  # gone, or not ours to read: not ours to kill either
    if not carries:
        log.warning(
            "worker registry: pid %d, recorded for worker %s of dead host pid %d, is not "
            "that worker (it does not carry the pool's tag); left alone",
            entry.worker_pid,
            entry.worker_id,
            entry.host_pid,
        )
        return None
    return proc


class Registry:
    """One sqlite file; a short-lived connection per operation (any thread may call)."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        """Open (or make) the registry in ``state_dir`` (default: ``default_state_dir()``).

        Raises:
            UnsafeStateDir: the directory is not this user's, or others may write to it.
            UntrustedRegistry: the file is not this user's, or others may write to it.
            OSError, sqlite3.Error: the directory or file cannot be made or used.
        """
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_state_dir(directory)
        self.path = directory / FILENAME
        _open_registry_file(self.path)
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
            if entry.worker_pid not in procs:
                # A forked worker whose environment could not be retagged shows its
                # template's id there, but the pool's token all the same.
                worker = _recorded_worker(entry)
                if worker is not None:
                    procs[worker.pid] = worker
            if not dry_run:
                kill_all(procs.values())
                _shm.sweep(_shm.prefix(entry.token))  # its shared-memory payloads
                self.remove(entry.token, entry.worker_id)
            found.append(Leftover(entry, tuple(sorted(procs))))
        return found
