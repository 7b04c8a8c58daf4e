"""The worker side of examples/telemetry.py: tools that emit events and time their steps."""

from __future__ import annotations

import random
import time

from snakepit_trio.worker import Adapter, ToolContext, emit, tool


class Model(Adapter):
    async def initialize(self) -> None:
        started = time.perf_counter()
        self.vocabulary = {
            w: i for i, w in enumerate(["the", "a", "cat", "sat", "on", "mat", "hat"])
        }
        # Outside any call: reaches the host once it connects.
        emit("model.loaded", {"seconds": time.perf_counter() - started}, {"model": "tiny"})

    @tool
    def classify(self, text: str, ctx: ToolContext) -> str:
        with ctx.span("tokenize", model="tiny"):  # adapter.tokenize.stop, with its duration
            tokens = [self.vocabulary.get(w, -1) for w in text.lower().split()]
        time.sleep(random.uniform(0.001, 0.004))  # the "inference"
        ctx.emit("model.tokens", {"tokens": len(tokens)}, {"model": "tiny"})
        return "cat" if self.vocabulary["cat"] in tokens else "other"

    @tool
    def summarize(self, text: str) -> str:
        time.sleep(0.02)
        return text[:20]

    @tool
    def broken(self) -> None:
        raise RuntimeError("this tool always fails")
