"""The adversarial suite: the pool attacked on purpose, in its two layers.

Files whose name starts with ``test_pool_`` run in the pool layer (``open_fake_pool`` on
``autojump_clock``: times are exact, and every test there must take the clock); the others
start real worker processes, bound every wait with ``fail_after`` and assert no timing
across processes.

Two knobs, both environment variables:
- ``SNAKEPIT_ADVERSARIAL_SEED``: every randomized test draws from one seed, printed when it
  starts and named in its assertion messages; set it to replay a failure (the same calls,
  cancellations and victims; in the pool layer also Trio's scheduling order).
- ``SNAKEPIT_ADVERSARIAL_SCALE`` (default 1, the fast part CI runs): how much bigger and
  longer each test is; ``nox -s chaos`` runs the suite with a larger one.
"""

from __future__ import annotations

import inspect
import os
import random
import sys

import attrs
import pytest

SCALE = float(os.environ.get("SNAKEPIT_ADVERSARIAL_SCALE", "1"))


def scaled(n: int, cap: int | None = None) -> int:
    """``n`` times the scale (at least 1, at most ``cap``): how many calls, loops or
    sessions a test makes (``cap`` keeps a test that holds them all at once in memory)."""
    value = max(1, round(n * SCALE))
    return value if cap is None else min(value, cap)


@attrs.frozen
class Seed:
    """A test's seed: ``rng`` draws from it; ``replay`` goes in every assertion message."""

    value: int
    rng: random.Random

    @property
    def replay(self) -> str:
        return f"seed {self.value}: replay with SNAKEPIT_ADVERSARIAL_SEED={self.value}"


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Seed:
    fixed = os.environ.get("SNAKEPIT_ADVERSARIAL_SEED")
    value = int(fixed) if fixed else random.SystemRandom().randrange(2**32)
    print(f"{request.node.nodeid}: {Seed(value, random.Random()).replay}", file=sys.stderr)
    if "autojump_clock" in request.fixturenames:
        # In the pool layer the virtual clock makes time repeatable; Trio's scheduler
        # shuffles ready tasks with this generator (its Hypothesis plugin seeds it the
        # same way), so seeding it makes the whole run repeatable.
        import trio._core._run as trio_run

        trio_run._r.seed(value)
    return Seed(value, random.Random(value))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if fn is None or not item.path.name.startswith("test_pool_"):
            continue
        if item.path.parent.name != "adversarial":
            continue
        if "autojump_clock" not in inspect.signature(fn).parameters:
            raise pytest.UsageError(f"{item.nodeid}: a pool-layer test runs on autojump_clock")
