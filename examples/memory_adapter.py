"""Worker side of the sessions example: state that lives in one worker per session."""

from __future__ import annotations

import os

from snakepit_trio.worker import Adapter, ToolContext, tool


class Memory(Adapter):
    """Keeps a per-session history, the way a chat model keeps a conversation."""

    async def initialize(self) -> None:
        self.histories: dict[str, list[str]] = {}

    @tool(description="Remember a message in this session and return the history")
    def remember(self, message: str, ctx: ToolContext) -> dict[str, object]:
        if ctx.session_id is None:
            raise ValueError("call remember() inside a session")
        history = self.histories.setdefault(ctx.session_id, [])
        history.append(message)
        return {"history": list(history), "worker_pid": os.getpid()}

    @tool
    def sessions_held(self) -> int:
        return len(self.histories)

    async def on_session_end(self, session_id: str) -> None:
        # Per-session state is freed when the host closes (or expires) the session.
        self.histories.pop(session_id, None)
