"""The pool's side of process hygiene: tag its workers, record them, sweep what is left.

``WorkerRecords`` gives each worker its tags (environment variables its children inherit),
records it in the registry before the host connects to it, and after it is reaped kills
anything still carrying its tag (children that escaped its process group with setsid())
and forgets it. Opening sweeps leftovers of dead hosts. The registry is best effort: if
its file cannot be used (read-only home, a file another user could have written,
``registry=False``), the pool runs without it and says so once in the log; tagging and the
sweep after each worker still work. A state directory other users may write to is refused
(``UnsafeStateDir`` from ``open_pool``): that is a setting to fix, not a passing fault.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from collections.abc import Callable

import trio

from .._config import PoolConfig
from .._shared import _shm
from .._shared._tagging import POOL_TOKEN, WORKER_ID, kill_tagged
from ._registry import Entry, Registry, UnsafeStateDir, started_at

log = logging.getLogger("snakepit_trio")


class WorkerRecords:
    def __init__(self, registry: Registry | None) -> None:
        self.token = secrets.token_hex(8)
        self.registry = registry
        self.host_pid = os.getpid()
        self.host_started = started_at(self.host_pid) or 0.0

    @classmethod
    async def open(cls, config: PoolConfig) -> WorkerRecords:
        """Open the registry and kill leftovers of dead hosts (in a thread: it blocks).

        Raises:
            UnsafeStateDir: ``config.state_dir`` is not private to this user.
        """
        if not config.registry:
            return cls(None)

        def open_and_sweep() -> Registry:
            registry = Registry(config.state_dir)
            for left in registry.sweep():
                if left.pids:
                    log.warning(
                        "killed %d leftover process(es) of worker %s of dead host pid %d: %s",
                        len(left.pids),
                        left.entry.worker_id,
                        left.entry.host_pid,
                        ", ".join(map(str, left.pids)),
                    )
            return registry

        try:
            return cls(await trio.to_thread.run_sync(open_and_sweep))
        except UnsafeStateDir:
            raise
        except (OSError, sqlite3.Error) as exc:
            log.warning("worker registry unavailable, running without it: %r", exc)
            return cls(None)

    def tags(self, worker_id: str) -> dict[str, str]:
        return {POOL_TOKEN: self.token, WORKER_ID: worker_id}

    async def spawned(self, worker_id: str, pid: int) -> None:
        if self.registry is None:
            return
        registry = self.registry

        def add() -> None:
            entry = Entry(
                self.token,
                self.host_pid,
                self.host_started,
                worker_id,
                pid,
                started_at(pid) or 0.0,
                pid,  # it leads its own process group (start_new_session)
            )
            registry.add(entry)

        await self._blocking(add)

    async def reaped(self, worker_id: str) -> None:
        """The worker is gone: kill what it left (tagged processes), then forget it."""
        registry = self.registry

        def clean() -> None:
            kill_tagged(self.token, worker_id)
            _shm.sweep(_shm.prefix(self.token, worker_id))  # results it never delivered
            if registry is not None:
                registry.remove(self.token, worker_id)

        await self._blocking(clean)

    async def close(self) -> None:
        """Forget every row and segment of this pool (all its workers are reaped by now)."""
        registry = self.registry

        def clean() -> None:
            _shm.sweep(_shm.prefix(self.token))
            if registry is not None:
                registry.remove(self.token)

        await self._blocking(clean)

    async def _blocking(self, fn: Callable[[], object]) -> None:
        with trio.CancelScope(shield=True):  # cleanup must finish even when cancelled
            try:
                await trio.to_thread.run_sync(fn)
            except (OSError, sqlite3.Error) as exc:
                log.warning("worker registry: %r", exc)
