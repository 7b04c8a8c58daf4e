"""A host in a subprocess that a test kills or stops: it opens a pool of one endpoint and
runs one long call there, for ``--orphan-timeout`` tests.

The host is started first and waits, its imports done, for the endpoint: a worker with a
short orphan timeout would otherwise exit before a slow-starting host (a loaded machine)
reached it, as it should when no host comes.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from tests.helpers import host_process
from tests.tcp_workers import TOKEN

HOST = """
import json, pathlib, sys, trio
import snakepit_trio as sp

async def main():
    where, token, ca, marker, tool = sys.argv[1:]
    print(json.dumps({"imported": True}), flush=True)
    path = pathlib.Path(where)
    while not (path.exists() and path.read_text().endswith("\\n")):
        await trio.sleep(0.01)
    async with sp.open_pool(
        "tests.adapters.orphans:Marked", endpoints=[path.read_text().strip()], token=token,
        tls=sp.TLSConfig(ca=ca) if ca else None, heartbeat_interval=0.2, heartbeat_timeout=5,
    ) as pool:
        if tool.endswith("_stream"):
            async with pool.stream(tool, {"marker": marker}) as chunks:
                async for _ in chunks:
                    pass
        else:
            await pool.execute(tool, {"marker": marker})

trio.run(main)
"""


@asynccontextmanager
async def waiting_host(
    folder: pathlib.Path, tool: str, marker: pathlib.Path, ca: pathlib.Path | None = None
) -> AsyncIterator[tuple[trio.Process, Callable[[str], None]]]:
    """Start the host; yield it and ``connect(endpoint)``, which sends it to its worker.

    The host then calls ``tool`` with ``{"marker": marker}`` (a tool of
    ``tests.adapters.orphans:Marked``). It is killed on exit if it still runs.
    """
    where = folder / "endpoint"

    def connect(endpoint: str) -> None:
        where.write_text(endpoint + "\n")

    async with host_process(HOST, str(where), TOKEN, str(ca or ""), str(marker), tool) as (
        host,
        said,
    ):
        assert said == {"imported": True}
        yield host, connect
