"""The worker's gRPC socket, served from its first connection on.

Every worker listens on ``--socket`` for gRPC (``Connect``, and ``Describe``, ``Health``,
``Execute``, ``ExecuteStream`` for control and simple clients). A pool on the local lane
never uses it, and grpclib with the generated messages is about a third of a worker's
import time. So the socket is bound and listening at once (a client can connect as soon as
the worker is READY), but grpclib is imported and its server started only when the first
client knocks: the pending connection waits in the backlog meanwhile and is then accepted
by grpclib as any other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grpclib.server import Server

    from ._runtime import Runtime

log = logging.getLogger("snakepit_trio.worker")


class GrpcSocket:
    """``--socket``: listening now, serving gRPC once a client connects.

    ``broken`` is called if the server cannot start then (grpclib missing or broken): the
    worker stops rather than leave a socket that accepts and never answers.
    """

    def __init__(self, runtime: Runtime, served: str, broken: Callable[[], None]) -> None:
        self._runtime = runtime
        self._served = served
        self._broken = broken
        self._sock: socket.socket | None = None
        self._server: Server | None = None
        self._starting: asyncio.Task[None] | None = None

    def listen(self, path: str) -> None:
        """Bind ``path`` (mode 0600) and listen; serve gRPC from the first connection."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)
            sock.listen(100)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._knocked)

    def _knocked(self) -> None:
        assert self._sock is not None
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._starting = asyncio.ensure_future(self._start(self._sock))

    async def _start(self, sock: socket.socket) -> None:
        try:
            from grpclib.server import Server

            from ._service import WorkerService

            server = Server([WorkerService(self._runtime, self._served)])
            await server.start(sock=sock)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            print("snakepit worker: the gRPC server did not start", file=sys.stderr, flush=True)
            sock.close()
            self._sock = None
            self._broken()
            return
        self._server = server

    async def close(self) -> None:
        """Stop listening; a started server gets 2 s to close its connections."""
        if self._starting is not None:
            await self._starting
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            except TimeoutError:
                pass
        elif self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
