"""A worker that breaks the frame protocol on request (for the host's protocol checks).

``send`` puts raw frames straight into its connection's outbox, in one batch, through the
sink the runtime gave the call. ``hold`` keeps a call running (and records its id) so a
test can see what happens to calls on a worker that is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from snakepit_trio.worker import Adapter, ToolContext, tool


def _sink(ctx: ToolContext) -> Any:
    emit = ctx._progress
    assert emit is not None and emit.__closure__ is not None
    cells = dict(zip(emit.__code__.co_freevars, emit.__closure__, strict=True))
    return cells["sink"].cell_contents


class Rogue(Adapter):
    held: list[int]

    async def initialize(self) -> None:
        self.held = []

    @tool
    async def hold(self, ctx: ToolContext) -> None:
        """Run until cancelled."""
        self.held.append(ctx.request_id)
        await asyncio.Event().wait()

    @tool
    async def held_ids(self) -> list[int]:
        return list(self.held)

    @tool
    async def send(self, frames: list[Any], ctx: ToolContext, own: bool = False) -> None:
        """Emit ``frames`` as they are, in one batch; ``own``: a CHUNK for this very call
        goes first. Then run until cancelled."""
        sink = _sink(ctx)
        if own:
            sink([11, ctx.request_id, b"\xc0"])
        for frame in frames:
            sink(frame)
        await asyncio.Event().wait()

    @tool
    async def flood(self, chunks: int, ctx: ToolContext) -> AsyncIterator[None]:
        """A stream that sends one CHUNKS frame of ``chunks`` nil values, whatever its
        credit; then runs until cancelled."""
        connection = _sink(ctx).__self__  # straight into the outbox: sent as it is
        connection.outbox.append([23, ctx.request_id, [b"\xc0"] * chunks])
        connection.wake.set()
        await asyncio.Event().wait()
        yield None  # never reached: makes the tool a stream

    @tool
    async def answer(self, result: bytes, ctx: ToolContext) -> None:
        """Answer this call (a batch of it, too) with a RESULT holding ``result`` as it
        is; then run until cancelled."""
        _sink(ctx)([10, ctx.request_id, result, None])
        await asyncio.Event().wait()

    @tool
    async def ok(self) -> str:
        return "ok"
