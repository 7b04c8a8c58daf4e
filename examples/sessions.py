"""Sessions: state that lives in one worker, with strict affinity.

Run from the repository root:  python examples/sessions.py
"""

from __future__ import annotations

import trio

import snakepit_trio as sp


async def main() -> None:
    async with sp.open_pool("memory_adapter:Memory", size=2) as pool:
        async with pool.session("alice") as alice, pool.session("bob") as bob:
            print(f"alice -> worker {alice.worker_id}, bob -> worker {bob.worker_id}")
            for text in ["hi", "how are you?"]:
                reply = await alice.execute("remember", {"message": text})
            print("alice's history:", reply["history"], "in pid", reply["worker_pid"])
            reply = await bob.execute("remember", {"message": "hello"})
            print("bob's history:", reply["history"], "in pid", reply["worker_pid"])

            alice.register_variable("temperature", "float", 0.7, min=0.0, max=2.0)
            try:
                alice.set_variable("temperature", 5.0)
            except sp.InvalidVariable as exc:
                print(f"rejected: {exc} (constraint: {exc.constraint})")
            print("sessions open:", pool.stats().sessions)
        # Closing the sessions ran on_session_end in their workers.
        print("sessions open after the block:", pool.stats().sessions)


if __name__ == "__main__":
    trio.run(main)
