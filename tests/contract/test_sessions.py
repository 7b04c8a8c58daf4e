"""Contract: sessions keep their worker and its state; ending one tells the adapter."""

from __future__ import annotations

import trio

from tests.contract.conftest import OpenContract
from tests.helpers import wait_for


async def test_a_session_keeps_its_worker_and_state(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract(size=2) as pool:
            async with pool.session("a") as a, pool.session("b") as b:
                seen_a = [await a.execute("incr") for _ in range(3)]
                seen_b = [await b.execute("incr") for _ in range(2)]
            assert [r["count"] for r in seen_a] == [1, 2, 3]
            assert [r["count"] for r in seen_b] == [1, 2]
            assert len({r["pid"] for r in seen_a}) == 1 and len({r["pid"] for r in seen_b}) == 1
            assert {r["session"] for r in seen_a} == {"a"}


async def test_closing_a_session_runs_the_adapters_session_end(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract(size=1) as pool:
            async with pool.session("done-1") as session:
                await session.execute("incr")
            ended: list[str] = []

            async def told() -> bool:
                ended[:] = await pool.execute("ended")
                return "done-1" in ended

            # The adapter's on_session_end runs after the close, not before its answer:
            # ask until it has (fail_after bounds it).
            while not await told():  # noqa: ASYNC110 - polls the worker, not a flag here
                await trio.sleep(0.01)
            async with pool.session("done-1") as again:  # a fresh session of that id
                assert (await again.execute("incr"))["count"] == 1
            await wait_for(lambda: pool.get_session("done-1") is None)
