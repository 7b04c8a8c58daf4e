"""The seam between the engine and a carrier of frames: what every channel offers.

A channel carries one worker's frames both ways. The engine never knows which carrier it has:
the local lane (``_lane.py``), gRPC (``_grpc.py``) or memory (``_memory.py``, for
``snakepit_trio.testing``). Incoming batches go to the ``on_frames`` callback the channel was
made with, in the Trio thread, as decoded msgpack (the engine parses them); a broken channel
calls ``on_lost(reason)`` once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import trio

from ._describe import WorkerDescription

OnFrames = Callable[[object], None]
OnLost = Callable[[str], None]


class Channel(Protocol):
    async def open(self, nursery: trio.Nursery, timeout: float) -> WorkerDescription:
        """Connect and hand-shake; the channel's tasks run in ``nursery``.

        Raises:
            TransportError: no connection or no valid description within ``timeout``.
        """
        ...

    def send(self, frame: list[Any]) -> None:
        """Queue one frame (never blocks); frames queued together leave together."""
        ...

    async def aclose(self) -> set[int]:
        """Close the channel; return the ids of CALL and BATCH frames that never left."""
        ...
