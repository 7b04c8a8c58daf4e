"""Chaos: random SIGKILL and SIGSTOP of workers under sustained mixed load.

Checked: every call ends with a result or a typed error; idempotent calls all succeed;
no call runs twice unless idempotent (and then at most 1 + max_retries times); streams
deliver an in-order prefix; strict sessions count without gaps until SessionLost; the
pool returns to full size; no process leaks (the autouse fixture).

Short by default (CI); ``nox -s chaos`` runs it longer: SNAKEPIT_CHAOS_SECONDS sets the
duration, and SNAKEPIT_CHAOS_REPORT names a file for the JSON report of figures (one per
worker runtime: report-python.json, report-node.json).

Every run uses a seed, random unless SNAKEPIT_CHAOS_SEED sets it; it is printed at the start
(pytest shows it with a failure), written to the report and named in the final checks'
messages.
Running again with that seed replays the same choices: clients' calls, victims, signals
and delays (not the machine's timing).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

SIZE = 4
CLIENTS = 16
MAX_RETRIES = 3
TYPED = (sp.WorkerCrashed, sp.SessionLost, sp.RequestTimeout)


@attrs.define
class Ledger:
    """What the load saw: every call's token, kind and outcome."""

    outcomes: Counter[str] = attrs.Factory(Counter)
    calls: Counter[str] = attrs.Factory(Counter)
    succeeded: set[str] = attrs.Factory(set)
    idempotent: set[str] = attrs.Factory(set)
    untyped: list[str] = attrs.Factory(list)
    kills: Counter[str] = attrs.Factory(Counter)
    recoveries: list[float] = attrs.Factory(list)
    ids: Any = attrs.Factory(itertools.count)
    doing: dict[int, tuple[str, int, float]] = attrs.Factory(dict)  # unfinished client ops

    def token(self, kind: str) -> str:
        self.calls[kind] += 1
        return f"{kind.replace(' ', '_')}-{next(self.ids)}"

    def failed(self, kind: str, exc: BaseException) -> None:
        if isinstance(exc, TYPED):
            self.outcomes[f"{kind}: {type(exc).__name__}"] += 1
        else:
            self.untyped.append(f"{kind}: {exc!r}")

    def ok(self, kind: str, token: str) -> None:
        self.outcomes[f"{kind}: ok"] += 1
        self.succeeded.add(token)


async def _unary(pool: sp.Pool, ledger: Ledger, rng: random.Random) -> None:
    idempotent = rng.random() < 0.5
    kind = "unary idempotent" if idempotent else "unary"
    token = ledger.token(kind)
    if idempotent:
        ledger.idempotent.add(token)
    tool = rng.choice(["work", "awork"])
    timeout = 0.05 if rng.random() < 0.05 else None  # some calls time out, typed
    seconds = rng.choice([0.0, 0.001, 0.01, 0.1])
    try:
        result = await pool.execute(
            tool, {"token": token, "seconds": seconds}, idempotent=idempotent, timeout=timeout
        )
    except Exception as exc:
        ledger.failed(kind, exc)
        return
    assert result == token
    ledger.ok(kind, token)


async def _host_tool(pool: sp.Pool, ledger: Ledger, rng: random.Random) -> None:
    """A worker tool that waits in a host tool: killed or stopped workers must cancel it."""
    token = ledger.token("host tool")
    timeout = 0.05 if rng.random() < 0.05 else None
    try:
        result = await pool.execute(
            rng.choice(["via_host", "avia_host"]),
            {"token": token, "seconds": rng.choice([0.0, 0.01, 0.1])},
            timeout=timeout,
        )
    except Exception as exc:
        ledger.failed("host tool", exc)
        return
    assert result == token
    ledger.ok("host tool", token)


async def _stream(pool: sp.Pool, ledger: Ledger, rng: random.Random) -> None:
    token = ledger.token("stream")
    n = rng.choice([10, 100, 500])
    got: list[int] = []
    try:
        async with pool.stream(rng.choice(["numbers", "anumbers"]), {"token": token, "n": n}) as s:
            async for item in s:
                got.append(item)
    except Exception as exc:
        assert got == list(range(len(got))), "a stream lost or reordered chunks"
        ledger.failed("stream", exc)
        return
    assert got == list(range(n))
    ledger.ok("stream", token)


async def _session(pool: sp.Pool, ledger: Ledger, rng: random.Random) -> None:
    async with pool.session() as session:
        for expected in range(1, rng.randint(2, 8)):
            token = ledger.token("session")
            try:
                count = await session.execute("incr", {"token": token})
            except Exception as exc:
                ledger.failed("session", exc)
                return  # lost: its state is gone; a new session starts over
            assert count == expected, "a strict session's calls ran elsewhere"
            ledger.ok("session", token)


async def _client(pool: sp.Pool, ledger: Ledger, seed: int, until: float) -> None:
    rng = random.Random(seed)
    while trio.current_time() < until:
        op = rng.choices([_unary, _stream, _session, _host_tool], weights=[6, 2, 2, 2])[0]
        ledger.doing[seed] = (op.__name__, ledger.calls.total(), trio.current_time())
        await op(pool, ledger, rng)
    ledger.doing.pop(seed, None)


async def _chaos_monkey(pool: sp.Pool, ledger: Ledger, rng: random.Random, until: float) -> None:
    while trio.current_time() < until:
        await trio.sleep(rng.uniform(0.3, 0.9))
        live = [w for w in pool.workers() if w.state in ("ready", "busy")]
        if not live:
            continue
        victim = rng.choice(live)
        sig = signal.SIGSTOP if rng.random() < 0.3 else signal.SIGKILL
        try:
            os.kill(victim.pid, sig)
        except ProcessLookupError:
            continue
        ledger.kills[sig.name] += 1


