"""The pool's counters: one owner, bumped by the engine, read by ``stats()``."""

from __future__ import annotations

import attrs


@attrs.define
class Counters:
    requests: int = 0  # calls admitted (queued or sent)
    errors: int = 0  # calls that ended in an error, the pool's or the tool's
    queue_timeouts: int = 0
    saturated: int = 0  # PoolSaturated raised
    restarts: int = 0  # workers started again after a crash or a recycle
    crashes: int = 0  # workers that died unexpectedly
    recycles: int = 0  # workers replaced for max_requests, max_age or max_memory_mb
