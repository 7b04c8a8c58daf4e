"""Which one exception leaves ``open_pool`` (unit: ``_lifecycle._outcome``, no I/O).

The end-to-end tests with real Ctrl-C are in tests/e2e/test_shutdown.py; these pin the rule
for each combination: a KeyboardInterrupt comes out as itself, whatever else failed is kept
as its context, the user's own exceptions (groups included) come out as they were raised.
"""

from __future__ import annotations

import trio

from snakepit_trio._lifecycle import _outcome


def _cancelled() -> trio.Cancelled:
    return trio.Cancelled._create()  # type: ignore[attr-defined]


def test_nothing_failed() -> None:
    assert _outcome(None, None, None) is None


def test_the_users_exception_comes_out_as_it_was_raised() -> None:
    mine = KeyError("mine")
    assert _outcome(mine, None, None) is mine
    group = ExceptionGroup("my nursery", [ValueError("x")])
    assert _outcome(group, None, None) is group


def test_a_ctrl_c_while_closing_comes_out_as_itself() -> None:
    interrupt = KeyboardInterrupt()
    assert _outcome(None, interrupt, None) is interrupt
    assert interrupt.__context__ is None


def test_a_ctrl_c_our_nursery_wrapped_comes_out_as_itself() -> None:
    interrupt = KeyboardInterrupt()
    wrapped = BaseExceptionGroup("ours", [BaseExceptionGroup("inner", [interrupt])])
    assert _outcome(None, None, wrapped) is interrupt
    assert interrupt.__context__ is None  # nothing else failed


def test_cancellation_beside_a_ctrl_c_is_not_kept() -> None:
    interrupt = KeyboardInterrupt()
    wrapped = BaseExceptionGroup("ours", [_cancelled(), interrupt])
    assert _outcome(None, None, wrapped) is interrupt
    assert interrupt.__context__ is None


def test_what_else_failed_is_kept_as_the_interrupts_context() -> None:
    interrupt, crash = KeyboardInterrupt(), RuntimeError("a background task failed")
    wrapped = BaseExceptionGroup("ours", [crash, interrupt, _cancelled()])
    assert _outcome(None, None, wrapped) is interrupt
    context = interrupt.__context__
    assert isinstance(context, BaseExceptionGroup) and context.exceptions == (crash,)

    body = ValueError("the block raised, then Ctrl-C came while the pool closed")
    later = KeyboardInterrupt()
    assert _outcome(body, later, None) is later
    assert later.__context__ is body


def test_the_users_own_ctrl_c_wins_over_a_later_one() -> None:
    first, second = KeyboardInterrupt(), KeyboardInterrupt()
    assert _outcome(first, second, None) is first
    users_group = BaseExceptionGroup("my nursery", [first])
    assert _outcome(users_group, second, None) is users_group


def test_a_background_failure_without_ctrl_c_comes_out_as_it_was() -> None:
    group = ExceptionGroup("ours", [RuntimeError("boom")])
    assert _outcome(None, None, group) is group
    assert _outcome(KeyError("mine"), None, group) is group  # as before: ours wins
    cancelled = _cancelled()
    assert _outcome(None, None, cancelled) is cancelled
