"""Signals to the host's whole process group, and a closed stdout.

Each host runs in its own session, so signalling its process group reaches nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import trio

from tests.conftest import pid_alive
from tests.helpers import wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py

HOST = textwrap.dedent(
    """
    import json, logging, sys, trio
    import snakepit_trio as sp

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")

    async def main():
        async with sp.open_pool("tests.adapters.basic:Echo", size=2) as pool:
            async def call():
                result = await pool.execute("sleep", {"seconds": 1.0})
                print(json.dumps({"result": result}), flush=True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                while pool.stats().in_flight == 0:
                    await trio.sleep(0.01)
                pids = [w.pid for w in pool.workers()]
                print(json.dumps({"workers": pids}), flush=True)
        print(json.dumps({"exited": "normally"}), flush=True)

    interrupted = False
    try:
        trio.run(main)
    except* KeyboardInterrupt:  # the caller's nursery wraps it in a group
        interrupted = True
    if interrupted:
        print(json.dumps({"exited": "KeyboardInterrupt"}), flush=True)
        sys.exit(130)
    """
)


async def _run_host_and_signal(sig: int) -> tuple[int, list[dict[str, object]], str, list[int]]:
    host = await trio.lowlevel.open_process(
        [sys.executable, "-c", HOST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        start_new_session=True,
    )
    out, err = bytearray(), bytearray()
    assert host.stdout is not None and host.stderr is not None
    try:
        async with trio.open_nursery() as nursery:

            async def drain(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
                async for chunk in stream:
                    into.extend(chunk)

            nursery.start_soon(drain, host.stderr, err)
            async for chunk in host.stdout:
                out.extend(chunk)
                if b'"workers"' in out and out.endswith(b"\n"):
                    break
            workers = json.loads(out.splitlines()[0])["workers"]
            os.killpg(host.pid, sig)  # the whole group, as a terminal or supervisor does
            async for chunk in host.stdout:
                out.extend(chunk)
            await host.wait()
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()
    lines = [json.loads(line) for line in out.splitlines()]
    return host.returncode, lines, err.decode(), workers


async def test_sigterm_to_the_group_drains_in_flight_calls_then_exits_143() -> None:
    with trio.fail_after(60):
        code, lines, err, workers = await _run_host_and_signal(signal.SIGTERM)
        assert code == -signal.SIGTERM, err  # still dies of SIGTERM, as without the pool
        assert {"result": "slept"} in lines, err  # the call in flight finished first
        assert "SIGTERM: draining" in err
        assert "WorkerCrashed" not in err and "died" not in err and "killed by" not in err
        assert "ERROR" not in err and "Traceback" not in err
        await wait_for(lambda: not any(pid_alive(pid) for pid in workers))


async def test_ctrl_c_to_the_group_stops_workers_without_spurious_crashes() -> None:
    with trio.fail_after(60):
        code, lines, err, workers = await _run_host_and_signal(signal.SIGINT)
        assert code == 130, err
        assert {"exited": "KeyboardInterrupt"} in lines
        # Workers never saw SIGINT (own session) and were stopped by the host itself.
        assert "WorkerCrashed" not in err and "died" not in err and "killed by" not in err
        assert "WARNING" not in err and "ERROR" not in err
        await wait_for(lambda: not any(pid_alive(pid) for pid in workers))


async def test_a_closed_stdout_neither_hangs_nor_orphans() -> None:
    script = textwrap.dedent(
        """
        import trio, snakepit_trio as sp

        async def main():
            async with sp.open_pool("tests.adapters.basic:Echo", size=2) as pool:
                print(" ".join(str(w.pid) for w in pool.workers()), flush=True)
                for i in range(100000):
                    print(await pool.execute("add", {"a": i}), flush=True)

        trio.run(main)
        """
    )
    with trio.fail_after(60):
        result = await trio.run_process(
            ["bash", "-c", 'set -o pipefail; "$0" -c "$1" | head -1', sys.executable, script],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        workers = [int(pid) for pid in result.stdout.split()]
        assert len(workers) == 2
        assert result.returncode != 0  # the host saw BrokenPipeError and exited
        assert b"BrokenPipeError" in result.stderr
        await wait_for(lambda: not any(pid_alive(pid) for pid in workers))
