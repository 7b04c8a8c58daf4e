"""Hostile input: generated arguments and frames get typed errors or correct answers.

One pool serves every generated example: it runs in its own thread under its own
``trio.run``, and hypothesis (synchronous) sends calls to it with ``trio.from_thread``.
"""

from __future__ import annotations

import math
import os
import stat
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snakepit_trio as sp

TRANSPORT_AGNOSTIC = True  # see conftest.py

LIMIT = 1 << 20  # max_payload_bytes of the pool under test


class PoolThread:
    """A pool in a background thread, callable from synchronous test code."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.token: trio.lowlevel.TrioToken | None = None
        self.pool: sp.Pool | None = None
        self.stop: trio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.stop = trio.Event()
            self.token = trio.lowlevel.current_trio_token()
            async with sp.open_pool(
                "tests.adapters.basic:Echo", size=2, max_payload_bytes=LIMIT, registry=False
            ) as pool:
                self.pool = pool
                self.ready.set()
                await self.stop.wait()

        try:
            trio.run(main)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    def call(self, tool: str, args: dict[str, Any]) -> Any:
        assert self.pool is not None
        return trio.from_thread.run(self.pool.execute, tool, args, trio_token=self.token)

    def close(self) -> None:
        """Stop the pool and wait for its thread; whatever ended that thread is raised here."""
        if self.stop is not None and self.token is not None:
            try:
                trio.from_thread.run_sync(self.stop.set, trio_token=self.token)
            except trio.RunFinishedError:
                pass  # it already ended by itself: its error, if any, is raised below
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the pool thread did not stop"
        if self.error is not None:
            raise self.error  # the pool failed while serving the tests or while closing


@pytest.fixture(scope="module")
def pool_thread() -> Iterator[PoolThread]:
    pt = PoolThread()
    pt.thread.start()
    assert pt.ready.wait(timeout=30) and pt.error is None, pt.error
    yield pt
    pt.close()


@pytest.fixture(autouse=True)
def no_leaked_processes() -> None:
    """The module's pool lives across tests; its own fixture checks it leaves nothing."""


def _same(a: Any, b: Any) -> bool:
    """Equality after a msgpack round trip: tuples come back as lists, NaN is NaN."""
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (list, tuple)):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond msgpack's 64 bits too
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec="utf-8"), max_size=50)
    | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)  # lone surrogates
    | st.binary(max_size=50)
    | st.builds(object)  # not encodable
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(-5, 5), inner, max_size=5)
    ),
    max_leaves=30,
)


def _encodable(value: Any) -> bool:
    try:
        msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_generated_arguments_round_trip_or_get_a_typed_error(
    pool_thread: PoolThread, value: Any
) -> None:
    if _encodable(value):
        assert _same(value, pool_thread.call("echo", {"value": value}))
    else:
        with pytest.raises(sp.SerializationError):
            pool_thread.call("echo", {"value": value})


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (2**64, sp.SerializationError),  # one past msgpack's unsigned range
        ("\ud800", sp.SerializationError),  # a lone surrogate is not UTF-8
        ("x" * (LIMIT + 1), sp.PayloadTooLarge),  # a huge string
        (b"\0" * (LIMIT + 1), sp.PayloadTooLarge),
    ],
)
def test_values_that_cannot_travel_are_refused_at_the_call_site(
    pool_thread: PoolThread, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        pool_thread.call("echo", {"value": value})


def test_deep_nesting(pool_thread: PoolThread) -> None:
    def nest(depth: int) -> Any:
        value: Any = "leaf"
        for _ in range(depth):
            value = [value]
        return value

    assert pool_thread.call("echo", {"value": nest(200)}) == nest(200)
    with pytest.raises(sp.SerializationError):
        pool_thread.call("echo", {"value": nest(100_000)})


def test_oversized_results_are_refused_by_the_worker(pool_thread: PoolThread) -> None:
    with pytest.raises(sp.PayloadTooLarge) as info:
        pool_thread.call("big", {"size": LIMIT + 10})
    assert info.value.limit == LIMIT
    assert pool_thread.call("add", {"a": 1}) == 2  # the worker lives on


# Junk frames on both carriers, and oversized lane messages: tests/contract/test_wire.py
# (against every worker runtime).


async def test_worker_sockets_live_in_a_private_directory() -> None:
    with trio.fail_after(30):
        async with sp.open_pool("tests.adapters.basic:Echo", size=1, registry=False) as pool:
            directory = pool._engine.launcher._socket_dir  # type: ignore[attr-defined]
            assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
            sockets = sorted(os.listdir(directory))
            workers = [name for name in sockets if name != "control.sock"]
            assert [os.path.splitext(name)[1] for name in workers] == [".lane", ".sock"]
            assert "control.sock" in sockets  # the pool's read-only status endpoint
            for name in sockets:
                assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600


def test_nothing_is_pickled() -> None:
    # The wire carries msgpack only: a value msgpack refuses is an error, never a pickle.
    import snakepit_trio._shared._codec as codec

    with pytest.raises(sp.SerializationError, match="cannot encode"):
        codec.encode({1, 2}, what="a set", limit=LIMIT)
    assert "pickle" not in codec.encode.__code__.co_names
