"""Worker side of the host-tools example: tools that ask the host for what only it has."""

from __future__ import annotations

from snakepit_trio.worker import Adapter, ToolContext, tool


class Agent(Adapter):
    @tool
    def answer(self, user_id: int, question: str, ctx: ToolContext) -> str:
        """A sync tool: blocking host calls from its own thread."""
        user = ctx.host.lookup_user(user_id=user_id)  # the host's cache, not the worker's
        words = ctx.call_host_tool("count_words", {"text": question})  # a nested call
        return f"{user['name']} asked {words} words; host tools here: {sorted(ctx.host_tools())}"

    @tool
    async def aanswer(self, user_id: int, ctx: ToolContext) -> str:
        """An async tool: awaitable host calls."""
        user = await ctx.ahost.lookup_user(user_id=user_id)
        return f"hello, {user['name']}"

    @tool
    def word_count(self, text: str) -> int:
        return len(text.split())
