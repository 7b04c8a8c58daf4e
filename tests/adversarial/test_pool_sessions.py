"""Pool layer (virtual clock): session ttl under long calls, and thousands of sessions.

- A session's ttl counts idle time only: a call (or a stream, or a call queued behind
  another in the same session) that runs far longer than the ttl completes, the session
  lives on meanwhile, and it expires exactly ``ttl`` after its last call ended, when
  ``on_session_end`` runs in its worker.
- Thousands of sessions open at once, each making calls, then closed or left to expire:
  every one ends exactly once in its worker, and the pool's session store never scans
  them all on an event (it did: binding a new session and each call's end cost a pass
  over every open session, so 4,000 open sessions took seconds to open and to call).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.adapters.adversarial import SESSIONS_ENDED, Sessions
from tests.adversarial.conftest import Seed, scaled

Clock = trio.testing.MockClock
TTL = 5.0


async def _call(session: sp.Session, kind: str, seconds: float) -> None:
    if kind == "sleep":
        assert await session.execute("sleep", {"seconds": seconds}) == "slept"
        return
    n = 4
    async with session.stream("ticks", {"n": n, "every": seconds / n}) as chunks:
        assert [c async for c in chunks] == list(range(n))


async def _still_open_meanwhile(pool: sp.Pool, sid: str, at: float) -> None:
    await trio.sleep(at)
    assert pool.get_session(sid) is not None, f"{sid} expired while a call ran in it"


async def test_a_session_outlives_its_ttl_while_calls_run_and_expires_ttl_after_the_last(
    autojump_clock: Clock, seed: Seed
) -> None:
    rng = seed.rng
    expected: dict[str, float] = {}
    async with open_fake_pool(Sessions, size=1, session_ttl=TTL) as pool:
        for n in range(scaled(12)):
            sid = f"s{n}"
            session = await pool.open_session(sid, affinity=rng.choice(["strict", "prefer"]))
            for _ in range(rng.randint(1, 3)):
                await trio.sleep(rng.uniform(0, 0.9 * TTL))  # idle, but less than the ttl
                seconds = rng.uniform(1.5 * TTL, 3 * TTL)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_still_open_meanwhile, pool, sid, TTL + 0.5)
                    nursery.start_soon(_call, session, rng.choice(["sleep", "ticks"]), seconds)
                    if rng.random() < 0.5:  # queued behind it in the same session
                        nursery.start_soon(_call, session, "sleep", rng.uniform(0, TTL))
            expected[sid] = trio.current_time() + TTL
        await trio.sleep(TTL)
        await trio.testing.wait_all_tasks_blocked()  # the reaper's turn at that same time
        assert pool.list_sessions() == [], seed.replay
        ends = await pool.execute("session_ends")
    assert ends == pytest.approx(expected, abs=1e-9), seed.replay


class CountingScans(dict[str, Any]):
    """The session table, counting the records each full pass over it visits."""

    visited = 0

    def values(self) -> Any:
        CountingScans.visited += len(self)
        return super().values()

    def items(self) -> Any:
        CountingScans.visited += len(self)
        return super().items()

    def __iter__(self) -> Any:
        CountingScans.visited += len(self)
        return super().__iter__()


async def test_thousands_of_sessions_each_end_once_and_no_event_scans_them_all(
    autojump_clock: Clock, seed: Seed
) -> None:
    n = scaled(3000, cap=30_000)
    SESSIONS_ENDED.clear()
    async with open_fake_pool(Sessions, size=2, session_ttl=30) as pool:
        store = pool._engine.sessions.store
        store.sessions = CountingScans(store.sessions)
        CountingScans.visited = 0
        sessions = [await pool.open_session(f"s{i}") for i in range(n)]
        async with trio.open_nursery() as nursery:
            for session in sessions:
                for _ in range(2):
                    nursery.start_soon(
                        session.execute, "sleep", {"seconds": seed.rng.random() / 100}
                    )
        for session in sessions[::2]:
            session.close()
        await trio.sleep(31)  # the others expire
        assert pool.stats().sessions == 0
        visited = CountingScans.visited
    assert sorted(SESSIONS_ENDED) == sorted(s.id for s in sessions), seed.replay
    assert set(SESSIONS_ENDED.values()) == {1}, seed.replay
    # Opening, 2 calls and an end each: a pass over every open session per event would
    # visit about n * n / 2 records (4.5 million for 3,000).
    assert visited < 10 * n, f"{seed.replay}: {visited} records visited"
