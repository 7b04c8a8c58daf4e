"""Adapters that report where their pool placed them (``devices``, ``threads_per_worker``).

numpy is imported here, at module level, so a template process loads OpenBLAS before it
forks: a forked worker must then change the thread count of a library already loaded.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import numpy as np  # noqa: F401  (loaded in the template: see the docstring)
import threadpoolctl

from snakepit_trio.worker import Adapter, placement, tool

_SEEN = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "SNAKEPIT_TRIO_DEVICE")


class Placed(Adapter):
    def __init__(self) -> None:
        self.at_init = {name: os.environ.get(name) for name in _SEEN}
        self.placement_at_init = attrs.asdict(placement())

    async def initialize(self) -> None:
        self.placement_at_initialize = attrs.asdict(placement())

    @tool
    def where(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "env": {name: os.environ.get(name) for name in _SEEN},
            "at_init": self.at_init,
            "placement_at_init": self.placement_at_init,
            "placement_at_initialize": self.placement_at_initialize,
        }

    @tool
    def threads(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "pools": [
                {k: info[k] for k in ("internal_api", "num_threads")}
                for info in threadpoolctl.threadpool_info()
            ],
            "env": {
                name: os.environ.get(name)
                for name in (
                    "OMP_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS",
                    "SNAKEPIT_TRIO_THREADS",
                )
            },
        }
