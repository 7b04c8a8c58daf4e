"""Cancel storms: many calls, each cancelled or timed out at a moment drawn from the seed.

A storm is planned before it runs: every call's tool, arguments, start time and how it is
given up (cancelled after some delay, a ``timeout=``, or not at all) are drawn from the
test's generator up front, so the plan depends on the seed alone, never on scheduling.
Each call carries a token; the tools record the tokens of calls that began to run
(``tests.adapters.adversarial.started``), so a test can tell a call that never started
from one that may have.

What a storm checks itself: every call ends with its result (the right one), its own
cancellation, ``RequestTimeout`` (only when it had a timeout) or, where the test allows it,
``WorkerCrashed``; a stream delivers an in-order prefix. Anything else is a failure, kept
with the call that saw it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

import snakepit_trio as sp
from tests.helpers import wait_for


@attrs.frozen
class Move:
    """One kind of call: its tool, whether it streams, how its arguments are drawn."""

    tool: str
    streaming: bool
    args: Callable[[random.Random], dict[str, Any]]

    def expected(self, args: dict[str, Any]) -> Any:
        if self.streaming:
            return list(range(args["n"]))
        return {
            "sleep": "slept",
            "stubborn": "done",
            "spin": "spun",
            "echo": args.get("value"),
        }.get(self.tool, ...)


@attrs.frozen
class PlannedCall:
    token: str
    move: Move
    args: dict[str, Any]
    start: float  # seconds after the storm begins
    cancel_after: float | None  # the caller gives up after this long (its own scope)
    timeout: float | None  # the call's timeout= (RequestTimeout)


def plan(
    rng: random.Random,
    moves: Sequence[Move],
    calls: int,
    span: float,
    give_up_within: float,
) -> list[PlannedCall]:
    """``calls`` calls starting within ``span`` seconds; about a third each cancelled,
    timed out or left alone, giving up within ``give_up_within`` seconds."""
    out = []
    for i in range(calls):
        move = rng.choice(moves)
        args = move.args(rng)
        how = rng.random()
        cancel_after = rng.uniform(0, give_up_within) if how < 0.35 else None
        timeout = rng.uniform(give_up_within / 100, give_up_within) if 0.35 <= how < 0.7 else None
        token = f"call-{i}"
        out.append(
            PlannedCall(
                token, move, {**args, "token": token}, rng.uniform(0, span), cancel_after, timeout
            )
        )
    return out


@attrs.define
class Ledger:
    """How each call of a storm ended."""

    outcomes: Counter[str] = attrs.Factory(Counter)
    crashed: list[str] = attrs.Factory(list)  # tokens of calls that got WorkerCrashed
    failures: list[str] = attrs.Factory(list)  # what no call may see

    def summary(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))


async def _one(pool: sp.Pool, call: PlannedCall, ledger: Ledger, crashes_allowed: bool) -> None:
    await trio.sleep(call.start)
    move = call.move
    got: list[Any] = []
    label = f"{call.token} {move.tool}"
    with trio.CancelScope() as scope:
        if call.cancel_after is not None:
            scope.deadline = trio.current_time() + call.cancel_after
        try:
            if move.streaming:
                async with pool.stream(move.tool, call.args, timeout=call.timeout) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
                result: Any = got
            else:
                result = await pool.execute(move.tool, call.args, timeout=call.timeout)
        except sp.RequestTimeout:
            if call.timeout is None:
                ledger.failures.append(f"{label}: RequestTimeout without a timeout")
            ledger.outcomes["timed out"] += 1
            _check_prefix(got, label, ledger)
            return
        except sp.WorkerCrashed:
            if not crashes_allowed:
                ledger.failures.append(f"{label}: WorkerCrashed")
            ledger.crashed.append(call.token)
            ledger.outcomes["crashed"] += 1
            _check_prefix(got, label, ledger)
            return
        except Exception as exc:
            ledger.failures.append(f"{label}: {exc!r}")
            return
        expected = move.expected(call.args)
        if expected is not ... and result != expected:
            ledger.failures.append(f"{label}: wrong result {result!r}")
        ledger.outcomes["completed"] += 1
        return
    assert scope.cancelled_caught
    _check_prefix(got, label, ledger)
    ledger.outcomes["cancelled"] += 1


def _check_prefix(got: list[Any], label: str, ledger: Ledger) -> None:
    if got != list(range(len(got))):
        ledger.failures.append(f"{label}: chunks out of order or lost: {got[:10]}")


async def run(
    pool: sp.Pool, calls: Sequence[PlannedCall], *, crashes_allowed: bool = False
) -> Ledger:
    """Run the planned calls (each in its own task) until every one has ended."""
    ledger = Ledger()
    async with trio.open_nursery() as nursery:
        for call in calls:
            nursery.start_soon(_one, pool, call, ledger, crashes_allowed)
    return ledger


def idle_problems(pool: sp.Pool, size: int) -> list[str]:
    """What keeps ``pool`` from being idle and whole: nothing queued or in flight, ``size``
    workers, each accepting calls and running none."""
    problems = []
    stats = pool.stats()
    if stats.in_flight or stats.queued:
        problems.append(f"in_flight={stats.in_flight} queued={stats.queued}")
    workers = pool.workers()
    if len(workers) != size:
        problems.append(f"{len(workers)} workers, not {size}: {[w.id for w in workers]}")
    for w in workers:
        if not w.accepting or w.calls or w.state != "ready":
            problems.append(f"{w.id}: state={w.state} accepting={w.accepting} calls={w.calls}")
    return problems


async def settle(pool: sp.Pool, size: int, timeout: float, replay: str) -> None:
    """Wait (at most ``timeout`` seconds) until ``pool`` is idle and whole; fail saying why."""
    try:
        await wait_for(lambda: not idle_problems(pool, size), timeout=timeout)
    except trio.TooSlowError:
        raise AssertionError(
            f"the pool did not settle ({replay}): {idle_problems(pool, size)}; {pool.stats()}"
        ) from None