async def _watch_recovery(pool: sp.Pool, ledger: Ledger) -> None:
    """Measure how long the pool stays below full size after each loss (a measurement)."""
    short_since: float | None = None
    while True:
        await trio.sleep(0.005)
        full = pool.stats().workers >= SIZE
        now = trio.current_time()
        if not full and short_since is None:
            short_since = now
        elif full and short_since is not None:
            ledger.recoveries.append(now - short_since)
            short_since = None


def _hang_report(pool: sp.Pool, ledger: Ledger, replay: str) -> str:
    live = pool._engine.core.calls.values()
    calls = [(c.id, c.tool, c.state.value, c.worker, c.attempts) for c in live]
    return (
        f"load hung ({replay}): {pool.stats()}\nworkers: {pool.workers()}\ncalls: {calls[:20]}\n"
        f"clients still busy (op, calls so far, since): {list(ledger.doing.values())}"
    )


# The same load against each worker runtime (twin adapters: chaos.py, chaos.mjs).
ADAPTERS = {
    "python": "tests.adapters.chaos:Chaos",
    "node": str(Path(__file__).parent.parent / "adapters" / "chaos.mjs"),
}


@pytest.mark.parametrize("runtime", sorted(ADAPTERS))
async def test_chaos(tmp_path: Path, runtime: str) -> None:
    seconds = float(os.environ.get("SNAKEPIT_CHAOS_SECONDS", "8"))
    log_file = tmp_path / "runs.log"
    log_file.touch()
    ledger = Ledger()
    seed = int(os.environ.get("SNAKEPIT_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    replay = f"replay with SNAKEPIT_CHAOS_SEED={seed}"
    print(f"chaos seed: {seed} ({replay})", file=sys.stderr)
    rng = random.Random(seed)
    with trio.fail_after(seconds + 120):
        async with sp.open_pool(
            ADAPTERS[runtime],
            runtime=runtime,
            size=SIZE,
            env={"SNAKEPIT_CHAOS_LOG": str(log_file)},
            max_retries=MAX_RETRIES,
            crash_threshold=None,  # these kills are the test's, not a storm to stop
            # Kills every ~0.6 s keep every worker younger than reset_after, so the default
            # backoff would grow to max_delay; the pool should come back fast here.
            restart=sp.RestartPolicy(initial=0.05, max_delay=0.5),
        ) as pool:
            in_host_tools = 0

            @pool.host_tool
            async def echo_back(token: str, seconds: float) -> str:
                nonlocal in_host_tools
                in_host_tools += 1
                try:
                    await trio.sleep(seconds)
                    return token
                finally:
                    in_host_tools -= 1

            until = trio.current_time() + seconds
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_recovery, pool, ledger)
                # Every client ends its last call soon after the deadline; if one hangs, say
                # where, instead of a bare timeout.
                with trio.move_on_after(seconds + 30) as load_scope:
                    async with trio.open_nursery() as load:
                        load.start_soon(_chaos_monkey, pool, ledger, rng, until)
                        for _ in range(CLIENTS):
                            load.start_soon(_client, pool, ledger, rng.randrange(2**32), until)
                assert not load_scope.cancelled_caught, _hang_report(pool, ledger, replay)
                # Every stopped worker is found by its heartbeats and replaced.
                await wait_for(lambda: pool.stats().workers == SIZE, timeout=10)
                # Host tools of killed workers and abandoned calls were all cancelled.
                await wait_for(lambda: in_host_tools == 0, timeout=10)
                nursery.cancel_scope.cancel()
            stats = pool.stats()

    runs = Counter((await trio.Path(log_file).read_text()).split())
    report = {
        "runtime": runtime,
        "seed": seed,
        "seconds": seconds,
        "calls": dict(ledger.calls),
        "outcomes": dict(sorted(ledger.outcomes.items())),
        "kills": dict(ledger.kills),
        "crashes_seen_by_pool": stats.crashes,
        "restarts": stats.restarts,
        "recovery_s": {
            "count": len(ledger.recoveries),
            "median": round(statistics.median(ledger.recoveries), 3) if ledger.recoveries else None,
            "max": round(max(ledger.recoveries), 3) if ledger.recoveries else None,
        },
        "ran_twice_or_more": sum(1 for n in runs.values() if n > 1),
    }
    print(json.dumps(report, indent=2), file=sys.stderr)
    if os.environ.get("SNAKEPIT_CHAOS_REPORT"):
        named = Path(os.environ["SNAKEPIT_CHAOS_REPORT"])  # one report per runtime
        target = trio.Path(named.with_name(f"{named.stem}-{runtime}{named.suffix}"))
        await target.write_text(json.dumps(report, indent=2))

    assert not ledger.untyped, f"untyped errors ({replay}): {ledger.untyped[:5]}"
    kills = sum(ledger.kills.values())
    assert kills >= seconds / 2, f"the monkey only killed {kills} times ({replay})"
    failed_idempotent = ledger.outcomes["unary idempotent: WorkerCrashed"]
    assert failed_idempotent == 0, f"{failed_idempotent} idempotent calls failed ({replay})"
    for token, n in runs.items():
        limit = 1 + MAX_RETRIES if token in ledger.idempotent else 1
        assert n <= limit, f"{token} ran {n} times ({replay})"
    missing = [t for t in ledger.succeeded if runs[t] == 0]
    assert not missing, f"calls reported done but never ran ({replay}): {missing[:5]}"
