"""End-to-end: what a tool does to its worker process, for fresh and forked workers alike.

- Writing to a closed pipe raises BrokenPipeError in the tool (SIGPIPE is ignored, as in
  any Python process), it does not kill the worker.
- SystemExit and KeyboardInterrupt raised by a tool of any kind fail that call only, as a
  RemoteError naming them; the worker serves on.
- A tool that crashes the interpreter leaves the Python stack of the crash (faulthandler)
  in WorkerCrashed's stderr tail.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
import trio

import snakepit_trio as sp

TRANSPORT_AGNOSTIC = True  # see conftest.py: these are about the process, not the carrier

FAULTS = "tests.adapters.faults:Faults"
BOUND = 15  # seconds a call may take on a loaded machine
START_METHODS = ["spawn", "zygote"]


async def assert_serves_on(pool: sp.Pool, pid: int) -> None:
    with trio.fail_after(BOUND):
        assert await pool.execute("echo", {"value": 1}) == 1
        assert await pool.execute("aecho", {"value": 2}) == 2
    assert [w.pid for w in pool.workers()] == [pid]
    assert pool.stats().crashes == 0


@pytest.mark.parametrize("start_method", START_METHODS)
async def test_writing_to_a_closed_pipe_is_a_broken_pipe_error(start_method: str) -> None:
    async with sp.open_pool(FAULTS, size=1, start_method=start_method) as pool:
        [worker] = pool.workers()
        with trio.fail_after(BOUND), pytest.raises(sp.RemoteError) as info:
            await pool.execute("broken_pipe")
        assert info.value.remote_type == "BrokenPipeError"
        await assert_serves_on(pool, worker.pid)


async def _run(pool: sp.Pool, tool: str, args: dict[str, Any], chunks: list[Any]) -> None:
    if tool.startswith(("gen_", "agen_")):
        async with pool.stream(tool, args) as stream:
            async for chunk in stream:
                chunks.append(chunk)
    else:
        await pool.execute(tool, args)


@pytest.mark.parametrize("what", ["SystemExit", "KeyboardInterrupt"])
@pytest.mark.parametrize("tool", ["raises", "araises", "gen_raises", "agen_raises"])
async def test_system_exit_and_keyboard_interrupt_fail_the_call_not_the_worker(
    tool: str, what: str
) -> None:
    async with sp.open_pool(FAULTS, size=1, worker_capacity=1) as pool:
        [worker] = pool.workers()
        chunks: list[Any] = []
        with trio.fail_after(BOUND), pytest.raises(sp.RemoteError) as info:
            await _run(pool, tool, {"what": what}, chunks)
        assert info.value.remote_type == what
        assert info.value.remote_message == ("3" if what == "SystemExit" else "")
        assert "_raise" in info.value.remote_traceback
        assert chunks == ([1] if "gen_" in tool else [])  # a stream's chunk, then the error
        await assert_serves_on(pool, worker.pid)


@pytest.mark.parametrize("what", ["SystemExit", "KeyboardInterrupt"])
async def test_system_exit_from_a_closed_async_generator_fails_only_its_call(what: str) -> None:
    # The consumer leaves early: the generator is closed in the worker and its `finally`
    # raises. Nobody waits for that call any more; the worker must just serve on.
    async with sp.open_pool(FAULTS, size=1, worker_capacity=1) as pool:
        [worker] = pool.workers()
        with trio.fail_after(BOUND):
            async with pool.stream("agen_raises_on_close", {"what": what}) as stream:
                async for chunk in stream:
                    assert chunk == 1
                    break
        await assert_serves_on(pool, worker.pid)


@pytest.mark.parametrize("start_method", START_METHODS)
async def test_a_segfault_leaves_the_python_stack_in_the_stderr_tail(start_method: str) -> None:
    # Capacity 8: eight tool threads, whose idle stacks must not push the crash out of the tail.
    async with sp.open_pool(FAULTS, size=1, worker_capacity=8, start_method=start_method) as pool:
        with trio.fail_after(BOUND), pytest.raises(sp.WorkerCrashed) as info:
            await pool.execute("segfault")
    crash = info.value
    assert crash.signal == signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in crash.stderr_tail
    assert 'faults.py", line' in crash.stderr_tail
    assert " in segfault" in crash.stderr_tail  # the tool's own frame
    assert "Fatal Python error" in str(crash)
