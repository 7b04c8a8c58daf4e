"""Contract: worker processes never outlive their host, and end cleanly when told to."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import textwrap

import psutil
import trio

import snakepit_trio as sp
from tests.conftest import pid_alive
from tests.contract.conftest import OpenContract
from tests.e2e.wire_helpers import program, start_worker
from tests.helpers import all_gone, host_process

TRANSPORT_AGNOSTIC = True  # process hygiene does not depend on the carrier

HOST = textwrap.dedent(
    """
    import json, sys, trio
    import snakepit_trio as sp

    async def main():
        adapter, runtime = sys.argv[1:3]
        async with sp.open_pool(adapter, runtime=runtime, size=2) as pool:
            pids = [w.pid for w in pool.workers()]
            print(json.dumps({"workers": pids}), flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


async def test_a_sigkilled_hosts_workers_are_gone_within_two_seconds(
    adapter: str, runtime: str
) -> None:
    with trio.fail_after(60):
        async with host_process(HOST, adapter, runtime) as (host, report):
            workers = report["workers"]
            assert len(workers) == 2 and all(pid_alive(pid) for pid in workers)
            host.kill()
            await host.wait()
            assert await trio.to_thread.run_sync(all_gone, workers, 2.0)


def test_stdin_eof_ends_the_worker(adapter: str, runtime: str) -> None:
    with start_worker(adapter, "--watch-stdin", stdin=subprocess.PIPE, runtime=runtime) as (
        _,
        proc,
    ):
        assert proc.stdin is not None
        proc.stdin.close()  # what the kernel does when the host dies
        proc.wait(timeout=10)


def test_a_worker_whose_host_is_already_gone_exits_before_it_is_ready(
    adapter: str, runtime: str
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    with tempfile.TemporaryDirectory() as tmp:
        ready_r, ready_w = os.pipe()
        argv = [*program(adapter, runtime), "--socket", os.path.join(tmp, "w.sock")]
        argv += ["--host-pid", str(gone.pid), "--ready-fd", str(ready_w)]
        proc = subprocess.Popen(argv, pass_fds=(ready_w,), start_new_session=True)
        os.close(ready_w)
        try:
            with os.fdopen(ready_r, "rb") as ready:
                assert ready.read() == b""  # never READY: the pipe just closes
            assert proc.wait(timeout=10) != 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_sigterm_drains_and_exits_zero(adapter: str, runtime: str) -> None:
    with start_worker(adapter, runtime=runtime) as (_, proc):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def _listening(pid: int) -> list[object]:
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return []
    return [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]


async def test_sigusr1_never_opens_a_debugger(contract: OpenContract) -> None:
    """Node.js opens its inspector on SIGUSR1 (a port anyone on the host may attach to);
    a worker must not. It may live on or die of it, but it never listens."""
    with trio.fail_after(60):
        async with contract() as pool:
            pid = await pool.execute("pid")
            assert _listening(pid) == []
            os.kill(pid, signal.SIGUSR1)
            # Whatever the signal does happens before the worker answers its next frame.
            with contextlib.suppress(sp.WorkerCrashed):
                await pool.execute("add", {"a": 1})
            assert _listening(pid) == []
            assert await pool.execute("add", {"a": 1}) == 2
