"""``--orphan-timeout``: a TCP worker that no host talks to for that long cancels its calls
and exits; a connected host's heartbeats keep it alive.

e2e: real worker processes on 127.0.0.1 (``tests/tcp_workers.py``) and, for a host that dies
or hangs, a host in a subprocess (``tests/lost_host.py``).
"""

from __future__ import annotations

import pathlib
import signal

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio.worker._server import parse_args
from tests.helpers import wait_for
from tests.lost_host import waiting_host
from tests.tcp_workers import TOKEN, tcp_worker, token_file

TRANSPORT_AGNOSTIC = True
MARKED = "tests.adapters.orphans:Marked"
NODE_MARKED = str(pathlib.Path(__file__).parents[1] / "adapters" / "orphans.mjs")
ADAPTERS = {"python": MARKED, "node": NODE_MARKED}
RUNTIMES = pytest.mark.parametrize("runtime", ["python", "node"])
ORPHAN = ["--orphan-timeout", "1.5"]
LINE = "snakepit worker: no host for 1.5 s (--orphan-timeout)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--socket", "/tmp/x.sock", "--orphan-timeout", "5"], "go with --listen"),
        (["--orphan-timeout", "0"], "--orphan-timeout must be a positive number"),
        (["--orphan-timeout", "-1"], "--orphan-timeout must be a positive number"),
        (["--orphan-timeout", "nan"], "--orphan-timeout must be a positive number"),
        (["--orphan-timeout", "inf"], "--orphan-timeout must be a positive number"),
        (["--orphan-timeout", "soon"], "--orphan-timeout: invalid float value: 'soon'"),
    ],
)
def test_a_bad_orphan_timeout_is_refused_naming_it(
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    listen = ["--listen", "tcp://127.0.0.1:0", "--token-file", str(token_file(tmp_path))]
    base = ["--adapter", MARKED, *([] if "--socket" in argv else listen)]
    with pytest.raises(SystemExit) as exited:
        parse_args([*base, *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_orphan_timeout_defaults_to_never(tmp_path: pathlib.Path) -> None:
    listen = ["--listen", "tcp://127.0.0.1:0", "--token-file", str(token_file(tmp_path))]
    assert parse_args(["--adapter", MARKED, *listen]).orphan_timeout is None
    assert parse_args(["--adapter", MARKED, *listen, *ORPHAN]).orphan_timeout == 1.5


@RUNTIMES
async def test_a_worker_no_host_reaches_exits_after_the_timeout(
    tmp_path: pathlib.Path, runtime: str
) -> None:
    with trio.fail_after(60):
        async with tcp_worker(
            tmp_path, ADAPTERS[runtime], tls=None, extra=ORPHAN, runtime=runtime
        ) as worker:
            with trio.fail_after(30):
                await worker.process.wait()
            assert worker.process.returncode == 0
            assert LINE in worker.log()


@RUNTIMES
async def test_a_connected_pool_keeps_it_alive_and_its_close_lets_it_go(
    tmp_path: pathlib.Path, runtime: str
) -> None:
    marker = tmp_path / "marker"
    adapter = ADAPTERS[runtime]
    with trio.fail_after(90):
        async with tcp_worker(tmp_path, adapter, tls=None, extra=ORPHAN, runtime=runtime) as worker:
            async with sp.open_pool(
                adapter,
                runtime=runtime,
                endpoints=[worker.endpoint],
                token=TOKEN,
                heartbeat_interval=0.2,
                heartbeat_timeout=5,
            ) as pool:
                began = trio.current_time()
                # A call longer than the timeout (the worker is silent, the host PINGs), then
                # idle spells and short calls, for well over three timeouts in all.
                assert await pool.execute("asleep", {"seconds": 2.5}) == "slept"
                while trio.current_time() - began < 5:
                    assert await pool.execute("add", {"a": 1}) == 2
                    await trio.sleep(0.5)  # idle: only heartbeats cross
                assert worker.process.returncode is None
                with trio.move_on_after(0.5):  # abandon a call: the pool's close cancels it
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(pool.execute, "marked", {"marker": str(marker)})
                        await wait_for(marker.exists, timeout=30)
                        await trio.sleep_forever()
            with trio.fail_after(30):
                await worker.process.wait()
            assert worker.process.returncode == 0
            assert marker.read_text() == "cancelled"
            assert LINE in worker.log()  # the timeout ended it, not the pool's close


@pytest.mark.parametrize(
    ("how", "tool", "mark"),
    [
        (signal.SIGKILL, "marked", "cancelled"),
        (signal.SIGSTOP, "marked", "cancelled"),
        (signal.SIGSTOP, "marked_stream", "closed"),
    ],
    ids=["killed", "hung", "hung-stream"],
)
async def test_a_lost_host_leaves_a_worker_that_cancels_its_call_and_exits(
    tmp_path: pathlib.Path, how: signal.Signals, tool: str, mark: str
) -> None:
    """Killed, the host's kernel closes the connection; hung (SIGSTOP), it stays connected
    but sends nothing, which the worker takes as gone all the same: its call is cancelled,
    its generator closed."""
    marker = tmp_path / "marker"
    with trio.fail_after(90):
        async with (
            waiting_host(tmp_path, tool, marker) as (host, connect),
            tcp_worker(tmp_path, MARKED, tls=None, extra=ORPHAN) as worker,
        ):
            connect(worker.endpoint)
            await wait_for(marker.exists, timeout=30)  # its call runs
            host.send_signal(how)
            with trio.fail_after(30):
                await worker.process.wait()
            assert worker.process.returncode == 0
            assert marker.read_text() == mark
            assert LINE in worker.log()


async def test_a_call_that_ignores_cancellation_does_not_keep_an_orphan_alive(
    tmp_path: pathlib.Path,
) -> None:
    """No host will SIGKILL an orphan: it waits for its cancelled calls as long as its
    timeout, then exits without them, saying so."""
    marker = tmp_path / "marker"
    with trio.fail_after(90):
        async with (
            waiting_host(tmp_path, "stubborn", marker) as (host, connect),
            tcp_worker(tmp_path, MARKED, tls=None, extra=ORPHAN) as worker,
        ):
            connect(worker.endpoint)
            await wait_for(marker.exists, timeout=30)
            host.kill()
            with trio.fail_after(30):
                await worker.process.wait()
            assert worker.process.returncode == 0
            log = worker.log()
            assert LINE in log
            assert "calls still running 1.5 s after they were cancelled: exiting" in log


async def test_heartbeats_keep_it_alive_even_with_heartbeat_timeout_none(
    tmp_path: pathlib.Path,
) -> None:
    """With heartbeat_timeout=None the host still PINGs endpoint workers, so an idle pool
    is not taken for a lost host."""
    with trio.fail_after(60):
        async with tcp_worker(tmp_path, MARKED, tls=None, extra=ORPHAN) as worker:
            async with sp.open_pool(
                MARKED,
                endpoints=[worker.endpoint],
                token=TOKEN,
                heartbeat_interval=0.2,
                heartbeat_timeout=None,
            ) as pool:
                idle = trio.current_time()
                while trio.current_time() - idle < 5:  # over three timeouts, all idle
                    await trio.sleep(0.5)
                    assert worker.process.returncode is None
                assert await pool.execute("pid") == worker.process.pid
            with trio.fail_after(30):
                await worker.process.wait()
            assert LINE in worker.log()
