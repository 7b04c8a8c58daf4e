"""snakepit_trio.testing: a pool that runs your adapter in memory, for your own tests.

``open_fake_pool`` gives a real ``Pool``: the same engine, argument checks, msgpack round
trip, errors, timeouts, queueing, sessions, streams with credits, heartbeats and crash
handling, over workers that run in this thread instead of in processes. It starts no
process, and it works under ``trio.testing.MockClock(autojump_threshold=0)``: a test of a
60 s timeout takes no real time. ``faults(pool)`` crashes, hangs or delays its workers.

Map: ``_loop.py`` (an asyncio loop stepped by Trio, on Trio's clock), ``_worker.py`` (one
worker in memory and its channel), ``_launcher.py`` (the launcher the engine is given),
``_faults.py`` (fault injection), ``_pool.py`` (``open_fake_pool``), ``_pools.py``
(``open_fake_pools``: several of them, as ``open_pools`` opens).
"""

from __future__ import annotations

from .._shared._metadata import fixup_module_metadata
from ._faults import Faults as Faults
from ._faults import faults as faults
from ._pool import open_fake_pool as open_fake_pool
from ._pools import open_fake_pools as open_fake_pools

__all__ = ["Faults", "faults", "open_fake_pool", "open_fake_pools"]

for _name in __all__:  # reprs and tracebacks read snakepit_trio.testing.Faults
    fixup_module_metadata(globals()[_name], __name__)
del _name
