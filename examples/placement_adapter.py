"""The worker side of examples/hardware.py: an adapter that knows where its pool placed it."""

from __future__ import annotations

import os

from snakepit_trio.worker import Adapter, placement, tool


class Placed(Adapter):
    def __init__(self) -> None:
        # Known from here on, before initialize(): the device this worker is pinned to (its
        # CUDA_VISIBLE_DEVICES holds that one alone, so a framework calls it device 0) and
        # the thread budget its BLAS/OpenMP libraries got.
        self.placed = placement()

    async def initialize(self) -> None:
        # A model would be loaded here, e.g. onto "cuda:0" when self.placed.device is set.
        self.target = "cuda:0" if self.placed.kind in ("cuda", "rocm") else "cpu"

    @tool(description="Where this worker runs")
    def where(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "device": self.placed.device,
            "target": self.target,
            "threads": self.placed.threads,
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
