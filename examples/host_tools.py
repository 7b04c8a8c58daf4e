"""Host tools: workers' tools call functions that live in the host (a cache, a lookup, and a
host tool that calls back into the pool).

Run from the repository root:  python examples/host_tools.py
"""

from __future__ import annotations

import trio

import snakepit_trio as sp

USERS = {7: {"name": "Ada"}, 8: {"name": "Grace"}}  # stands for a database the host holds


async def main() -> None:
    async with sp.open_pool("agent_adapter:Agent", size=2) as pool:
        lookups: list[int] = []

        @pool.host_tool
        def lookup_user(user_id: int) -> dict[str, str]:
            """A sync host tool: it runs in a thread of the host."""
            lookups.append(user_id)
            return USERS[user_id]

        @pool.host_tool
        async def count_words(text: str, ctx: sp.HostToolContext) -> int:
            """An async host tool that calls back into the pool (a nested call)."""
            return await ctx.pool.execute("word_count", {"text": text})  # type: ignore[no-any-return]

        print(await pool.execute("answer", {"user_id": 7, "question": "what is a pool?"}))
        print(await pool.execute("aanswer", {"user_id": 8}))
        try:
            await pool.execute("aanswer", {"user_id": 9})
        except sp.RemoteError as exc:
            print(f"a failing host tool reaches the worker as {exc.remote_type.rsplit('.')[-1]}")
        print("host tools:", [t.name for t in pool.host_tools()], "lookups:", lookups)


if __name__ == "__main__":
    trio.run(main)
