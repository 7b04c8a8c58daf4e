"""Pool layer (virtual clock): a fake worker stopped while it has frames to send.

``snakepit_trio.testing``'s worker stops as a process does on SIGTERM: its running calls
end, what it owes the host leaves, then its adapter cleans up. Waiting for the outbox to
empty awaited an event that is set whenever the outbox holds frames, so it never let the
writer run: the test's whole process spun (the virtual clock stood still and no deadline
could fire). Found when a recycled worker was stopped right after a frame was queued.
"""

from __future__ import annotations

import trio
import trio.testing

from snakepit_trio._shared import _frames as w
from snakepit_trio.testing import faults, open_fake_pool
from tests.adapters.adversarial import Storm

Clock = trio.testing.MockClock


async def test_a_fake_worker_stopped_with_frames_to_send_sends_them_and_exits(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Storm, size=1, shutdown_grace=5) as pool:
        [info] = pool.workers()
        fake = faults(pool)._launcher.live[info.id]
        assert fake._connection is not None
        # A PING answered in the very loop pass where the stop begins (as a heartbeat
        # can be): the PONG is queued after the stop's first step, the writer's turn later.
        assert fake.loop is not None
        fake.loop.call_soon(fake._connection.emit, w.pong(1, None))
        start = trio.current_time()
        await fake.stop(grace=5)
        assert fake.process.returncode == 0  # it exited by itself, not killed after grace
        assert trio.current_time() == start
