"""What a worker leaves on the host: how its end is reported."""

from __future__ import annotations

import signal

import pytest
import trio

import snakepit_trio as sp

TRANSPORT_AGNOSTIC = True  # see conftest.py

OUTPUT = "tests.adapters.output:Output"


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
async def test_a_worker_whose_child_holds_its_pipes_is_reported_by_its_own_end(
    start_method: str,
) -> None:
    """Its child keeps the connection open until the pool kills the worker's group; the
    connection breaking then is not why the worker died."""
    with trio.fail_after(60):
        async with sp.open_pool(OUTPUT, size=1, start_method=start_method) as pool:
            with pytest.raises(sp.WorkerCrashed) as exited:
                await pool.execute("fork_and_exit", {"code": 5})
            assert (exited.value.cause, exited.value.exit_code) == ("exit", 5)
            with pytest.raises(sp.WorkerCrashed) as killed:
                await pool.execute("fork_and_exit", {"die_of": int(signal.SIGABRT)})
            assert (killed.value.cause, killed.value.signal) == ("signal", signal.SIGABRT)
