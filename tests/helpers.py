"""Test helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, failing the test after ``timeout`` seconds.

    The pool's state changes on events in other processes; this re-checks it, first after
    5 ms, then backing off (doubling) to every 50 ms, so a waiting test leaves the CPU to
    the workers it waits for. It is always bounded, so a broken pool fails, never hangs.
    """
    delay = 0.005
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(delay)
            delay = min(2 * delay, 0.05)


@asynccontextmanager
async def host_process(script: str, *args: str) -> AsyncIterator[tuple[trio.Process, Any]]:
    """Run ``script`` (a host that prints one JSON line, then waits) in a subprocess.

    Yields the process and that line, decoded. The host is killed on exit if it still runs.
    """
    host = await trio.lowlevel.open_process(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert host.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await host.stdout.receive_some(4096)
            assert chunk, "the host died before reporting"
            line += chunk
        yield host, json.loads(line)
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()


def all_gone(pids: list[int], within: float) -> bool:
    """Whether every one of ``pids`` has ended (or is a zombie) within ``within`` seconds
    (blocking: run it in a thread from Trio)."""
    from tests.conftest import pid_alive

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return True
        time.sleep(0.01)
    return False


def run_script(folder: Any, source: str, timeout: float) -> Any:
    """Run ``source`` (dedented) as the script ``app.py`` in ``folder``, as a user runs one,
    with this checkout importable; it must exit 0. Returns its last line of stdout, decoded
    as JSON."""
    import textwrap

    script = os.path.join(folder, "app.py")
    with open(script, "w") as f:
        f.write(textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
