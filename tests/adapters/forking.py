"""Adapters for starting workers from a template process (``start_method``)."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import numpy as np

from snakepit_trio.worker import Adapter, tool


class Lineage(Adapter):
    @tool
    def lineage(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "random": random.random(),
            "numpy": float(np.random.random()),  # the global generator, as scripts use it
        }

    @tool
    def fork_escapee(self) -> int:
        """A daemon made with fork() alone (no exec): double fork, setsid, sleep."""
        read, write = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(write, str(os.getpid()).encode())
                time.sleep(600)
            os._exit(0)
        os.close(write)
        pid = int(os.read(read, 32))
        os.close(read)
        os.wait()
        return pid


class NotForkSafe(Lineage):
    fork_safe = False
