"""What the supervisor watches when no local process of the pool's is the worker.

A worker reached at an endpoint (``_endpoints.py``) and a worker of the testing fake pool
(``testing/_worker.py``) have no process the pool started: a stand-in ends when told to,
with the return code it is given, and the supervisor waits on it as on a process.
"""

from __future__ import annotations

import trio


class StandIn:
    """A process-shaped handle: ``pid``, ``returncode``, ``wait()``; no pipes of its own."""

    stdout = None
    stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = trio.Event()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def end(self, code: int) -> None:
        """It has ended with ``code`` (the first end counts)."""
        if self.returncode is None:
            self.returncode = code
            self._exited.set()
