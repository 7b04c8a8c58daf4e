"""Plain functions, served as tools by examples/port_from_executor.py.

Nothing here knows about snakepit_trio: these are the functions a ProcessPoolExecutor script
maps, kept in a module of their own so that worker processes can import them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

ROUNDS = 8_000  # about 5 ms of CPU per score on the machine of the README's figures


def score(x: int) -> int:
    """Hash a number many times over (CPU-bound, about 5 ms)."""
    digest = x.to_bytes(8, "little")
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return int.from_bytes(digest[:4], "little")


def double(x: int) -> int:
    """Trivial work: what a call costs is all there is to time."""
    return 2 * x


def scores(start: int, count: int) -> Iterator[int]:
    """Score count numbers from start, one result at a time (a stream)."""
    for x in range(start, start + count):
        yield score(x)
