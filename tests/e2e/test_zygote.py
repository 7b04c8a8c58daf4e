"""End-to-end: workers forked from a template process (``start_method``), and its faults."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap

import psutil
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared._tagging import WORKER_ID
from snakepit_trio._supervision._template import Templates
from tests.conftest import pid_alive
from tests.helpers import host_process, wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py

LINEAGE = "tests.adapters.forking:Lineage"


async def _lineages(pool: sp.Pool) -> list[dict[str, float]]:
    """Each worker's lineage: sessions held open at once bind to distinct idle workers."""
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(pool.session()) for _ in range(pool.config.size)
        ]
        found = [await session.execute("lineage") for session in sessions]
    assert len({entry["pid"] for entry in found}) == pool.config.size
    return found


async def test_workers_are_forked_from_one_template() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(LINEAGE, size=3, start_method="zygote") as pool:
            lineages = await _lineages(pool)
            parents = {entry["ppid"] for entry in lineages}
            assert len(parents) == 1 and os.getpid() not in parents
            template = psutil.Process(parents.pop())
            assert "snakepit_trio.worker._zygote" in " ".join(template.cmdline())
            assert template.ppid() == os.getpid()
            # Each worker's own id is what /proc shows, not the template's (cleanup finds
            # a worker's children by it).
            for info in pool.workers():
                assert psutil.Process(info.pid).environ()[WORKER_ID] == info.id
            # No two workers share a random sequence: CPython reseeds `random` in a forked
            # child, and numpy its global generator (the template imported numpy).
            assert len({entry["random"] for entry in lineages}) == 3
            assert len({entry["numpy"] for entry in lineages}) == 3
        await wait_for(lambda: not pid_alive(template.pid))


async def test_spawn_starts_fresh_interpreters() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(LINEAGE, size=2, start_method="spawn") as pool:
            assert {entry["ppid"] for entry in await _lineages(pool)} == {os.getpid()}


@pytest.mark.parametrize(
    ("adapter", "reason"),
    [
        ("tests.adapters.threaded:Threaded", "started 1 thread"),
        ("tests.adapters.forking:NotForkSafe", "sets fork_safe = False"),
        ("tests.adapters.opens_file:OpensFile", "left 1 file descriptor"),
    ],
)
async def test_an_adapter_unsafe_to_fork_starts_fresh_or_is_refused(
    adapter: str, reason: str
) -> None:
    with trio.fail_after(30):
        async with sp.open_pool(adapter, size=2) as pool:  # auto: falls back
            assert {entry["ppid"] for entry in await _lineages(pool)} == {os.getpid()}
        with pytest.raises(sp.WorkerStartError, match=reason):
            async with sp.open_pool(adapter, size=1, start_method="zygote"):
                raise AssertionError("open_pool must not yield")


async def test_a_crashed_worker_is_replaced_by_a_fork() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(LINEAGE, size=1, start_method="zygote") as pool:
            [before] = await _lineages(pool)
            os.kill(int(before["pid"]), signal.SIGKILL)
            await wait_for(lambda: [w.pid for w in pool.workers()] not in ([], [before["pid"]]))
            [after] = await _lineages(pool)
            assert after["pid"] != before["pid"] and after["ppid"] == before["ppid"]


async def test_a_fork_only_daemon_of_a_forked_worker_dies_with_it() -> None:
    # The daemon never exec'd, so /proc shows the environment block it shares with the
    # worker: the worker rewrote its id there, and the pool finds the daemon by it.
    with trio.fail_after(30):
        async with sp.open_pool(LINEAGE, size=1, start_method="zygote") as pool:
            daemon = await pool.execute("fork_escapee")
            [worker] = pool.workers()
            assert psutil.Process(daemon).environ()[WORKER_ID] == worker.id
            os.kill(worker.pid, signal.SIGKILL)
            await wait_for(lambda: not pid_alive(daemon))


async def test_the_template_dying_takes_its_workers_and_a_new_one_forks_them_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(LINEAGE, size=2, start_method="zygote") as pool:
            old = await _lineages(pool)
            template = int(old[0]["ppid"])
            os.kill(template, signal.SIGKILL)
            gone = {int(entry["pid"]) for entry in old}
            await wait_for(lambda: not any(pid_alive(pid) for pid in gone))
            await wait_for(lambda: len({w.pid for w in pool.workers()} - gone) == 2, timeout=20)
            parents = {entry["ppid"] for entry in await _lineages(pool)}
            assert len(parents) == 1 and parents.isdisjoint({template, os.getpid()})
            assert pool.stats().crashes == 2
            new_template = int(parents.pop())
        await wait_for(lambda: not pid_alive(new_template))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("template process died" in m for m in messages) == 2  # why each worker died
    assert any("started a new one" in m for m in messages)


async def _replaced(pool: sp.Pool, dead: int) -> None:
    await wait_for(lambda: [w.pid for w in pool.workers()] not in ([], [dead]), timeout=20)


async def test_a_template_that_keeps_dying_is_not_restarted_in_a_loop() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(LINEAGE, size=1, start_method="zygote") as pool:
            for _ in range(Templates.MAX_STARTS):
                [worker] = await _lineages(pool)
                os.kill(int(worker["ppid"]), signal.SIGKILL)
                await _replaced(pool, int(worker["pid"]))
            # Three templates in a minute: the replacement started as a fresh interpreter.
            [worker] = await _lineages(pool)
            assert worker["ppid"] == os.getpid()


HOST = textwrap.dedent(
    """
    import json, trio
    import snakepit_trio as sp

    async def main():
        async with sp.open_pool(
            "tests.adapters.forking:Lineage", size=2, start_method="zygote"
        ) as pool:
            pids = [w.pid for w in pool.workers()]
            daemon = await pool.execute("fork_escapee")
            template = (await pool.execute("lineage"))["ppid"]
            print(json.dumps({"pids": [*pids, daemon, template]}), flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


async def test_a_killed_host_takes_the_template_its_workers_and_their_children() -> None:
    with trio.fail_after(60):
        async with host_process(HOST) as (host, report):
            doomed = report["pids"]
            assert all(pid_alive(pid) for pid in doomed)
            host.send_signal(signal.SIGKILL)
            await host.wait()
            await wait_for(lambda: not any(pid_alive(pid) for pid in doomed))


async def test_an_unknown_start_method_is_refused() -> None:
    with pytest.raises(ValueError, match="start_method"):
        async with sp.open_pool(LINEAGE, start_method="forkserver"):
            pass


async def test_a_stopped_template_neither_hangs_the_pool_nor_its_restarts() -> None:
    # A stopped template answers nothing: a crashed worker's end is still seen (its
    # pidfd), its replacement starts fresh once the fork request times out, and closing
    # the pool kills the template anyway.
    with trio.fail_after(60):
        # startup_timeout also bounds the fork request the stopped template never answers;
        # a fresh interpreter must start within it too, on a possibly busy machine.
        async with sp.open_pool(LINEAGE, size=1, start_method="zygote", startup_timeout=5) as pool:
            [worker] = await _lineages(pool)
            template = int(worker["ppid"])
            os.kill(template, signal.SIGSTOP)
            os.kill(int(worker["pid"]), signal.SIGKILL)
            await _replaced(pool, int(worker["pid"]))
            [worker] = await _lineages(pool)
            assert worker["ppid"] == os.getpid()
        assert not pid_alive(template)
