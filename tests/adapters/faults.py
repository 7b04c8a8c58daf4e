"""Tools that fail on the worker's result path, or break the process, in every way we know of.

Imported inside real worker processes (tests/e2e/test_worker_process.py).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from snakepit_trio.worker import Adapter, tool


class Faults(Adapter):
    @tool
    def echo(self, value: Any = None) -> Any:
        return value

    @tool
    async def aecho(self, value: Any = None) -> Any:
        return value

    # --- the process ----------------------------------------------------------------
    @tool
    def broken_pipe(self) -> None:
        r, w = os.pipe()
        os.close(r)
        try:
            os.write(w, b"x")
        finally:
            os.close(w)

    @tool
    def segfault(self) -> None:
        ctypes.string_at(0)
