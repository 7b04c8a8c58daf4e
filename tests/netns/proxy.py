"""A small Trio TCP proxy between a pool and a worker that adds latency and can stall.

Each connection it accepts is forwarded to ``target``; every chunk is delivered ``delay``
seconds after it arrived (latency, not a throughput limit: chunks in flight overlap).
``stall()`` stops delivering on the connections open now, both ways, while keeping them
open (a silent link: no FIN, no RST); connections accepted later are forwarded normally.
"""

from __future__ import annotations

import math

import attrs
import trio


@attrs.define(eq=False)
class Proxy:
    target: tuple[str, int]
    delay: float = 0.0
    port: int = 0  # where it listens (on 127.0.0.1), once started
    chunks: int = 0  # chunks delivered, both ways
    _stalled: set[int] = attrs.Factory(set)  # ids of the connections stalled
    _open: set[int] = attrs.Factory(set)
    _next: int = 0

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._forward, listeners)

    def stall(self) -> None:
        """Deliver nothing more on the connections open now (they stay open)."""
        self._stalled |= self._open

    async def _forward(self, client: trio.SocketStream) -> None:
        me, self._next = self._next, self._next + 1
        self._open.add(me)
        try:
            async with (
                client,
                await trio.open_tcp_stream(*self.target) as upstream,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(self._pipe, me, client, upstream, nursery.cancel_scope)
                nursery.start_soon(self._pipe, me, upstream, client, nursery.cancel_scope)
        except (trio.BrokenResourceError, OSError):
            pass  # one side went away: the other end is closed with it
        finally:
            self._open.discard(me)

    async def _pipe(
        self, me: int, source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope
    ) -> None:
        send, receive = trio.open_memory_channel[tuple[float, bytes]](math.inf)
        async with trio.open_nursery() as nursery:

            async def deliver() -> None:
                async for due, chunk in receive:
                    await trio.sleep_until(due)
                    if me in self._stalled:
                        await trio.sleep_forever()
                    await sink.send_all(chunk)
                    self.chunks += 1
                await sink.send_eof()

            nursery.start_soon(deliver)
            async with send:
                while chunk := await source.receive_some(65536):
                    if me not in self._stalled:  # a stalled link loses what it carries
                        send.send_nowait((trio.current_time() + self.delay, chunk))
        done.cancel()  # its source closed and everything was delivered: end both ways
