"""The registry's ``pools`` table: one row per open pool, so ``snakepit-trio status`` finds it.

A row names the pool (token, name, adapter), its host (pid and start time, to tell a dead
host from a reused pid) and the path of its control socket. The pool adds its row once its
control endpoint listens and removes it when it closes; a host that died leaves its row, which
``status`` shows as dead and ``cleanup`` removes. Blocking (sqlite): call from a thread.
"""

from __future__ import annotations

import attrs

from ._registry import Entry, Registry, host_alive

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pools (
    token TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    adapter TEXT NOT NULL,
    host_pid INTEGER NOT NULL,
    host_started REAL NOT NULL,
    control TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@attrs.frozen
class PoolRow:
    token: str
    name: str
    adapter: str
    host_pid: int
    host_started: float
    control: str  # the control socket's path
    created: float

    def host_alive(self) -> bool:
        probe = Entry(self.token, self.host_pid, self.host_started, "", 0, 0.0, 0)
        return host_alive(probe)


def add(registry: Registry, row: PoolRow) -> None:
    with registry._connect() as db:
        db.execute(_SCHEMA)
        db.execute("INSERT OR REPLACE INTO pools VALUES (?, ?, ?, ?, ?, ?, ?)", attrs.astuple(row))


def remove(registry: Registry, token: str) -> None:
    with registry._connect() as db:
        db.execute(_SCHEMA)
        db.execute("DELETE FROM pools WHERE token = ?", (token,))


def rows(registry: Registry) -> list[PoolRow]:
    with registry._connect() as db:
        db.execute(_SCHEMA)
        found = db.execute("SELECT * FROM pools ORDER BY created").fetchall()
    return [PoolRow(*row) for row in found]


def forget_dead(registry: Registry) -> list[PoolRow]:
    """Remove the rows of pools whose host is gone; returns them."""
    dead = [row for row in rows(registry) if not row.host_alive()]
    for row in dead:
        remove(registry, row.token)
    return dead
