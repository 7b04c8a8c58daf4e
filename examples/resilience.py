"""Retries, a circuit breaker and a bulk map, around a service that fails now and then.

Run from the repository root:  python examples/resilience.py
"""

from __future__ import annotations

import trio

import snakepit_trio as sp


def retrying(attempt: int, error: BaseException, delay: float) -> None:
    print(f"  attempt {attempt} failed ({type(error).__name__}); next in {delay:.2f}s")


def changed(breaker: sp.CircuitBreaker, old: str, new: str) -> None:
    print(f"  circuit {breaker.name!r}: {old} -> {new}")


async def main() -> None:
    async with sp.open_pool("service_adapter:Service", size=2) as pool:
        # Retry what the tool raises when it names the error; the budget bounds it all.
        policy = sp.RetryPolicy(
            attempts=6,
            initial=0.02,
            max_delay=0.2,
            retry_on=("ConnectionError",),
            budget=10,
            on_retry=retrying,
        )
        found = await pool.execute("lookup", {"key": "alpha"}, retry=policy)
        print("lookup ->", found)

        # After 3 failures in a row the breaker fails calls at once, then lets a probe through.
        breaker = sp.CircuitBreaker(
            failure_threshold=3, reset_timeout=0.5, name="backend", on_state_change=changed
        )
        for _ in range(3):
            try:
                await pool.execute("down", breaker=breaker)
            except sp.RemoteError as exc:
                print(f"down -> RemoteError: {exc.remote_type}")
        try:
            await pool.execute("ping", breaker=breaker)
        except sp.CircuitOpen as exc:
            print(f"ping -> CircuitOpen (retry in {exc.retry_in:.1f}s)")
        await trio.sleep(breaker.retry_in)
        print("probe ->", await pool.execute("ping", breaker=breaker))

        # A thousand small calls, 50 to a worker call, with a progress count.
        texts = (f"text number {i}" for i in range(1000))
        done = 0
        async with pool.map("features", ({"text": t} for t in texts), chunksize=50) as results:
            async for _ in results:
                done += 1
                if done % 250 == 0:
                    print(f"features: {done}/1000")
        print(f"computed features of {done} texts; stats: {pool.stats().requests} requests")


if __name__ == "__main__":
    trio.run(main)
