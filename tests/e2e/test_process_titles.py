"""Worker processes carry a readable name (``/proc/PID/comm``: what ``top`` and ``ps -e`` show).

Layer: e2e (real worker processes, both start methods) and unit (the 15-byte limit).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio.worker._title import title

TRANSPORT_AGNOSTIC = True  # see conftest.py

ECHO = "tests.adapters.basic:Echo"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_title_keeps_the_worker_number_within_15_bytes() -> None:
    assert title("pool-3") == b"sp:pool-3"
    long = title("a-very-long-pool-name-12")
    assert len(long) == 15
    assert long.endswith(b"name-12")
    assert long.startswith(b"sp:~")


@pytest.mark.parametrize("start_method", ["zygote", "spawn"])
async def test_workers_are_named_after_their_ids(start_method: str) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(ECHO, size=2, name="titles", start_method=start_method) as pool:
            for worker in pool.workers():
                comm = Path(f"/proc/{worker.pid}/comm").read_text().strip()  # noqa: ASYNC240
                assert comm == f"sp:{worker.id}"
                cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes()  # noqa: ASYNC240
                # setproctitle (the titles extra, in the test extra) rewrites it, forks too.
                shown = cmdline.replace(b"\0", b" ").strip()
                assert shown == f"snakepit_trio worker {worker.id} {ECHO}".encode()
                # ... within its own bytes: the environment, and its tags, stay readable.
                environ = Path(f"/proc/{worker.pid}/environ").read_bytes()  # noqa: ASYNC240
                assert f"SNAKEPIT_TRIO_WORKER={worker.id}".encode() in environ.split(b"\0")
