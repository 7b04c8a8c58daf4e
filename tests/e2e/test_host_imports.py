"""End-to-end: with the default transport the host loads no gRPC and starts no bridge thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

TRANSPORT_AGNOSTIC = True  # see conftest.py: this is about the default

SCRIPT = """
import json, sys, threading, trio, snakepit_trio as sp

async def main():
    async with sp.open_pool("tests.adapters.basic:Echo", size=2, registry=False) as pool:
        assert await pool.execute("echo", {"value": 1}) == 1
        threads = [t.name for t in threading.enumerate()]
    heavy = [m for m in ("grpclib", "betterproto2", "asyncio", "snakepit_trio._proto")
             if m in sys.modules]
    print(json.dumps({"heavy": heavy, "threads": threads}))

trio.run(main)
"""


def test_the_default_transport_loads_no_grpc_and_starts_no_bridge() -> None:
    env_free = {k: v for k, v in os.environ.items() if k != "SNAKEPIT_TRIO_TRANSPORT"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env_free,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert not any("bridge" in name for name in report["threads"]), report["threads"]


def test_grpc_is_loaded_when_asked_for() -> None:
    script = SCRIPT.replace("registry=False", "registry=False, transport='grpc'")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "grpclib" in report["heavy"] and "betterproto2" in report["heavy"]
    assert any("bridge" in name for name in report["threads"]), report["threads"]
