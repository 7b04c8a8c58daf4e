"""What a worker leaves on the host: its output (bounded, logged by stream, or passed
through), its descriptors (closed when it is reaped), and how its end is reported."""

from __future__ import annotations

import gc
import logging
import os
import signal
import textwrap

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._supervision._output import MAX_LINE
from tests.helpers import host_process, wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py

OUTPUT = "tests.adapters.output:Output"
MB = 2**20

FLOOD_HOST = textwrap.dedent(
    """
    import json, logging, resource, sys, trio
    import snakepit_trio as sp
    from tests.adapters.output import END

    class Lines(logging.Handler):
        def __init__(self):
            super().__init__()
            self.longest, self.count, self.cut, self.end = 0, 0, 0, trio.Event()

        def emit(self, record):
            line = record.args[2]
            self.longest, self.count = max(self.longest, len(line)), self.count + 1
            self.cut += "line cut" in line
            if line == END:
                self.end.set()

    async def main():
        lines = Lines()
        logger = logging.getLogger("snakepit_trio.worker")
        logger.addHandler(lines)
        logger.setLevel(logging.INFO)
        async with sp.open_pool("tests.adapters.output:Output", size=1) as pool:
            await pool.execute("say", {"err": "warm"})
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            await pool.execute("flood", {"megabytes": 50, "separator": sys.argv[1]})
            with trio.fail_after(60):
                await lines.end.wait()
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                await pool.execute("crash", {"code": 3})
            except sp.WorkerCrashed as exc:
                tail = exc.stderr_tail
        print(json.dumps({"grew_kb": after - before, "longest": lines.longest,
                          "count": lines.count, "cut": lines.cut,
                          "tail_longest": max(map(len, tail.splitlines()))}), flush=True)

    trio.run(main)
    """
)


@pytest.mark.parametrize("separator", ["", "\r"], ids=["one-endless-line", "progress-bar"])
async def test_a_flood_without_newlines_stays_bounded(separator: str) -> None:
    """50 MB written to stderr with no newline (or only carriage returns, as a progress
    bar draws): every line handed to logging, and the stderr tail, are at most MAX_LINE
    long, and the host's peak memory hardly grows."""
    with trio.fail_after(120):
        async with host_process(FLOOD_HOST, separator) as (host, report):
            await host.wait()
    assert report["longest"] <= MAX_LINE
    assert report["tail_longest"] <= MAX_LINE
    assert report["grew_kb"] < 50 * 1024
    if separator:
        assert report["cut"] == report["count"] - 2 == 50 * 16  # each 64 KiB redraw, cut
    else:
        assert report["cut"] == 1 and report["count"] == 3  # warm, the cut line, END


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def _crash_and_replace(pool: sp.Pool, restarts: int) -> None:
    with pytest.raises(sp.WorkerCrashed):
        await pool.execute("crash", {"code": 1})
    await wait_for(lambda: pool.stats().restarts == restarts and pool.stats().available == 1)


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
async def test_reaped_workers_leave_no_descriptors_behind(start_method: str) -> None:
    crashes = 20
    gc.disable()  # nothing may depend on the collector to close them
    try:
        with trio.fail_after(120):
            async with sp.open_pool(
                OUTPUT,
                size=1,
                start_method=start_method,
                crash_threshold=None,
                restart=sp.RestartPolicy(initial=0.0),
            ) as pool:
                before = _fds()
                for n in range(1, crashes + 1):
                    await _crash_and_replace(pool, n)
                # The replacement holds what the first worker held; reaped ones hold
                # nothing (a few may be open for a moment: the registry's file, /proc).
                grown = _fds() - before
    finally:
        gc.enable()
    assert len(grown) < crashes // 2, sorted(grown)


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


async def test_worker_output_is_logged_by_stream(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="snakepit_trio.worker")
    with trio.fail_after(30):
        async with sp.open_pool(OUTPUT, size=1) as pool:
            worker_id = pool.workers()[0].id
            await pool.execute("say", {"out": "to stdout", "err": "to stderr"})

            def said() -> dict[str, logging.LogRecord]:
                return {
                    r.args[2]: r  # type: ignore[index]
                    for r in caplog.records
                    if r.name == "snakepit_trio.worker" and r.args and len(r.args) == 3
                }

            await wait_for(lambda: {"to stdout", "to stderr"} <= said().keys())
    out, err = said()["to stdout"], said()["to stderr"]
    assert (out.levelno, err.levelno) == (logging.INFO, logging.WARNING)
    assert (getattr(out, "stream", None), getattr(err, "stream", None)) == ("stdout", "stderr")
    assert {getattr(out, "worker_id", None), getattr(err, "worker_id", None)} == {worker_id}
    assert err.getMessage() == f"[{worker_id} stderr] to stderr"


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
async def test_inherited_output_goes_straight_to_the_hosts_stderr(
    start_method: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="snakepit_trio.worker")
    with trio.fail_after(30):
        async with sp.open_pool(
            OUTPUT, size=1, start_method=start_method, worker_output="inherit"
        ) as pool:
            # The worker writes to our stderr itself: it is there once the call returns.
            await pool.execute("say", {"out": "plain stdout", "err": "plain stderr"})
            out, err = capfd.readouterr()
            assert out == ""
            assert "plain stdout\n" in err and "plain stderr\n" in err
            with pytest.raises(sp.WorkerCrashed) as crashed:
                await pool.execute("crash", {"code": 3})
            assert crashed.value.stderr_tail == ""  # nothing was read, so nothing kept
    assert not [r for r in caplog.records if "plain" in r.getMessage()]


def test_worker_output_takes_log_or_inherit() -> None:
    with pytest.raises(ValueError, match=r"worker_output must be one of 'log', 'inherit'; got 'x'"):
        sp.PoolConfig(adapter=OUTPUT, worker_output="x")
    assert sp.PoolConfig(adapter=OUTPUT).worker_output == "log"
