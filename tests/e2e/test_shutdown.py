"""End-to-end (real processes): what closing a pool does on SIGTERM and Ctrl-C.

Each host runs in its own session and is signalled as a whole process group, as a terminal
or a supervisor does. Tests wait for the lines the host prints (stdout) and logs (stderr)
before they signal it (one host raises a second Ctrl-C itself, as it logs, so that it surely
comes at that point), and the calls that keep a drain busy end only when a file is created,
so nothing here depends on how fast the machine is. "It did not wait for
drain_timeout" is checked with drain_timeout=60 and a 20 s bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from tests.conftest import pid_alive
from tests.helpers import wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py: this is about processes and signals

EXIT_BOUND = 20.0  # seconds; the pools here have drain_timeout=60

PRELUDE = textwrap.dedent(
    """
    import json, logging, os, sys, trio
    import snakepit_trio as sp

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    ADAPTER = "tests.adapters.closing:Closing"
    RELEASE = sys.argv[1]  # the running call ends when the test creates this file

    def say(**what):  # one write per line: a signal cannot split it
        sys.stdout.write(json.dumps(what) + "\\n")
        sys.stdout.flush()

    async def start_abandoned_call(pool):
        # A call the worker runs on after its caller gave up: it keeps a drain busy.
        started = RELEASE + ".started"
        async with trio.open_nursery() as nursery:
            async def give_up_once_it_runs():
                while not os.path.exists(started):
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()

            nursery.start_soon(give_up_once_it_runs)
            await pool.execute("wait_for_file", {"path": RELEASE, "started": started})
    """
)


class Host:
    """A host program running in its own session; its output is read as it comes."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.out = bytearray()
        self.err = bytearray()
        self._open = 2  # output streams not at EOF yet
        self._changed = trio.Event()

    async def pump(self, stream: trio.abc.ReceiveStream, into: bytearray) -> None:
        async for chunk in stream:
            into.extend(chunk)
            self._changed.set()
            self._changed = trio.Event()
        self._open -= 1
        self._changed.set()

    async def wait_for(self, what: bytes, *, stderr: bool = False, count: int = 1) -> None:
        """Wait until the host has printed (or logged) ``what`` at least ``count`` times, in
        lines it has finished."""
        seen = self.err if stderr else self.out
        while seen[: seen.rfind(b"\n") + 1].count(what) < count:
            if not self._open:
                raise AssertionError(f"the host ended without {what!r}:\n{self.stderr()}")
            await self._changed.wait()

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]

    def stderr(self) -> str:
        return self.err.decode(errors="replace")

    def signal(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)


@asynccontextmanager
async def run_host(body: str, release: Path) -> AsyncIterator[Host]:
    script = PRELUDE + textwrap.dedent(body)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", script, str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        start_new_session=True,
    )
    host = Host(process)
    assert process.stdout is not None and process.stderr is not None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(host.pump, process.stdout, host.out)
            nursery.start_soon(host.pump, process.stderr, host.err)
            yield host
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await process.wait()


async def _exit_within_bound(host: Host) -> float:
    """Wait for the host to exit; the seconds it took (at most EXIT_BOUND)."""
    start = trio.current_time()
    with trio.fail_after(EXIT_BOUND):
        await host.process.wait()
    return trio.current_time() - start


async def test_sigterm_fails_queued_calls_at_once_and_lets_the_running_one_finish(
    tmp_path: Path,
) -> None:
    body = """
    async def call(pool, args):
        try:
            say(result=await pool.execute("wait_for_file", args))
        except sp.PoolClosed:
            say(error="PoolClosed")

    async def main():
        async with sp.open_pool(ADAPTER, size=1, prefetch=0, drain_timeout=60) as pool:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, pool, {"path": RELEASE})
                while pool.stats().in_flight == 0:
                    await trio.sleep(0.01)
                for i in range(3):  # they would run until the test ends them
                    nursery.start_soon(call, pool, {"path": RELEASE + f".never-{i}"})
                while pool.stats().queued < 3:
                    await trio.sleep(0.01)
                say(workers=[w.pid for w in pool.workers()])

    trio.run(main)
    """
    release = tmp_path / "release"
    with trio.fail_after(60):
        async with run_host(body, release) as host:
            await host.wait_for(b'"workers"')
            host.signal(signal.SIGTERM)
            # At once, while the running call still runs: queued calls never start.
            await host.wait_for(b'{"error": "PoolClosed"}', count=3)
            assert b'"result"' not in host.out
            release.touch()
            await _exit_within_bound(host)
    err = host.stderr()
    assert host.process.returncode == -signal.SIGTERM, err
    assert {"result": "released"} in host.lines(), err  # the running call finished
    assert "pool 'pool' closing: 3 queued call(s) got PoolClosed" in err
    assert "closing: waiting up to 60s (drain_timeout) for 1 running call(s) on pool-" in err
    assert "WorkerCrashed" not in err and "ERROR" not in err and "Traceback" not in err
    [pid] = host.lines()[0]["workers"]  # type: ignore[misc]
    await wait_for(lambda: not pid_alive(pid))


