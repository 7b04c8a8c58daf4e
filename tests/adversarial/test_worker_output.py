"""End-to-end (real workers): workers that abuse their own stdout and stderr.

- Floods: several calls write megabytes of lines to both streams at once while other
  calls run; every call ends, and every line reaches the host's log, none lost.
- A worker that closes its own stdout and stderr (``os.close(1); os.close(2)``) serves on:
  every kind of call still works, a failing tool is still a RemoteError, and its crash is
  still reported with its own exit code.
- A worker that forks a child holding its pipes and its connection, then dies: the crash
  is reported with its real cause (exit code or signal) and its last stderr lines, the
  child is killed (no orphan), and the pool serves again.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest
import trio

import snakepit_trio as sp
from tests.adversarial.conftest import scaled
from tests.conftest import pid_alive
from tests.helpers import wait_for

UNRULY = "tests.adapters.adversarial:Unruly"


class LineCounter(logging.Handler):
    """Counts the worker lines the host logs, per stream (without keeping them)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines = {"stdout": 0, "stderr": 0}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines[record.stream] += 1  # type: ignore[attr-defined]


async def test_floods_on_both_streams_block_no_call_and_lose_no_line() -> None:
    counter = LineCounter()
    logger = logging.getLogger("snakepit_trio.worker")
    logger.addHandler(counter)
    level = logger.level
    logger.setLevel(logging.INFO)
    kilobytes, floods = 1024, scaled(4)  # MiBs of 1 KiB lines on each stream
    try:
        with trio.fail_after(120):
            async with sp.open_pool(UNRULY, size=2, worker_capacity=2) as pool:
                results: list[int] = []

                async def flood() -> None:
                    results.append(await pool.execute("flood", {"kilobytes": kilobytes}))

                async with trio.open_nursery() as nursery:
                    for _ in range(floods):
                        nursery.start_soon(flood)
                    for _ in range(50):  # served meanwhile
                        assert isinstance(await pool.execute("pid"), int)
                assert results == [kilobytes] * floods
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
    # The pool has closed: each worker's pipes were read to their end.
    expected = floods * kilobytes
    assert counter.lines == {"stdout": expected, "stderr": expected}


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
async def test_a_worker_that_closes_its_stdout_and_stderr_serves_on(start_method: str) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(UNRULY, size=1, start_method=start_method) as pool:
            pid = await pool.execute("close_output")
            assert await pool.execute("print_anyway", {"text": "into the void"}) == "into the void"
            assert await pool.execute("pid") == pid
            assert await pool.execute("sleep", {"seconds": 0.01}) == "slept"
            assert await pool.execute("spin", {"seconds": 0.01}) == "spun"
            async with pool.stream("count", {"n": 100}) as chunks:
                assert [c async for c in chunks] == list(range(100))
            async with pool.stream("ticks", {"n": 5, "every": 0.001}) as chunks:
                assert [c async for c in chunks] == list(range(5))
            with pytest.raises(sp.RemoteError) as failed:
                await pool.execute("fail", {"message": "nothing prints this"})
            assert failed.value.remote_message == "nothing prints this"
            [worker] = pool.workers()
            assert worker.pid == pid and worker.accepting and pool.stats().crashes == 0
            with pytest.raises(sp.WorkerCrashed) as crashed:
                await pool.execute("crash", {"code": 7})
            assert (crashed.value.cause, crashed.value.exit_code) == ("exit", 7)
            assert await pool.execute("pid") != pid  # its replacement


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
@pytest.mark.parametrize("death", ["exit", "signal"])
async def test_a_worker_that_dies_leaving_a_child_on_its_pipes_is_reported_and_the_child_killed(
    tmp_path: Path, start_method: str, death: str
) -> None:
    pid_file = tmp_path / "child"
    args = {"pid_file": str(pid_file)}
    args.update({"code": 5} if death == "exit" else {"die_of": int(signal.SIGABRT)})
    with trio.fail_after(60):
        async with sp.open_pool(UNRULY, size=1, start_method=start_method) as pool:
            with pytest.raises(sp.WorkerCrashed) as crashed:
                await pool.execute("fork_holder_and_die", args)
            child = int(pid_file.read_text())
            error = crashed.value
            if death == "exit":
                assert (error.cause, error.exit_code) == ("exit", 5)
            else:
                assert (error.cause, error.signal) == ("signal", signal.SIGABRT)
            assert f"leaving child {child}" in error.stderr_tail
            await wait_for(lambda: not pid_alive(child))  # its group was killed
            assert isinstance(await pool.execute("pid"), int)
            assert pool.stats().crashes == 1
