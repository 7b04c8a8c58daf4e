"""End-to-end: every worker's gRPC socket, served from its first connection on.

A pool on the local lane never uses a worker's gRPC socket, so the worker listens on it at
once but imports grpclib and starts the server only when a client connects.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import trio
from grpclib.client import Channel

import snakepit_trio as sp
from snakepit_trio._proto.snakepit import v1 as pb
from tests.e2e.wire_helpers import program, run

TRANSPORT_AGNOSTIC = True  # see conftest.py

GRPC_MODULES = ["grpclib", "betterproto2", "snakepit_trio._proto"]


def _socket_of(argv: list[str]) -> str:
    return argv[argv.index("--socket") + 1]


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
async def test_a_lane_worker_imports_grpc_only_when_a_client_connects(start_method: str) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(
            "tests.adapters.basic:Echo", size=1, transport="local", start_method=start_method
        ) as pool:
            assert await pool.execute("loaded", {"names": GRPC_MODULES}) == []
            path = _socket_of(await pool.execute("argv"))
            assert os.stat(path).st_mode & 0o777 == 0o600

            async def describe(channel: Channel) -> pb.DescribeResponse:
                return await pb.WorkerStub(channel).describe()

            described = await trio.to_thread.run_sync(run, path, describe)
            assert "echo" in {t.name for t in described.tools}
            assert described.pid == pool.workers()[0].pid
            assert await pool.execute("loaded", {"names": GRPC_MODULES}) == GRPC_MODULES
            assert await pool.execute("add", {"a": 2}) == 3  # the lane carries on


def test_a_grpc_server_that_cannot_start_stops_the_worker_with_its_reason() -> None:
    # A grpclib that fails to import: the worker must not keep a socket that accepts
    # connections and never answers.
    with tempfile.TemporaryDirectory() as tmp:
        broken = Path(tmp, "shadow", "grpclib")
        broken.mkdir(parents=True)
        (broken / "__init__.py").write_text("raise ImportError('grpclib is broken here')\n")
        sock = os.path.join(tmp, "w.sock")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken.parent), *sys.path])}
        ready_r, ready_w = os.pipe()
        proc = subprocess.Popen(
            [*program("tests.adapters.basic:Echo"), "--socket", sock,
             "--ready-fd", str(ready_w)],
            pass_fds=(ready_w,), env=env, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        os.close(ready_w)
        try:
            with os.fdopen(ready_r, "rb") as ready:
                assert ready.readline().startswith(b"READY")
            client = socket.socket(socket.AF_UNIX)
            client.connect(sock)  # the knock that starts the server
            _, err_bytes = proc.communicate(timeout=30)
            client.close()
            assert proc.returncode == 1
            err = err_bytes.decode()
            assert "grpclib is broken here" in err
            assert "the gRPC server did not start" in err
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