@pytest.mark.parametrize(
    ("second", "why"), [(signal.SIGTERM, "a second SIGTERM"), (signal.SIGINT, "Ctrl-C")]
)
async def test_a_second_signal_while_draining_stops_the_workers_at_once(
    tmp_path: Path, second: int, why: str
) -> None:
    body = """
    async def main():
        async with sp.open_pool(ADAPTER, size=1, drain_timeout=60, shutdown_grace=1) as pool:
            await start_abandoned_call(pool)
            say(workers=[w.pid for w in pool.workers()])
            await trio.sleep_forever()

    trio.run(main)
    """
    with trio.fail_after(60):
        async with run_host(body, tmp_path / "never") as host:
            await host.wait_for(b'"workers"')
            host.signal(signal.SIGTERM)
            await host.wait_for(b"closing: waiting up to 60s (drain_timeout)", stderr=True)
            host.signal(second)
            await _exit_within_bound(host)  # not drain_timeout=60
    err = host.stderr()
    assert host.process.returncode == -signal.SIGTERM, err  # still dies of SIGTERM
    assert f"{why}: no longer waiting for running calls; stopping its workers" in err
    assert "wait_for_file (its caller is gone)" in err  # what the drain waited for
    assert "Traceback" not in err
    [pid] = host.lines()[0]["workers"]  # type: ignore[misc]
    await wait_for(lambda: not pid_alive(pid))


INTERRUPTIBLE_MAIN = """
try:
    trio.run(main)
except KeyboardInterrupt as exc:  # as itself: no exception group around it
    say(exited="KeyboardInterrupt", context=repr(exc.__context__))
    sys.exit(130)
"""


async def test_ctrl_c_while_the_pool_drains_comes_out_as_itself_at_once(tmp_path: Path) -> None:
    body = """
    async def main():
        async with sp.open_pool(ADAPTER, size=1, drain_timeout=60, shutdown_grace=1) as pool:
            await start_abandoned_call(pool)
            say(workers=[w.pid for w in pool.workers()])
        say(exited="normally")
    """
    with trio.fail_after(60):
        async with run_host(textwrap.dedent(body) + INTERRUPTIBLE_MAIN, tmp_path / "never") as host:
            await host.wait_for(b'"workers"')
            await host.wait_for(b"closing: waiting up to 60s (drain_timeout)", stderr=True)
            host.signal(signal.SIGINT)
            await _exit_within_bound(host)  # not drain_timeout=60
    err = host.stderr()
    assert host.process.returncode == 130, err
    assert {"exited": "KeyboardInterrupt", "context": "None"} in host.lines(), err
    assert "Ctrl-C: no longer waiting for running calls; stopping its workers" in err
    assert "Traceback" not in err
    [pid] = host.lines()[0]["workers"]  # type: ignore[misc]
    await wait_for(lambda: not pid_alive(pid))


async def test_a_second_ctrl_c_while_workers_stop_comes_out_as_itself(tmp_path: Path) -> None:
    # The second Ctrl-C is raised by the host itself, as the pool logs that it stops its
    # workers: it then surely comes while they stop, however loaded the machine is.
    body = """
    import os, pathlib, signal

    class SecondCtrlC(logging.Handler):
        def emit(self, record):
            text = record.getMessage()
            if "closing: stopping 1 worker(s)" in text:
                os.kill(os.getpid(), signal.SIGINT)
            elif "Ctrl-C: its workers are being stopped" in text:
                pathlib.Path(RELEASE).touch()  # the worker's last call ends: it exits

    logging.getLogger("snakepit_trio").addHandler(SecondCtrlC())

    async def main():
        async with sp.open_pool(ADAPTER, size=1, shutdown_grace=60) as pool:
            await start_abandoned_call(pool)  # the worker's graceful exit waits for it
            say(workers=[w.pid for w in pool.workers()])
            await trio.sleep_forever()
    """
    with trio.fail_after(60):
        async with run_host(textwrap.dedent(body) + INTERRUPTIBLE_MAIN, tmp_path / "r") as host:
            await host.wait_for(b'"workers"')
            host.signal(signal.SIGINT)  # leaves the block: no drain, the workers stop
            await _exit_within_bound(host)  # not shutdown_grace=60: the worker exited
    err = host.stderr()
    assert host.process.returncode == 130, err
    assert "Ctrl-C: its workers are being stopped" in err
    assert {"exited": "KeyboardInterrupt", "context": "None"} in host.lines(), err
    assert "Traceback" not in err
    [pid] = host.lines()[0]["workers"]  # type: ignore[misc]
    await wait_for(lambda: not pid_alive(pid))
