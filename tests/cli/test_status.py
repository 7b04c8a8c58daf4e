"""``snakepit-trio status`` against a host subprocess running a pool, alive and then killed.

Layer: e2e (real host and worker processes; every wait under a deadline). Also the control
endpoint itself: a malformed or unknown request gets an error answer, never a crash.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import textwrap
from pathlib import Path

import msgpack
import trio

from snakepit_trio._supervision import _pool_table as pool_table
from snakepit_trio._supervision._registry import Registry
from tests.conftest import pid_alive
from tests.helpers import host_process, wait_for

from .cli_helpers import run_cli

HOST = textwrap.dedent(
    """
    import json, sys, trio
    import snakepit_trio as sp

    async def main():
        async with sp.open_pool("tests.adapters.basic:Echo", size=2, name="statusdemo",
                                state_dir=sys.argv[1]) as pool:
            async with pool.session("s-1") as session:
                await session.execute("echo", {"value": 1})
                print(json.dumps({"pids": [w.pid for w in pool.workers()],
                                  "control": pool_control()}), flush=True)
                await trio.sleep_forever()

    def pool_control():
        from snakepit_trio._supervision import _pool_table
        from snakepit_trio._supervision._registry import Registry
        return [r.control for r in _pool_table.rows(Registry(sys.argv[1]))]

    trio.run(main)
    """
)


async def test_status_shows_a_live_pool_then_its_death(tmp_path: Path) -> None:
    state = str(tmp_path)
    async with host_process(HOST, state) as (host, report):
        ran = await run_cli("status", "--state-dir", state, "--json")
        assert ran.code == 0, ran.err
        found = ran.json()
        assert found["dead"] == []
        (pool,) = found["pools"]
        assert pool["name"] == "statusdemo"
        assert pool["adapter"] == "tests.adapters.basic:Echo"
        assert pool["host_pid"] == host.pid
        assert pool["stats"]["health"] == "healthy"
        assert pool["stats"]["sessions"] == 1
        workers = {w["pid"]: w for w in pool["workers"]}
        assert set(workers) == set(report["pids"])
        for w in workers.values():
            assert w["state"] in {"ready", "busy"}
            assert w["uptime"] >= 0
        assert [s["id"] for s in pool["sessions"]] == ["s-1"]
        # The control socket sits in the pool's private directory.
        (control,) = report["control"]
        assert os.stat(os.path.dirname(control)).st_mode & 0o077 == 0

        text = await run_cli("status", "--state-dir", state)
        assert "pool statusdemo" in text.out
        for pid in report["pids"]:
            assert str(pid) in text.out

        host.send_signal(signal.SIGKILL)
        with trio.fail_after(10):
            await host.wait()
        ran = await run_cli("status", "--state-dir", state, "--json")
        found = ran.json()
        assert found["pools"] == []
        (dead,) = found["dead"]
        assert dead["name"] == "statusdemo"
        assert dead["host_pid"] == host.pid
        assert "snakepit-trio cleanup" in dead["hint"]
        text = await run_cli("status", "--state-dir", state)
        assert "DEAD pool statusdemo" in text.out
        assert "cleanup" in text.out

    # Workers die with their host; cleanup then forgets the dead pool.
    await wait_for(lambda: not any(pid_alive(p) for p in report["pids"]), timeout=10)
    assert (await run_cli("cleanup", "--state-dir", state)).code == 0
    assert pool_table.rows(Registry(state)) == []
    ran = await run_cli("status", "--state-dir", state, "--json")
    assert ran.json()["dead"] == []


async def test_control_endpoint_answers_bad_requests_with_errors(tmp_path: Path) -> None:
    import snakepit_trio as sp

    async with sp.open_pool("tests.adapters.basic:Echo", size=1, state_dir=str(tmp_path)):
        (row,) = await trio.to_thread.run_sync(pool_table.rows, Registry(tmp_path))

        def exchange(payload: bytes) -> object:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10)
                conn.connect(row.control)
                conn.sendall(struct.pack("<I", len(payload)) + payload)
                data = b""
                while len(data) < 4 or len(data) < 4 + struct.unpack_from("<I", data)[0]:
                    data += conn.recv(65536)
                return msgpack.unpackb(data[4:], raw=False)

        kind, body = await trio.to_thread.run_sync(exchange, msgpack.packb([30, "shutdown"]))
        assert kind == 31 and "unknown request" in body["error"]
        kind, body = await trio.to_thread.run_sync(exchange, b"\xc1")
        assert kind == 31 and "error" in body
        kind, body = await trio.to_thread.run_sync(exchange, msgpack.packb([30, "status"]))
        assert kind == 31 and body["stats"]["workers"] == 1
    # Closing the pool takes it off the list.
    assert await trio.to_thread.run_sync(pool_table.rows, Registry(tmp_path)) == []
