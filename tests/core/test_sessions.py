"""Core layer (synchronous): the session store, as a state machine against a model."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from snakepit_trio._core._sessions import QuotaExceeded, SessionStore

WORKERS = ["a", "b", "c"]


def test_strict_sessions_are_lost_with_their_worker_prefer_ones_unbound() -> None:
    ids = iter(["g1", "g2"])
    store = SessionStore(new_id=lambda: next(ids), max_sessions=3, default_ttl=10.0)
    strict = store.create("s", worker="a", affinity="strict", now=0.0)
    prefer = store.create(None, worker="a", affinity="prefer", now=0.0)
    assert (
        prefer.id == "g1"
        and store.bound_to("a") == 2
        and store.bound_to("a", strict_only=True) == 1
    )
    assert store.worker_died("a", "gone") == [strict]
    assert strict.lost == "gone" and strict.worker == "a" and prefer.worker is None
    assert store.bound_to("a") == 0
    with pytest.raises(ValueError):
        store.create("s", worker="b", affinity="strict", now=1.0)


def test_a_session_with_a_call_running_never_expires() -> None:
    store = SessionStore(new_id=lambda: "x", default_ttl=5.0)
    record = store.create("s", worker="a", affinity="strict", now=0.0)
    store.call_started(record, 1.0)
    assert store.next_expiry() == math.inf and store.expire(100.0) == []
    store.call_ended(record, 100.0)
    assert store.next_expiry() == 105.0
    assert store.expire(104.0) == [] and store.expire(105.0) == [record]
    assert store.get("s") is None


class SessionStoreMachine(RuleBasedStateMachine):
    """Creates, calls, deaths, rebinds, deletes and expiry, at times that only move forward."""

    @initialize(
        max_sessions=st.none() | st.integers(0, 4),
        default_ttl=st.none() | st.integers(1, 5),
    )
    def setup(self, max_sessions: int | None, default_ttl: int | None) -> None:
        self.made = 0

        def new_id() -> str:
            self.made += 1
            return f"g{self.made}"

        ttl = None if default_ttl is None else float(default_ttl)
        self.store = SessionStore(new_id=new_id, max_sessions=max_sessions, default_ttl=ttl)
        self.now = 0.0
        # The model: id -> worker, affinity, ttl, last_used, in_flight, lost
        self.model: dict[str, dict[str, object]] = {}

    def _expires_at(self, m: dict[str, object]) -> float:
        if m["ttl"] is None or m["in_flight"]:
            return math.inf
        return float(m["last_used"]) + float(m["ttl"])  # type: ignore[arg-type]

    @rule(dt=st.integers(0, 3))
    def tick(self, dt: int) -> None:
        self.now += dt

    @rule(
        sid=st.none() | st.sampled_from(["x1", "x2", "x3"]),
        worker=st.sampled_from(WORKERS),
        affinity=st.sampled_from(["strict", "prefer"]),
        ttl=st.none() | st.integers(1, 5),
    )
    def create(self, sid: str | None, worker: str, affinity: str, ttl: int | None) -> None:
        full = self.store.max_sessions is not None and len(self.model) >= self.store.max_sessions
        ttl_s = None if ttl is None else float(ttl)
        try:
            record = self.store.create(
                sid, worker=worker, affinity=affinity, now=self.now, ttl=ttl_s
            )
        except ValueError:
            assert sid in self.model, "only a duplicate id is refused here"
            return
        except QuotaExceeded:
            assert full and sid not in self.model
            return
        assert not full and record.id not in self.model
        assert sid is None or record.id == sid
        assert record.worker == worker and record.lost is None and record.in_flight == 0
        self.model[record.id] = {
            "worker": worker,
            "affinity": affinity,
            "ttl": self.store.default_ttl if ttl_s is None else ttl_s,
            "last_used": self.now,
            "in_flight": 0,
            "lost": None,
        }

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def call_started(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.model)))
        record = self.store.get(sid)
        assert record is not None
        self.store.call_started(record, self.now)
        m = self.model[sid]
        m["in_flight"] = int(m["in_flight"]) + 1  # type: ignore[call-overload]
        m["last_used"] = self.now

    @precondition(lambda self: any(m["in_flight"] for m in self.model.values()))
    @rule(data=st.data())
    def call_ended(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(s for s, m in self.model.items() if m["in_flight"])))
        record = self.store.get(sid)
        assert record is not None
        self.store.call_ended(record, self.now)
        m = self.model[sid]
        m["in_flight"] = int(m["in_flight"]) - 1  # type: ignore[call-overload]
        m["last_used"] = self.now

    @rule(worker=st.sampled_from(WORKERS))
    def worker_died(self, worker: str) -> None:
        expected = sorted(
            s
            for s, m in self.model.items()
            if m["worker"] == worker and m["lost"] is None and m["affinity"] == "strict"
        )
        lost = self.store.worker_died(worker, f"{worker} died")
        assert sorted(r.id for r in lost) == expected
        for m in self.model.values():
            if m["worker"] != worker or m["lost"] is not None:
                continue
            if m["affinity"] == "strict":
                m["lost"] = f"{worker} died"  # stays bound to the dead worker, lost
            else:
                m["worker"] = None  # rebound on its next call

    @precondition(lambda self: any(m["affinity"] == "prefer" for m in self.model.values()))
    @rule(data=st.data(), worker=st.sampled_from(WORKERS))
    def rebind(self, data: st.DataObject, worker: str) -> None:
        """A prefer-session's next call binds it again (after its worker died)."""
        prefer = sorted(s for s, m in self.model.items() if m["affinity"] == "prefer")
        sid = data.draw(st.sampled_from(prefer))
        record = self.store.get(sid)
        assert record is not None
        self.store.rebind(record, worker)
        self.model[sid]["worker"] = worker

    @rule(sid=st.sampled_from(["x1", "x2", "g1", "g2"]))
    def delete(self, sid: str) -> None:
        record = self.store.delete(sid)
        assert (record is not None) is (sid in self.model)
        self.model.pop(sid, None)

    @rule()
    def expire(self) -> None:
        gone = self.store.expire(self.now)
        expected = sorted(s for s, m in self.model.items() if self._expires_at(m) <= self.now)
        assert sorted(r.id for r in gone) == expected
        assert all(r.in_flight == 0 for r in gone), "a session expired with a call running"
        for sid in expected:
            del self.model[sid]

    @invariant()
    def store_matches_the_model(self) -> None:
        store = self.store
        assert set(store.sessions) == set(self.model)
        if store.max_sessions is not None:
            assert len(store.sessions) <= store.max_sessions
        for sid, m in self.model.items():
            r = store.sessions[sid]
            assert r.id == sid and r.worker == m["worker"] and r.affinity == m["affinity"]
            assert r.ttl == m["ttl"] and r.last_used == m["last_used"]
            assert r.in_flight == m["in_flight"] >= 0 and r.lost == m["lost"]
            assert r.lost is None or r.affinity == "strict", "only strict sessions are lost"
            assert r.expires_at() == self._expires_at(m)
        assert store.next_expiry() == min(
            map(self._expires_at, self.model.values()), default=math.inf
        )
        for w in WORKERS:
            live = [m for m in self.model.values() if m["worker"] == w and m["lost"] is None]
            assert store.bound_to(w) == len(live)
            strict = sum(1 for m in live if m["affinity"] == "strict")
            assert store.bound_to(w, strict_only=True) == strict


TestSessionStoreMachine = SessionStoreMachine.TestCase
TestSessionStoreMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
